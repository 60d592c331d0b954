//! Passive open (RFC 9293 LISTEN): turns a SYN into a connection in
//! SYN-RECEIVED and answers anything else as a listening socket would.

use core::net::SocketAddrV4;

use ftsplice_proto::Instant;

use crate::config::Config;
use crate::connection::Connection;
use crate::segment::{reset_for, Segment};

/// A listening socket on `local`.
#[derive(Clone, Debug)]
pub struct Listener {
    local: SocketAddrV4,
    cfg: Config,
}

/// What to do with a segment that reached a listener.
#[derive(Debug)]
pub enum ListenOutcome {
    /// A SYN: a new connection (poll it for the SYN-ACK).
    Accepted(Box<Connection>),
    /// Not a SYN: send this reset (RFC 9293: an ACK in LISTEN is answered
    /// with `<SEQ=SEG.ACK><CTL=RST>`).
    Reset(Segment),
    /// Ignored (a RST, or a segment without SYN or ACK).
    Ignored,
}

impl Listener {
    pub fn new(local: SocketAddrV4, cfg: Config) -> Self {
        Listener { local, cfg }
    }

    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Handles a segment from `remote` for which no connection exists.
    /// `isn` and `ts_offset` come from the caller's seeded RNG.
    pub fn accept_syn<P: AsRef<[u8]>>(
        &self,
        now: Instant,
        remote: SocketAddrV4,
        seg: &Segment<P>,
        isn: u32,
        ts_offset: u32,
    ) -> ListenOutcome {
        let f = seg.flags;
        if f.rst() {
            return ListenOutcome::Ignored;
        }
        if f.ack() {
            return match reset_for(seg) {
                Some(r) => ListenOutcome::Reset(r),
                None => ListenOutcome::Ignored,
            };
        }
        if !f.syn() {
            return ListenOutcome::Ignored;
        }
        match Connection::accept_syn(
            now,
            self.local,
            remote,
            seg,
            isn,
            ts_offset,
            self.cfg.clone(),
        ) {
            Ok(c) => ListenOutcome::Accepted(Box::new(c)),
            Err(_) => ListenOutcome::Ignored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Flags;
    use crate::seq::SeqNum;
    use core::net::Ipv4Addr;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port)
    }

    #[test]
    fn answers_like_rfc9293_listen() {
        let l = Listener::new(addr(80), Config::default());
        let mut seg = Segment::<Vec<u8>> {
            src_port: 4000,
            dst_port: 80,
            seq: SeqNum(10),
            ack: SeqNum(99),
            flags: Flags::ACK,
            ..Default::default()
        };
        match l.accept_syn(Instant::ZERO, addr(4000), &seg, 1, 0) {
            ListenOutcome::Reset(r) => {
                assert_eq!(r.seq, SeqNum(99));
                assert_eq!(r.flags, Flags::RST);
            }
            o => panic!("expected reset, got {o:?}"),
        }
        seg.flags = Flags::RST;
        assert!(matches!(
            l.accept_syn(Instant::ZERO, addr(4000), &seg, 1, 0),
            ListenOutcome::Ignored
        ));
        seg.flags = Flags::SYN;
        match l.accept_syn(Instant::ZERO, addr(4000), &seg, 1, 0) {
            ListenOutcome::Accepted(c) => {
                assert_eq!(c.state(), crate::event::State::SynReceived);
                assert_eq!(c.local(), addr(80));
            }
            o => panic!("expected a connection, got {o:?}"),
        }
    }
}
