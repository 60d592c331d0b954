//! A deterministic two-endpoint test bench: our client and our server
//! joined by a simulated link with delay, seeded loss, reordering (a second,
//! slower path) and blackouts, each side sending a pseudo-random stream and
//! checking what it receives byte for byte.
#![allow(dead_code)]

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ftsplice_proto::Instant;
use ftsplice_tcp::listener::ListenOutcome;
use ftsplice_tcp::{Config, Connection, Event, Listener, Segment, State};

/// SplitMix64: small, seeded, good enough for loss decisions and payloads.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Byte `i` of the stream with `seed`.
pub fn stream_byte(seed: u64, i: u64) -> u8 {
    (stream_word(seed, i / 8) >> ((i % 8) * 8)) as u8
}

fn stream_word(seed: u64, w: u64) -> u64 {
    Rng::new(seed ^ w.wrapping_mul(0xA24B_AED4_963E_E407)).next_u64()
}

/// Fills `buf` with the stream from byte `from` on (one hash per 8 bytes).
pub fn stream_fill(seed: u64, from: u64, buf: &mut [u8]) {
    let mut i = from;
    let mut k = 0;
    while k < buf.len() {
        let word = stream_word(seed, i / 8).to_le_bytes();
        let off = (i % 8) as usize;
        let n = (8 - off).min(buf.len() - k);
        buf[k..k + n].copy_from_slice(&word[off..off + n]);
        k += n;
        i += n as u64;
    }
}

/// Link behaviour (applies to both directions).
#[derive(Clone, Debug)]
pub struct LinkCfg {
    pub delay: Duration,
    /// Probability a packet is dropped.
    pub loss: f64,
    /// Probability a packet takes the slow path (extra delay).
    pub reorder: f64,
    pub reorder_extra: Duration,
    /// All packets sent in `[start, end)` are dropped.
    pub blackouts: Vec<(Instant, Instant)>,
    /// Serialization rate in bytes/s per direction (0 = unlimited).
    pub rate: u64,
    /// Tail drop when the queue ahead of the link would exceed this many
    /// bytes (0 = unbounded).
    pub queue_bytes: u64,
    /// Explicit drop list: (direction a->b?, index of packet in that direction).
    pub drop_nth: Vec<(bool, u64)>,
}

impl Default for LinkCfg {
    fn default() -> Self {
        LinkCfg {
            delay: Duration::from_millis(5),
            loss: 0.0,
            reorder: 0.0,
            reorder_extra: Duration::from_millis(3),
            blackouts: Vec::new(),
            rate: 100_000_000,
            queue_bytes: 0,
            drop_nth: Vec::new(),
        }
    }
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct BenchCfg {
    pub seed: u64,
    pub link: LinkCfg,
    pub client: Config,
    pub server: Config,
    /// Bytes the client sends to the server and the server back.
    pub up: u64,
    pub down: u64,
    /// Give up at this simulated time.
    pub deadline: Instant,
    /// Application reads at most this many bytes per step (0 = everything).
    pub read_chunk: usize,
}

impl Default for BenchCfg {
    fn default() -> Self {
        BenchCfg {
            seed: 1,
            link: LinkCfg::default(),
            client: Config::default(),
            server: Config::default(),
            up: 1 << 20,
            down: 1 << 20,
            deadline: Instant::from_secs(600),
            read_chunk: 0,
        }
    }
}

/// One side's application: sends its stream, checks the peer's.
#[derive(Debug)]
pub struct App {
    send_seed: u64,
    send_total: u64,
    sent: u64,
    recv_seed: u64,
    pub received: u64,
    pub corrupt_at: Option<u64>,
    pub peer_closed: bool,
    pub closed: bool,
    pub reset: bool,
    pub timed_out: bool,
    pub connected: bool,
    /// (time, total bytes received) whenever progress was made.
    pub progress: Vec<(Instant, u64)>,
    buf: Vec<u8>,
    want: Vec<u8>,
}

impl App {
    fn new(send_seed: u64, send_total: u64, recv_seed: u64) -> Self {
        App {
            send_seed,
            send_total,
            sent: 0,
            recv_seed,
            received: 0,
            corrupt_at: None,
            peer_closed: false,
            closed: false,
            reset: false,
            timed_out: false,
            connected: false,
            progress: Vec::new(),
            buf: vec![0; 16384],
            want: vec![0; 16384],
        }
    }

