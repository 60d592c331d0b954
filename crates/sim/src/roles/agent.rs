//! The split-splice agent on a backend host: a replication peer of the
//! proxies that holds the splices of its backend and rewrites the server's
//! outgoing packets (backend -> SSA) into the client's connection
//! (VIP -> client), so responses bypass the proxies (paper §3, §7.3).

use super::control::{send_repl, tcp_tuple, REPL_PORT};
use crate::net::node::Ctx;
use crate::net::udp;
use crate::stats::Stats;
use core::net::Ipv4Addr;
use ftsplice_proto::replication::{Codec, Replicator, ReplicatorConfig, ReplicatorEvent};
use ftsplice_proto::splice::{translate, Direction};
use ftsplice_proto::{Instant, ProxyId};

/// Agent state (cloned from the configured template on restart).
#[derive(Clone, Debug)]
pub struct Agent {
    me: ProxyId,
    addr: Ipv4Addr,
    proxies: Vec<(ProxyId, Ipv4Addr)>,
    repl: Replicator,
    codec: Codec,
    /// Packets rewritten toward clients.
    pub translated: u64,
}

impl Agent {
    /// `me` is the agent's id in the replication group; `proxies` are the
    /// proxies it replicates with.
    pub fn new(me: ProxyId, addr: Ipv4Addr, proxies: Vec<(ProxyId, Ipv4Addr)>) -> Agent {
        Agent {
            me,
            addr,
            proxies,
            repl: Replicator::new(ReplicatorConfig::new(me)),
            codec: Codec::new(None),
            translated: 0,
        }
    }

    /// Splices known here.
    pub fn splices(&self) -> usize {
        self.repl.table().len()
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        for &(p, _) in &self.proxies {
            self.repl.handle_peer_up(now, p);
        }
        self.flush(ctx);
    }

    /// Rewrites a packet of the local server if it belongs to a splice;
    /// true if it did.
    pub(crate) fn egress(&mut self, _now: Instant, bytes: &mut [u8], stats: &mut Stats) -> bool {
        let Some((src, dst)) = tcp_tuple(bytes) else {
            return false;
        };
        let Some((splice, Direction::ServerToClient)) = self.repl.table().peek(src, dst) else {
            return false;
        };
        match translate(splice, Direction::ServerToClient, bytes) {
            Ok(_) => {
                self.translated += 1;
                true
            }
            Err(e) => {
                stats.drop(e.code());
                false
            }
        }
    }

    pub(crate) fn handle_udp(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        let d = match udp::parse(bytes) {
            Ok(d) if d.dst.port() == REPL_PORT => d,
            Ok(_) => {
                ctx.stats().drop("agent: udp to unknown port");
                return;
            }
            Err(e) => {
                ctx.stats().drop(e.reason());
                return;
            }
        };
        match self.codec.decode(d.payload) {
            Ok(env) => {
                let now = ctx.now();
                self.repl.handle_message(now, env.sender, env.msg);
                self.flush(ctx);
            }
            Err(_) => ctx.stats().drop("agent: bad replication message"),
        }
    }

    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if self.repl.poll_timeout().is_some_and(|t| t <= now) {
            self.repl.handle_timeout(now);
        }
        self.flush(ctx);
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.repl.poll_timeout()
    }

    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((to, msg)) = self.repl.poll_transmit() {
            if let Some(&(_, addr)) = self.proxies.iter().find(|p| p.0 == to) {
                send_repl(ctx, &self.codec, self.me, self.addr, addr, &msg);
            }
        }
        while let Some(ev) = self.repl.poll_event() {
            if let ReplicatorEvent::Synced { .. } = ev {
                ctx.note(crate::stats::Note::Synced);
            }
        }
    }
}
