//! From two TCP_REPAIR-frozen sockets to the replicated [`Splice`] record:
//! the pure mapping of kernel socket state (sequence numbers, options,
//! timestamp clocks, queues) onto the splice's deltas, with the checks that
//! make the splice exact (nothing received but not relayed, nothing sent
//! but not acknowledged, nothing held out of order).

use ftsplice_linux::repair::TCP_ESTABLISHED;
use ftsplice_linux::SocketState;
use ftsplice_proto::splice::{Splice, SpliceId, TsDeltas, WindowScales};

/// Bits of a [`SpliceId`] below the creating proxy's id.
const COUNTER_BITS: u32 = 48;

/// The id of the `counter`-th splice created by proxy `proxy`.
pub fn splice_id(proxy: u16, counter: u64) -> SpliceId {
    SpliceId((u64::from(proxy) << COUNTER_BITS) | (counter & ((1 << COUNTER_BITS) - 1)))
}

/// The latest TSval each peer sent, as observed on the wire while the
/// splice was being created (the kernel does not expose them). `None` when
/// not observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerTsvals {
    pub client: Option<u32>,
    pub backend: Option<u32>,
}

/// Why two frozen sockets cannot (yet) be joined exactly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrozenError {
    #[error("{side} socket is in TCP state {state}, not ESTABLISHED")]
    NotEstablished { side: &'static str, state: u8 },
    #[error("{0} client bytes received but not relayed to the backend")]
    ClientBytesUnrelayed(usize),
    #[error("{0} bytes sent to the backend but not acknowledged")]
    BackendUnacked(usize),
    #[error("{0} backend bytes received but not relayed to the client")]
    BackendBytesUnrelayed(usize),
    #[error("{0} bytes sent to the client but not acknowledged")]
    ClientUnacked(usize),
    /// The socket holds data beyond a hole (its out-of-order queue, SACKed
    /// to the peer): closing it would drop bytes the peer believes
    /// received. `side` is `client` or `backend`.
    #[error("the {0} socket holds out-of-order data (SACKed, not readable)")]
    OutOfOrder(&'static str),
    /// Unread client bytes were relayed, but the client may still send
    /// (its window is open), so out-of-order data cannot be ruled out and
    /// bytes sent from now on would be lost in the hold.
    #[error("{0} bytes of the client's window are still open with relayed bytes unread")]
    ClientWindowOpen(u32),
    #[error("timestamps negotiated on both connections but the {0}'s latest TSval is unknown")]
    TsvalUnknown(&'static str),
}

impl FrozenError {
    /// Whether waiting (for acks) or relaying queued bytes and freezing
    /// again can clear the condition.
    pub fn is_transient(&self) -> bool {
        !matches!(self, FrozenError::NotEstablished { .. })
    }

    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FrozenError::NotEstablished { .. } => "not_established",
            FrozenError::ClientBytesUnrelayed(_) => "client_bytes_unrelayed",
            FrozenError::BackendUnacked(_) => "backend_unacked",
            FrozenError::BackendBytesUnrelayed(_) => "backend_bytes_unrelayed",
            FrozenError::ClientUnacked(_) => "client_unacked",
            FrozenError::OutOfOrder("client") => "client_out_of_order",
            FrozenError::OutOfOrder(_) => "backend_out_of_order",
            FrozenError::ClientWindowOpen(_) => "client_window_open",
            FrozenError::TsvalUnknown(_) => "tsval_unknown",
        }
    }
}

/// Builds the splice joining connection A (`client`: the accepted socket,
/// local = VIP, remote = client) and B (`backend`: local = SSA, remote =
/// backend), both frozen after every client byte read from A was written
/// to B and acknowledged by the backend.
///
/// In the terms of [`ftsplice_proto::splice`]: `c_next` = A's `rcv_nxt`,
/// `v_next` = A's `snd_nxt`, `s_next` = B's `snd_nxt`, `b_next` = B's
/// `rcv_nxt`. Timestamp offsets map each peer's latest TSval onto the
/// other connection's clock *now*, so translated TSvals never go backwards
/// for the receiver (PAWS), while echoes map back exactly.
pub fn splice_from_frozen(
    id: SpliceId,
    client: &SocketState,
    backend: &SocketState,
    peer_ts: PeerTsvals,
) -> Result<Splice, FrozenError> {
    splice_from_frozen_relayed(id, client, backend, peer_ts, 0, false)
}

