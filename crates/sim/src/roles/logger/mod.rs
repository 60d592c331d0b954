//! The logger node (paper §3, §4; `crates/recovery` does the thinking): the
//! gateway between the front end and the backends. For every connection
//! to the primary backend's service port it logs both directions and
//! forwards only what [`Logger::on_segment`] accepted (never an unlogged
//! byte), reports acks and FINs, tells the alternate when a response is
//! completely logged (and learns its T_S back), sends the adaptive
//! detector's probes, and when the detector declares the primary failed it
//! recovers every connection with a [`resplice::Driver`]. It is also the
//! aux logger (the backends reach the aux server through it): aux requests
//! and answers are logged by transaction id ([`AuxLog`]) and replayed
//! requests are answered from the log instead of reaching the aux server.
//! Everything else is routed like a plain IP hop.
//!
//! With `passive` set it is only that IP hop: the topology of the
//! client-retry baseline, so both architectures see the same path.

pub mod resplice;

use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, Node};
use crate::net::udp;
use crate::roles::tcpip;
use crate::roles::webmail::backend::conn_key;
use crate::roles::webmail::control::{Ctl, AUX_PORT, PORT};
use crate::stats::Note;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddrV4};
use ftsplice_proto::Instant;
use ftsplice_recovery::aux::{AuxDecision, AuxLog, TxId};
use ftsplice_recovery::log::Direction;
use ftsplice_recovery::logger::{Logger, LoggerConfig, LoggerEvent};
use ftsplice_recovery::tags::TagTable;
use ftsplice_recovery::SeqSpace;
use ftsplice_tcp::Config;
use resplice::{Driver, Frozen, Status};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct LoggerNodeConfig {
    /// The logger's address on the backends' segment (control messages).
    pub addr: Ipv4Addr,
    pub primary: SocketAddrV4,
    pub alternate: SocketAddrV4,
    pub logger: LoggerConfig,
    pub table: Arc<TagTable>,
    /// The logger's recovery connections to the alternate.
    pub tcp: Config,
    /// Only route, log nothing (the baseline).
    pub passive: bool,
    /// The aux server whose traffic is logged.
    pub aux: Option<Ipv4Addr>,
}

/// One logged connection.
struct Track {
    client: SocketAddrV4,
    client_isn: u32,
    c2s: SeqSpace,
    client_wscale: u8,
    client_sack: bool,
    /// Known once the backend's SYN-ACK passed.
    s2c: Option<(u32, SeqSpace, u8, bool)>,
    backend_window: u16,
    /// Latest TSvals of (client, backend), if both offered timestamps.
    ts: (Option<u32>, Option<u32>),
    driver: Option<Driver>,
}

/// Counters and times of the logger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoggerStats {
    pub segments_logged: u64,
    pub segments_withheld: u64,
    pub probes: u64,
    pub failed_at: Option<Instant>,
    pub recovered: u64,
    pub resets: u64,
    pub not_recoverable: u64,
    /// Replayed aux requests answered from the log / differing from it.
    pub aux_answered: u64,
    pub aux_mismatches: u64,
}

pub struct LoggerNode {
    cfg: LoggerNodeConfig,
    logger: Option<Logger>,
    tracks: BTreeMap<u64, Track>,
    aux: AuxLog,
    pub stats: LoggerStats,
}

impl LoggerNode {
    pub fn new(cfg: LoggerNodeConfig) -> LoggerNode {
        LoggerNode {
            cfg,
            logger: None,
            tracks: BTreeMap::new(),
            aux: AuxLog::default(),
            stats: LoggerStats::default(),
        }
    }

    /// The recovery drivers (for reports and tests).
    pub fn drivers(&self) -> impl Iterator<Item = &Driver> {
        self.tracks.values().filter_map(|t| t.driver.as_ref())
    }

    pub fn logger(&self) -> Option<&Logger> {
        self.logger.as_ref()
    }

    fn ctl(&self, ctx: &mut Ctx<'_>, to: Ipv4Addr, m: &Ctl) {
        let b = udp::build(
            SocketAddrV4::new(self.cfg.addr, PORT),
            SocketAddrV4::new(to, PORT),
            &m.encode(),
        );
        ctx.send_ip(b);
    }

