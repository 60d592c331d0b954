//! Interoperability with smoltcp 0.14: our endpoint talks to a smoltcp
//! socket over an in-memory IP device, in both roles, through real IPv4/TCP
//! bytes (our side converts with `wire_conv`), with and without packet loss.
//! smoltcp sends no timestamps here, so our non-timestamp path is exercised.

mod harness;

use std::collections::VecDeque;

use core::time::Duration;

use ftsplice_proto::Instant;
use ftsplice_tcp::listener::ListenOutcome;
use ftsplice_tcp::wire_conv::{emit_datagram, parse_datagram};
use ftsplice_tcp::{Config, Connection, Event, Listener, State};
use harness::{addr, stream_byte};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

/// Packets in and out of smoltcp's interface.
#[derive(Default)]
struct Pipe {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct Rx(Vec<u8>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for Pipe {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: SInstant) -> Option<(Rx, Tx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((Rx(p), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _t: SInstant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = 1500;
        c
    }
}

const OURS: u8 = 1;
const THEIRS: u8 = 2;

struct Run {
    /// We open the connection (else smoltcp does).
    we_connect: bool,
    /// Drop every n-th packet in each direction (0 = none).
    drop_every: u64,
    up: usize,
    down: usize,
}

/// Verifies a received stream incrementally.
struct Check {
    seed: u64,
    got: usize,
    bad: Option<usize>,
}

impl Check {
    fn feed(&mut self, bytes: &[u8]) {
        for (k, b) in bytes.iter().enumerate() {
            let i = self.got + k;
            if self.bad.is_none() && *b != stream_byte(self.seed, i as u64) {
                self.bad = Some(i);
            }
        }
        self.got += bytes.len();
    }
}

fn fill(seed: u64, from: usize, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = stream_byte(seed, (from + k) as u64);
    }
}

fn run(r: &Run) {
    let ours = addr(OURS, if r.we_connect { 40000 } else { 80 });
    let theirs = addr(THEIRS, if r.we_connect { 80 } else { 40000 });
    let (ours_seed, theirs_seed) = (11, 22);

    let mut dev = Pipe::default();
    let mut cfg = IfaceConfig::new(HardwareAddress::Ip);
    cfg.random_seed = 7;
    let mut iface = Interface::new(cfg, &mut dev, SInstant::from_micros(0));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::from(*theirs.ip()), 24))
            .expect("address")
    });
    let mut sock = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 65535]),
        tcp::SocketBuffer::new(vec![0; 65535]),
    );
    let mut sockets = SocketSet::new(vec![]);
    let mut conn: Option<Connection> = None;
    let listener = Listener::new(ours, Config::default());
    if r.we_connect {
        sock.listen(theirs.port()).expect("listen");
        conn = Some(Connection::connect(
            Instant::ZERO,
            ours,
            theirs,
            1_000,
            5,
            Config::default(),
        ));
    } else {
        sock.connect(
            iface.context(),
            (IpAddress::from(*ours.ip()), ours.port()),
            theirs.port(),
        )
        .expect("connect");
    }
    let h: SocketHandle = sockets.add(sock);

    let mut now = Instant::ZERO;
    let delay = Duration::from_millis(1);
    // (arrival, to_ours, bytes)
    let mut wire: VecDeque<(Instant, bool, Vec<u8>)> = VecDeque::new();
    let mut counts = [0u64; 2];
    let (mut our_sent, mut their_sent) = (0usize, 0usize);
    let mut our_check = Check {
        seed: theirs_seed,
        got: 0,
        bad: None,
    };
    let mut their_check = Check {
        seed: ours_seed,
        got: 0,
        bad: None,
    };
    let mut their_closed = false;
    let mut buf = vec![0u8; 8192];
    let mut steps = 0;

    loop {
        steps += 1;
        assert!(steps < 2_000_000, "no progress");
        // Deliver what arrived.
        while wire.front().is_some_and(|p| p.0 <= now) {
            let Some((_, to_ours, bytes)) = wire.pop_front() else {
                break;
            };
            if to_ours {
                let (src, _, seg) = parse_datagram(&bytes).expect("smoltcp sent a valid datagram");
                assert_eq!(src, *theirs.ip());
                match conn.as_mut() {
                    Some(c) => c.handle_segment(now, &seg),
                    None => {
                        if let ListenOutcome::Accepted(c) =
                            listener.accept_syn(now, theirs, &seg, 9_000, 3)
                        {
                            conn = Some(*c);
                        }
                    }
                }
            } else {
                dev.rx.push_back(bytes);
            }
        }
        let snow = SInstant::from_micros(now.as_micros() as i64);
        iface.poll(snow, &mut dev, &mut sockets);
        {
            let s = sockets.get_mut::<tcp::Socket>(h);
            while s.can_recv() {
                let n = s.recv_slice(&mut buf).expect("recv");
                if n == 0 {
                    break;
                }
                their_check.feed(&buf[..n]);
            }
            while their_sent < r.down && s.can_send() {
                let n = (r.down - their_sent).min(buf.len());
                fill(theirs_seed, their_sent, &mut buf[..n]);
                let w = s.send_slice(&buf[..n]).expect("send");
                their_sent += w;
                if w == 0 {
                    break;
                }
            }
            if their_sent == r.down && !their_closed && s.is_active() {
                s.close();
                their_closed = true;
            }
        }
        iface.poll(snow, &mut dev, &mut sockets);
        while let Some(p) = dev.tx.pop_front() {
            counts[0] += 1;
            if r.drop_every == 0 || counts[0] % r.drop_every != 0 {
                wire.push_back((now + delay, true, p));
            }
        }
        if let Some(c) = conn.as_mut() {
            while let Some(e) = c.poll_event() {
                assert!(!matches!(e, Event::Reset | Event::TimedOut), "{e:?}");
            }
            loop {
                let n = c.recv(&mut buf);
                if n == 0 {
                    break;
                }
                our_check.feed(&buf[..n]);
            }
            while our_sent < r.up && c.send_space() > 0 {
                let n = (r.up - our_sent).min(buf.len());
                fill(ours_seed, our_sent, &mut buf[..n]);
                our_sent += c.send(&buf[..n]);
            }
            if our_sent == r.up && matches!(c.state(), State::Established | State::CloseWait) {
                c.close();
            }
            while let Some(seg) = c.poll_transmit(now) {
                counts[1] += 1;
                let mut bytes = Vec::new();
                emit_datagram(*ours.ip(), *theirs.ip(), 0, &seg, &mut bytes).expect("emit");
                if r.drop_every == 0 || counts[1] % r.drop_every != 0 {
                    wire.push_back((now + delay, false, bytes));
                }
            }
        }
        let s = sockets.get::<tcp::Socket>(h);
        let done = conn.as_ref().is_some_and(|c| {
            matches!(c.state(), State::TimeWait | State::Closed)
                && matches!(s.state(), tcp::State::TimeWait | tcp::State::Closed)
        });
        if done && wire.is_empty() {
            break;
        }
        let mut next = wire.front().map(|p| p.0);
        if let Some(t) = conn.as_ref().and_then(|c| c.poll_timeout()) {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        if let Some(t) = iface.poll_at(snow, &sockets) {
            let t = Instant::from_micros(t.total_micros().max(0) as u64);
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let next = next
            .expect("something pending")
            .max(now + Duration::from_micros(1));
        assert!(next < Instant::from_secs(300), "stuck at {now:?}");
        now = next;
        if let Some(c) = conn.as_mut() {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
    }
    assert_eq!(our_check.bad, None);
    assert_eq!(their_check.bad, None);
    assert_eq!(our_check.got, r.down);
    assert_eq!(their_check.got, r.up);
    let c = conn.expect("connection");
    // smoltcp offers SACK and window scaling but sends no timestamps.
    assert!(c.sack_enabled());
    assert!(!c.timestamps_enabled());
    assert_eq!(c.repair_state().send_mss, 1460);
    if r.drop_every > 0 {
        assert!(c.stats().retransmits > 0);
    }
}

#[test]
fn our_client_to_smoltcp_server() {
    run(&Run {
        we_connect: true,
        drop_every: 0,
        up: 300_000,
        down: 200_000,
    });
}

#[test]
fn smoltcp_client_to_our_server() {
    run(&Run {
        we_connect: false,
        drop_every: 0,
        up: 200_000,
        down: 300_000,
    });
}

#[test]
fn both_roles_with_loss() {
    for we_connect in [true, false] {
        run(&Run {
            we_connect,
            drop_every: 23,
            up: 150_000,
            down: 150_000,
        });
    }
}