/// Whether a client with `left` bytes of window left (see
/// [`SocketState::receive_window_left`]) is stopped by flow control: at 0,
/// or below one segment (`rcv_mss`, the kernel's estimate of the client's
/// MSS) when the socket never received a segment out of order
/// (`never_out_of_order`, from `tcpi_rcv_ooopack`). A Linux sender does not
/// send less than a segment into a window (only its zero-window probe
/// timer does, at its retransmission timeout); a window the kernel
/// advertises ends on a multiple of its scale, not of the MSS, so a
/// client usually stops short of the right edge.
pub fn window_closed(left: u32, rcv_mss: u32, never_out_of_order: bool) -> bool {
    left == 0 || (never_out_of_order && left < rcv_mss)
}

/// [`splice_from_frozen`] for a client socket whose receive queue still
/// holds `client_relayed` bytes that were copied to the backend without
/// being read (the proxy relays a client stopped by flow control without
/// consuming, so its window stays closed). The queue must hold exactly
/// those bytes, and the client's window must be closed ([`window_closed`]):
/// that rules out out-of-order data, which receive memory cannot tell
/// apart from unread bytes (a window of 0 leaves no room for any; below
/// one segment only when none ever arrived, `never_out_of_order`).
pub fn splice_from_frozen_relayed(
    id: SpliceId,
    client: &SocketState,
    backend: &SocketState,
    peer_ts: PeerTsvals,
    client_relayed: usize,
    never_out_of_order: bool,
) -> Result<Splice, FrozenError> {
    for (side, s) in [("client", client), ("backend", backend)] {
        if s.info.state != TCP_ESTABLISHED {
            return Err(FrozenError::NotEstablished {
                side,
                state: s.info.state,
            });
        }
    }
    if client.recv_queue.len() != client_relayed {
        return Err(FrozenError::ClientBytesUnrelayed(
            client.recv_queue.len().abs_diff(client_relayed),
        ));
    }
    let left = client.receive_window_left();
    if client_relayed != 0 && !window_closed(left, client.info.rcv_mss, never_out_of_order) {
        return Err(FrozenError::ClientWindowOpen(left));
    }
    if !backend.send_queue.is_empty() {
        return Err(FrozenError::BackendUnacked(backend.send_queue.len()));
    }
    if !backend.recv_queue.is_empty() {
        return Err(FrozenError::BackendBytesUnrelayed(backend.recv_queue.len()));
    }
    if !client.send_queue.is_empty() {
        return Err(FrozenError::ClientUnacked(client.send_queue.len()));
    }
    // (A client with relayed unread bytes and a closed window holds
    // nothing out of order, see above; `holds_out_of_order` is false for
    // it since its receive queue is not empty.)
    for (side, s) in [("client", client), ("backend", backend)] {
        if s.holds_out_of_order() {
            return Err(FrozenError::OutOfOrder(side));
        }
    }
    let ts = if client.info.timestamps && backend.info.timestamps {
        let c = peer_ts.client.ok_or(FrozenError::TsvalUnknown("client"))?;
        let b = peer_ts
            .backend
            .ok_or(FrozenError::TsvalUnknown("backend"))?;
        Some(TsDeltas {
            c2s: backend.timestamp.wrapping_sub(c),
            s2c: client.timestamp.wrapping_sub(b),
        })
    } else {
        None
    };
    let shifts = |s: &SocketState| {
        if s.info.wscale_ok {
            (s.info.snd_wscale, s.info.rcv_wscale)
        } else {
            (0, 0)
        }
    };
    let (client_shift, vip_shift) = shifts(client);
    let (backend_shift, ssa_shift) = shifts(backend);
    Ok(Splice {
        id,
        version: 1,
        client: client.remote,
        vip: client.local,
        ssa: backend.local,
        backend: backend.remote,
        seq_delta: backend.snd_nxt.wrapping_sub(client.rcv_nxt),
        ack_delta: backend.rcv_nxt.wrapping_sub(client.snd_nxt),
        ts,
        wscale: WindowScales {
            client: client_shift,
            vip: vip_shift,
            ssa: ssa_shift,
            backend: backend_shift,
        },
        sack_ok: client.info.sack && backend.info.sack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_linux::{RepairWindow, TcpInfoLite};
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn addr(d: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, d), port)
    }

    fn info(snd: u8, rcv: u8) -> TcpInfoLite {
        TcpInfoLite {
            state: TCP_ESTABLISHED,
            timestamps: true,
            sack: true,
            wscale_ok: true,
            snd_wscale: snd,
            rcv_wscale: rcv,
            snd_mss: 1448,
            rcv_mss: 1448,
            advmss: 1448,
            unacked: 0,
        }
    }

    fn state(
        local: SocketAddrV4,
        remote: SocketAddrV4,
        snd: u32,
        rcv: u32,
        i: TcpInfoLite,
        ts: u32,
    ) -> SocketState {
        SocketState {
            local,
            remote,
            snd_una: snd,
            snd_nxt: snd,
            rcv_nxt: rcv,
            send_queue: vec![],
            recv_queue: vec![],
            window: RepairWindow::default(),
            info: i,
            mss: 1448,
            timestamp: ts,
            rmem_alloc: 0,
        }
    }

    /// A: client 198.18.0.1:5555 -> vip 198.18.0.10:80; the client's ISN was
    /// 999 and it sent a 120-byte request (rcv_nxt 1000+120 = 1120); the
    /// proxy's ISN was 4_999 (snd_nxt 5000, it sent nothing).
    /// B: ssa 198.18.0.20:40001 -> backend 198.18.0.30:8080; the proxy's ISN
    /// was 0xffff_fff0 and it relayed the 120 bytes (snd_nxt wraps to
    /// 0xffff_fff1 + 120 = 0x68); the backend's ISN 69_999 (rcv_nxt 70_000).
    fn pair() -> (SocketState, SocketState) {
        let a = state(addr(10, 80), addr(1, 5555), 5000, 1120, info(7, 9), 777_000);
        let b = state(
            addr(20, 40001),
            addr(30, 8080),
            0x68,
            70_000,
            info(8, 6),
            123,
        );
        (a, b)
    }

    #[test]
    fn deltas_match_hand_computation() {
        let (a, b) = pair();
        let ts = PeerTsvals {
            client: Some(1_000_000),
            backend: Some(0xffff_ff00),
        };
        let s = splice_from_frozen(splice_id(3, 17), &a, &b, ts).unwrap();
        assert_eq!(s.id, SpliceId(0x0003_0000_0000_0011));
        assert_eq!(s.version, 1);
        assert_eq!(
            (s.client, s.vip, s.ssa, s.backend),
            (addr(1, 5555), addr(10, 80), addr(20, 40001), addr(30, 8080))
        );
        // s_next - c_next = 0x68 - 1120 (wrapping).
        assert_eq!(s.seq_delta, 0x68u32.wrapping_sub(1120));
        assert_eq!(s.seq_delta, 4_294_966_280);
        // b_next - v_next = 70_000 - 5000.
        assert_eq!(s.ack_delta, 65_000);
        // The client's next byte (seq 1120) becomes the backend's expected
        // byte (0x68), and the backend's first (70_000) the client's 5000.
        assert_eq!(1120u32.wrapping_add(s.seq_delta), 0x68);
        assert_eq!(70_000u32.wrapping_sub(s.ack_delta), 5000);
        let d = s.ts.unwrap();
        // c2s = B's clock (123) - client's TSval (1_000_000).
        assert_eq!(d.c2s, 123u32.wrapping_sub(1_000_000));
        // s2c = A's clock (777_000) - backend's TSval (0xffff_ff00).
        assert_eq!(d.s2c, 777_000u32.wrapping_sub(0xffff_ff00));
        assert_eq!(d.s2c, 777_256);
        assert_eq!(
            s.wscale,
            WindowScales {
                client: 7,
                vip: 9,
                ssa: 6,
                backend: 8
            }
        );
        assert!(s.sack_ok);
    }

    #[test]
    fn translated_tsvals_do_not_go_backwards() {
        let (a, b) = pair();
        let ts = PeerTsvals {
            client: Some(40),
            backend: Some(9),
        };
        let s = splice_from_frozen(splice_id(1, 1), &a, &b, ts).unwrap();
        let d = s.ts.unwrap();
        // A later client TSval (>= 40) lands at or after B's clock.
        assert_eq!(40u32.wrapping_add(d.c2s), b.timestamp);
        assert_eq!(9u32.wrapping_add(d.s2c), a.timestamp);
    }

    #[test]
    fn options_missing_on_either_side() {
        let (mut a, mut b) = pair();
        b.info.timestamps = false;
        b.info.sack = false;
        a.info.wscale_ok = false;
        let s = splice_from_frozen(splice_id(1, 1), &a, &b, PeerTsvals::default()).unwrap();
        assert_eq!(s.ts, None);
        assert!(!s.sack_ok);
        assert_eq!((s.wscale.client, s.wscale.vip), (0, 0));
        assert_eq!((s.wscale.ssa, s.wscale.backend), (6, 8));
    }

    #[test]
    fn relayed_unread_client_bytes_need_a_closed_window() {
        let (a, b) = pair();
        let ts = PeerTsvals {
            client: Some(1),
            backend: Some(2),
        };
        let id = splice_id(1, 1);
        // 3000 bytes queued unread (and so charged), all relayed; the
        // client filled the window it was given: right edge = rcv_nxt.
        let mut x = a.clone();
        x.recv_queue = vec![7; 3000];
        x.rmem_alloc = 9000;
        x.window.rcv_wup = x.rcv_nxt.wrapping_sub(3000);
        x.window.rcv_wnd = 3000;
        let s = splice_from_frozen_relayed(id, &x, &b, ts, 3000, false).unwrap();
        let whole = splice_from_frozen(id, &a, &b, ts).unwrap();
        assert_eq!(s, whole, "the unread bytes do not move the deltas");
        // Not every queued byte was relayed, or more than queued.
        assert_eq!(
            splice_from_frozen_relayed(id, &x, &b, ts, 2000, true),
            Err(FrozenError::ClientBytesUnrelayed(1000))
        );
        assert_eq!(
            splice_from_frozen_relayed(id, &x, &b, ts, 3500, true),
            Err(FrozenError::ClientBytesUnrelayed(500))
        );
        // An open window: the client may still send (and may have sent
        // beyond a hole).
        x.window.rcv_wnd = 4448;
        let e = splice_from_frozen_relayed(id, &x, &b, ts, 3000, true).unwrap_err();
        assert_eq!(e, FrozenError::ClientWindowOpen(1448));
        assert!(e.is_transient());
        assert_eq!(e.label(), "client_window_open");
        // Less than a segment left: closed if nothing ever arrived out of
        // order, else a hole may hide there.
        x.window.rcv_wnd = 3000 + 1447;
        assert!(splice_from_frozen_relayed(id, &x, &b, ts, 3000, true).is_ok());
        assert_eq!(
            splice_from_frozen_relayed(id, &x, &b, ts, 3000, false),
            Err(FrozenError::ClientWindowOpen(1447))
        );
    }

    #[test]
    fn a_window_below_one_segment_is_closed_only_without_reordering() {
        assert!(window_closed(0, 1448, false));
        assert!(window_closed(1447, 1448, true));
        assert!(!window_closed(1447, 1448, false));
        assert!(!window_closed(1448, 1448, true));
    }

    #[test]
    fn refuses_inexact_splices() {
        let (a, b) = pair();
        let ts = PeerTsvals {
            client: Some(1),
            backend: Some(2),
        };
        let id = splice_id(1, 1);
        let mut x = a.clone();
        x.recv_queue = vec![0; 5];
        assert_eq!(
            splice_from_frozen(id, &x, &b, ts),
            Err(FrozenError::ClientBytesUnrelayed(5))
        );
        let mut y = b.clone();
        y.send_queue = vec![0; 3];
        assert_eq!(
            splice_from_frozen(id, &a, &y, ts),
            Err(FrozenError::BackendUnacked(3))
        );
        let mut y = b.clone();
        y.recv_queue = vec![0; 2];
        assert_eq!(
            splice_from_frozen(id, &a, &y, ts),
            Err(FrozenError::BackendBytesUnrelayed(2))
        );
        let mut x = a.clone();
        x.send_queue = vec![0; 1];
        assert_eq!(
            splice_from_frozen(id, &x, &b, ts),
            Err(FrozenError::ClientUnacked(1))
        );
        // Receive memory still charged with nothing in the receive queue:
        // data beyond a hole the kernel has SACKed.
        let mut x = a.clone();
        x.rmem_alloc = 2304;
        let e = splice_from_frozen(id, &x, &b, ts).unwrap_err();
        assert_eq!(e, FrozenError::OutOfOrder("client"));
        assert!(e.is_transient());
        assert_eq!(e.label(), "client_out_of_order");
        let mut y = b.clone();
        y.rmem_alloc = 768;
        let e = splice_from_frozen(id, &a, &y, ts).unwrap_err();
        assert_eq!(e, FrozenError::OutOfOrder("backend"));
        assert_eq!(e.label(), "backend_out_of_order");
        let mut x = a.clone();
        x.info.state = 8;
        let e = splice_from_frozen(id, &x, &b, ts).unwrap_err();
        assert!(!e.is_transient());
        let only_client = PeerTsvals {
            client: Some(1),
            backend: None,
        };
        assert_eq!(
            splice_from_frozen(id, &a, &b, only_client),
            Err(FrozenError::TsvalUnknown("backend"))
        );
    }

    #[test]
    fn ids_put_the_proxy_on_top() {
        assert_eq!(splice_id(0xffff, u64::MAX).0, u64::MAX);
        assert_eq!(splice_id(2, 1 << 48).0, 2 << 48);
    }
}