    fn handle_ctl(&mut self, ctx: &mut Ctx<'_>, m: Ctl) {
        let now = ctx.now();
        match m {
            Ctl::Applied { conn, t_s } => {
                if let Some(l) = self.logger.as_mut() {
                    l.on_state_applied(now, conn, t_s);
                }
            }
            Ctl::ProbeReply { id } => {
                if let Some(l) = self.logger.as_mut() {
                    l.on_probe_reply(now, id);
                }
            }
            Ctl::Report { conn, t_s, t_a } => {
                if let Some(d) = self.tracks.get_mut(&conn).and_then(|t| t.driver.as_mut()) {
                    d.on_report(ctx, t_s, t_a);
                }
            }
            _ => ctx.stats().drop("logger: unexpected control message"),
        }
        self.process(ctx);
    }

    /// A TCP packet of a logged connection (client <-> primary).
    fn logged(&mut self, ctx: &mut Ctx<'_>, bytes: Vec<u8>, from_client: bool) {
        let now = ctx.now();
        let Ok(p) = tcpip::parse(&bytes) else {
            ctx.stats().drop("logger: bad tcp packet");
            return;
        };
        let client = if from_client { p.src } else { p.dst };
        let key = conn_key(client);
        let Some(logger) = self.logger.as_mut() else {
            return;
        };
        let seg = &p.seg;
        if from_client && seg.flags.syn() && !seg.flags.ack() {
            logger.open(key);
            self.tracks.insert(
                key,
                Track {
                    client,
                    client_isn: seg.seq.0,
                    c2s: SeqSpace::new(seg.seq.0),
                    client_wscale: seg.options.window_scale.unwrap_or(0),
                    client_sack: seg.options.sack_permitted,
                    s2c: None,
                    backend_window: seg.window,
                    ts: (seg.options.timestamp.map(|t| t.tsval), None),
                    driver: None,
                },
            );
            ctx.send_ip(bytes);
            return;
        }
        let Some(t) = self.tracks.get_mut(&key) else {
            // Not seen from its SYN: cannot be logged; pass it (it will not
            // be recoverable).
            ctx.send_ip(bytes);
            return;
        };
        if let (Some(ts), false) = (seg.options.timestamp, t.driver.is_some()) {
            if from_client {
                t.ts.0 = t.ts.0.map(|_| ts.tsval);
            } else if seg.flags.syn() {
                t.ts.1 = t.ts.0.map(|_| ts.tsval);
            } else {
                t.ts.1 = t.ts.1.map(|_| ts.tsval);
            }
        }
        if let Some(d) = t.driver.as_mut() {
            if from_client {
                d.client_packet(ctx, bytes);
            } else {
                ctx.stats().drop("logger: packet of a failed backend");
            }
            return;
        }
        if !from_client && seg.flags.syn() {
            t.s2c = Some((
                seg.seq.0,
                SeqSpace::new(seg.seq.0),
                seg.options.window_scale.unwrap_or(0),
                seg.options.sack_permitted,
            ));
            t.backend_window = seg.window;
            ctx.send_ip(bytes);
            return;
        }
        let Some((_, s2c, _, _)) = t.s2c.as_mut() else {
            ctx.stats()
                .drop("logger: data before the backend's syn-ack");
            return;
        };
        let (data_dir, ack_dir) = if from_client {
            (Direction::ClientToServer, Direction::ServerToClient)
        } else {
            t.backend_window = seg.window;
            (Direction::ServerToClient, Direction::ClientToServer)
        };
        let (data_space, ack_space) = if from_client {
            (&mut t.c2s, s2c)
        } else {
            (s2c, &mut t.c2s)
        };
        let payload: &[u8] = seg.payload;
        let mut forward = bytes.clone();
        if !payload.is_empty() {
            let Some(off) = data_space.offset(seg.seq.0) else {
                ctx.stats().drop("logger: data outside the stream");
                return;
            };
            let a = logger.on_segment(now, key, data_dir, off, payload);
            self.stats.segments_logged += 1;
            if a.withheld.is_some() {
                self.stats.segments_withheld += 1;
            }
            let (fs, fe) = (
                a.forward.start.max(off),
                a.forward.end.min(off + payload.len() as u64),
            );
            if fs >= fe {
                // Nothing logged: drop it, the sender retransmits.
                ctx.stats().drop("logger: segment withheld (not logged)");
                return;
            }
            if (fs, fe) != (off, off + payload.len() as u64) {
                // Forward only the logged part (without a FIN beyond it).
                let out = ftsplice_tcp::Segment {
                    src_port: seg.src_port,
                    dst_port: seg.dst_port,
                    seq: ftsplice_tcp::SeqNum(data_space.seq(fs)),
                    ack: seg.ack,
                    flags: ftsplice_tcp::Flags(seg.flags.0 & !ftsplice_tcp::Flags::FIN.0),
                    window: seg.window,
                    options: seg.options,
                    payload: &payload[(fs - off) as usize..(fe - off) as usize],
                };
                forward = tcpip::emit(*p.src.ip(), *p.dst.ip(), &out);
            }
        }
        if seg.flags.fin() {
            if let Some(off) = data_space.offset(seg.seq.0) {
                logger.on_fin(now, key, data_dir, off + payload.len() as u64);
            }
        }
        if seg.flags.ack() {
            if let Some(ack) = ack_space.offset(seg.ack.0) {
                logger.on_ack(key, ack_dir, ack);
            }
        }
        if seg.flags.rst() {
            logger.close(key);
            self.tracks.remove(&key);
        }
        ctx.send_ip(forward);
        self.process(ctx);
    }