    fn step(&mut self, now: Instant, c: &mut Connection, read_chunk: usize) {
        while let Some(e) = c.poll_event() {
            match e {
                Event::Connected => self.connected = true,
                Event::PeerClosed => self.peer_closed = true,
                Event::Closed => self.closed = true,
                Event::Reset => self.reset = true,
                Event::TimedOut => self.timed_out = true,
                Event::DataReadable | Event::SendBufferSpace => {}
            }
        }
        let mut buf = core::mem::take(&mut self.buf);
        let mut want = core::mem::take(&mut self.want);
        let mut budget = if read_chunk == 0 {
            usize::MAX
        } else {
            read_chunk
        };
        loop {
            let ask = buf.len().min(budget);
            let n = c.recv(&mut buf[..ask]);
            if n == 0 {
                break;
            }
            budget -= n;
            stream_fill(self.recv_seed, self.received, &mut want[..n]);
            if self.corrupt_at.is_none() && buf[..n] != want[..n] {
                let k = (0..n).find(|&k| buf[k] != want[k]).unwrap_or(0);
                self.corrupt_at = Some(self.received + k as u64);
            }
            self.received += n as u64;
            if budget == 0 {
                break;
            }
        }
        if self.progress.last().map(|p| p.1) != Some(self.received) {
            self.progress.push((now, self.received));
        }
        while self.sent < self.send_total && c.send_space() > 0 {
            let n = (self.send_total - self.sent).min(buf.len() as u64) as usize;
            stream_fill(self.send_seed, self.sent, &mut buf[..n]);
            let w = c.send(&buf[..n]);
            self.sent += w as u64;
            if w < n {
                break;
            }
        }
        self.buf = buf;
        self.want = want;
        if self.sent == self.send_total
            && matches!(c.state(), State::Established | State::CloseWait)
        {
            c.close();
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    to_server: bool,
}

/// Result of a run.
#[derive(Debug)]
pub struct Outcome {
    pub client: App,
    pub server: App,
    pub client_conn: Connection,
    pub server_conn: Option<Connection>,
    pub end: Instant,
    pub packets: u64,
    pub dropped: u64,
}

impl Outcome {
    /// Both streams arrived completely and intact and both sides closed.
    pub fn assert_complete(&self, up: u64, down: u64) {
        assert_eq!(self.server.corrupt_at, None, "upstream corrupted");
        assert_eq!(self.client.corrupt_at, None, "downstream corrupted");
        assert_eq!(
            self.server.received, up,
            "upstream incomplete at {:?}",
            self.end
        );
        assert_eq!(
            self.client.received, down,
            "downstream incomplete at {:?}",
            self.end
        );
        assert!(self.client.peer_closed && self.server.peer_closed);
        assert!(!self.client.reset && !self.server.reset);
        let s = self.server_conn.as_ref().expect("server");
        for st in [self.client_conn.state(), s.state()] {
            assert!(
                matches!(st, State::TimeWait | State::Closed),
                "state {st:?} at {:?}",
                self.end
            );
        }
    }

    /// Longest time (during `[from, until)`) without progress at the server.
    pub fn longest_stall(&self, progress: &[(Instant, u64)], from: Instant) -> Duration {
        let mut prev = from;
        let mut worst = Duration::ZERO;
        for &(t, _) in progress.iter().filter(|p| p.0 >= from) {
            worst = worst.max(t - prev);
            prev = t;
        }
        worst
    }
}

pub fn addr(last: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, last), port)
}

/// Runs one transfer to completion (or `deadline`).
pub fn run(cfg: &BenchCfg) -> Outcome {
    let mut rng = Rng::new(cfg.seed);
    let caddr = addr(1, 40000);
    let saddr = addr(2, 80);
    let mut client = Connection::connect(
        Instant::ZERO,
        caddr,
        saddr,
        rng.next_u64() as u32,
        rng.next_u64() as u32,
        cfg.client.clone(),
    );
    let listener = Listener::new(saddr, cfg.server.clone());
    let server_isn = rng.next_u64() as u32;
    let server_ts = rng.next_u64() as u32;
    let mut server: Option<Connection> = None;
    let up_seed = cfg.seed.wrapping_mul(31).wrapping_add(1);
    let down_seed = cfg.seed.wrapping_mul(37).wrapping_add(2);
    let mut capp = App::new(up_seed, cfg.up, down_seed);
    let mut sapp = App::new(down_seed, cfg.down, up_seed);

    let mut heap: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut store: std::collections::HashMap<u64, Segment> = Default::default();
    let mut order = 0u64;
    let mut busy = [Instant::ZERO; 2];
    let mut nth = [0u64; 2];
    let mut packets = 0;
    let mut dropped = 0;
    let mut now = Instant::ZERO;

    loop {
        // Applications and output.
        capp.step(now, &mut client, cfg.read_chunk);
        if let Some(s) = server.as_mut() {
            sapp.step(now, s, cfg.read_chunk);
        }
        for to_server in [true, false] {
            loop {
                let seg = if to_server {
                    client.poll_transmit(now)
                } else {
                    match server.as_mut() {
                        Some(s) => s.poll_transmit(now),
                        None => None,
                    }
                };
                let Some(seg) = seg else { break };
                packets += 1;
                let d = usize::from(!to_server);
                let idx = nth[d];
                nth[d] += 1;
                let size = seg.payload.len() as u64 + 52;
                let backlog_ns = (busy[d] - now).as_nanos() as u64;
                let backlog = backlog_ns.saturating_mul(cfg.link.rate) / 1_000_000_000;
                if cfg.link.queue_bytes > 0 && backlog + size > cfg.link.queue_bytes {
                    dropped += 1;
                    continue;
                }
                let tx_start = busy[d].max(now);
                let tx_end = match (size * 1_000_000_000).checked_div(cfg.link.rate) {
                    Some(ns) => tx_start + Duration::from_nanos(ns),
                    None => tx_start,
                };
                busy[d] = tx_end;
                let blackout = cfg.link.blackouts.iter().any(|&(a, b)| now >= a && now < b);
                let explicit = cfg.link.drop_nth.contains(&(to_server, idx));
                if blackout || explicit || rng.unit() < cfg.link.loss {
                    dropped += 1;
                    continue;
                }
                let mut delay = cfg.link.delay;
                if rng.unit() < cfg.link.reorder {
                    delay += cfg.link.reorder_extra;
                }
                order += 1;
                store.insert(order, seg);
                heap.push(Reverse(InFlight {
                    at: tx_end + delay,
                    order,
                    to_server,
                }));
            }
        }
        let server_done = server
            .as_ref()
            .is_some_and(|s| matches!(s.state(), State::TimeWait | State::Closed));
        let client_done = matches!(client.state(), State::TimeWait | State::Closed);
        if (server_done && client_done && heap.is_empty())
            || (client.state() == State::Closed && server.is_none())
        {
            break;
        }
        // Next event.
        let mut next = heap.peek().map(|r| r.0.at);
        let timers = [
            client.poll_timeout(),
            server.as_ref().and_then(|s| s.poll_timeout()),
        ];
        for t in timers.into_iter().flatten() {
            // TIME-WAIT does not hold up the end of a finished run.
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let Some(next) = next else { break };
        if next > cfg.deadline {
            break;
        }
        now = now.max(next);
        while heap.peek().is_some_and(|r| r.0.at <= now) {
            let Some(Reverse(p)) = heap.pop() else { break };
            let Some(seg) = store.remove(&p.order) else {
                continue;
            };
            if p.to_server {
                match server.as_mut() {
                    Some(s) => s.handle_segment(now, &seg),
                    None => match listener.accept_syn(now, caddr, &seg, server_isn, server_ts) {
                        ListenOutcome::Accepted(c) => server = Some(*c),
                        ListenOutcome::Reset(_) | ListenOutcome::Ignored => {}
                    },
                }
            } else {
                client.handle_segment(now, &seg);
            }
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        if let Some(s) = server.as_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
    }
    Outcome {
        client: capp,
        server: sapp,
        client_conn: client,
        server_conn: server,
        end: now,
        packets,
        dropped,
    }
}