    /// Handles the logger's events, probes and the drivers' requests.
    fn process(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let (primary, alternate) = (*self.cfg.primary.ip(), *self.cfg.alternate.ip());
        let mut failed = false;
        if let Some(l) = self.logger.as_mut() {
            let mut out = Vec::new();
            while let Some(p) = l.poll_transmit() {
                out.push(Ctl::Probe { id: p.id });
            }
            while let Some(ev) = l.poll_event() {
                match ev {
                    LoggerEvent::ResponseLogged { conn, tx, .. } => {
                        out.push(Ctl::Logged { conn, tx });
                    }
                    LoggerEvent::NotRecoverable { .. } => self.stats.not_recoverable += 1,
                    LoggerEvent::BackendFailed(_) => failed = true,
                    LoggerEvent::BackendSuspect => {}
                }
            }
            for m in out {
                let to = if matches!(m, Ctl::Probe { .. }) {
                    self.stats.probes += 1;
                    primary
                } else {
                    alternate
                };
                self.ctl(ctx, to, &m);
            }
        }
        if failed && self.stats.failed_at.is_none() {
            self.stats.failed_at = Some(now);
            ctx.note(Note::PeerDead(primary));
            self.start_recovery(ctx);
        }
        for t in self.tracks.values_mut() {
            let Some(d) = t.driver.as_mut() else { continue };
            for tx in d.take_aux_replays() {
                self.aux
                    .begin_replay(TxId::new(*t.client.ip(), t.client.port(), tx));
            }
        }
    }

    fn start_recovery(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(l) = self.logger.as_ref() else {
            return;
        };
        for (&key, t) in self.tracks.iter_mut() {
            let (Some((backend_isn, s2c, backend_wscale, backend_sack)), Some(rec)) =
                (t.s2c, l.recover(now, key))
            else {
                continue;
            };
            let Some(log) = l.conn_log(key) else { continue };
            let f = Frozen {
                key,
                logger: self.cfg.addr,
                client: t.client,
                backend: self.cfg.primary,
                alternate: self.cfg.alternate,
                c2s: t.c2s,
                s2c,
                client_isn: t.client_isn,
                backend_isn,
                client_wscale: t.client_wscale,
                backend_wscale,
                sack: t.client_sack && backend_sack,
                backend_window: t.backend_window,
                c2s_logged: log.end(Direction::ClientToServer),
                ts: t.ts.0.zip(t.ts.1),
            };
            let ack_cl = log.acked(Direction::ServerToClient);
            let mut d = Driver::new(f, rec, self.cfg.tcp.clone(), ack_cl);
            d.pump(ctx);
            t.driver = Some(d);
        }
    }

    fn tally(&mut self) {
        let (mut done, mut resets) = (0, 0);
        for d in self.drivers() {
            match d.status {
                Status::Done => done += 1,
                Status::Reset(_) => resets += 1,
                Status::Running => {}
            }
        }
        self.stats.recovered = done;
        self.stats.resets = resets;
    }

    /// A datagram to or from the aux server (aux logger, §3.2).
    fn aux_datagram(&mut self, ctx: &mut Ctx<'_>, bytes: Vec<u8>) {
        let Ok(d) = udp::parse(&bytes) else {
            ctx.send_ip(bytes);
            return;
        };
        let (src, dst) = (d.src, d.dst);
        match Ctl::decode(d.payload) {
            Some(Ctl::AuxRequest { tx, body }) if dst.port() == AUX_PORT => {
                match self.aux.on_request(TxId(tx), &body) {
                    AuxDecision::Forward | AuxDecision::ForwardUnanswered => {
                        ctx.send_ip(bytes);
                    }
                    AuxDecision::Answer(resp) => {
                        // Answered in the aux server's name.
                        self.stats.aux_answered += 1;
                        let m = Ctl::AuxResponse { tx, body: resp };
                        ctx.send_ip(udp::build(dst, src, &m.encode()));
                    }
                    AuxDecision::Mismatch => {
                        // The replay is not deterministic; the transaction's
                        // own response comparison decides about the client.
                        self.stats.aux_mismatches += 1;
                        ctx.send_ip(bytes);
                    }
                }
            }
            Some(Ctl::AuxResponse { tx, body }) if src.port() == AUX_PORT => {
                self.aux.on_response(TxId(tx), &body);
                ctx.send_ip(bytes);
            }
            _ => {
                ctx.send_ip(bytes);
            }
        }
    }

    fn route(&mut self, ctx: &mut Ctx<'_>, bytes: Vec<u8>) {
        let Ok(p) = tcpip::parse(&bytes) else {
            ctx.send_ip(bytes);
            return;
        };
        if !self.cfg.passive {
            if p.dst == self.cfg.primary {
                return self.logged(ctx, bytes, true);
            }
            if p.src == self.cfg.primary {
                return self.logged(ctx, bytes, false);
            }
            if p.src == self.cfg.alternate {
                let key = conn_key(p.dst);
                if let Some(d) = self.tracks.get_mut(&key).and_then(|t| t.driver.as_mut()) {
                    d.alternate_packet(ctx, bytes);
                    self.process(ctx);
                    self.tally();
                    return;
                }
            }
        }
        ctx.send_ip(bytes);
    }
}

impl Node for LoggerNode {
    fn kind(&self) -> &'static str {
        "logger"
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        if !self.cfg.passive {
            self.logger = Some(Logger::new(
                ctx.now(),
                self.cfg.logger,
                self.cfg.table.clone(),
            ));
        }
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        if frame.kind != FrameKind::Ip {
            return;
        }
        let to_me = crate::net::node::ipv4_dst(&frame.bytes)
            .is_some_and(|d| ctx.net().ifaces.iter().any(|i| i.addr == d));
        match frame.bytes.get(9) {
            Some(&udp::IPPROTO_UDP) if to_me => match udp::parse(&frame.bytes) {
                Ok(d) => match Ctl::decode(d.payload) {
                    Some(m) => self.handle_ctl(ctx, m),
                    None => ctx.stats().drop("logger: bad control message"),
                },
                Err(e) => ctx.stats().drop(e.reason()),
            },
            Some(6) => {
                self.route(ctx, frame.bytes);
                self.tally();
            }
            Some(&udp::IPPROTO_UDP)
                if !self.cfg.passive
                    && self.cfg.aux.is_some_and(|a| {
                        crate::net::node::ipv4_dst(&frame.bytes) == Some(a)
                            || crate::net::node::ipv4_src(&frame.bytes) == Some(a)
                    }) =>
            {
                self.aux_datagram(ctx, frame.bytes);
                self.process(ctx);
            }
            _ if to_me => ctx.stats().drop("logger: unexpected packet for the logger"),
            _ => {
                ctx.send_ip(frame.bytes);
            }
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if let Some(l) = self.logger.as_mut() {
            if l.poll_timeout().is_some_and(|t| t <= now) {
                l.handle_timeout(now);
            }
        }
        for t in self.tracks.values_mut() {
            if let Some(d) = t.driver.as_mut() {
                if d.poll_timeout().is_some_and(|t| t <= now) {
                    d.handle_timeout(ctx);
                }
            }
        }
        self.process(ctx);
        self.tally();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let l = self.logger.as_ref().and_then(Logger::poll_timeout);
        let d = self
            .tracks
            .values()
            .filter_map(|t| t.driver.as_ref().and_then(Driver::poll_timeout))
            .min();
        [l, d].into_iter().flatten().min()
    }

    fn crash(&mut self) {
        self.logger = None;
        self.tracks.clear();
        self.aux = AuxLog::default();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
