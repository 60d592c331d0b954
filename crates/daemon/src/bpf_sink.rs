//! The BPF data plane as a [`SpliceSink`]: the proxy's `proxy_ingress` (TC
//! ingress) or the agent's `agent_egress` (TC egress) loaded with aya and
//! attached to the configured devices; splices become `splices` map
//! entries, `ts_seen` and `splice_seen` are read back for splice creation
//! and teardown. Attaching happens in the calling thread's network
//! namespace; the programs are detached when the sink is dropped.

use crate::sink::{Seen, SinkError, SpliceSink};
use core::net::{Ipv4Addr, SocketAddrV4};
use core::ops::RangeInclusive;
use ftsplice_bpf::bpf_abi::{SEEN_FIN_C2S, SEEN_FIN_S2C, SEEN_RST};
pub use ftsplice_bpf::SpliceRole as Role;
use ftsplice_bpf::SpliceRole;
use ftsplice_bpf::{Counter, SplicePlane};
use ftsplice_proto::splice::{Splice, SpliceId};
use std::collections::HashMap;

/// A loaded, attached splice program and the splices written to it.
pub struct BpfSink {
    plane: SplicePlane,
    /// What is in the map, by id (removal needs the tuples).
    installed: HashMap<SpliceId, Splice>,
}

fn other(e: ftsplice_bpf::Error) -> SinkError {
    SinkError::Other(e.to_string())
}

impl BpfSink {
    /// Loads the `role`'s program and attaches it to every device. The
    /// proxy hands packets it redirects out of a veth whose peer is in
    /// another namespace straight to the peer (`bpf_redirect_peer`).
    pub fn attach(role: SpliceRole, devices: &[String]) -> Result<BpfSink, SinkError> {
        let mut plane = SplicePlane::load(role).map_err(other)?;
        for d in devices {
            plane
                .attach(d)
                .map_err(|e| SinkError::Other(format!("attaching to {d}: {e}")))?;
        }
        if role == SpliceRole::Proxy {
            let peers = peer_devices(devices);
            plane.set_peer_devices(&peers).map_err(other)?;
        }
        Ok(BpfSink {
            plane,
            installed: HashMap::new(),
        })
    }

    /// Splices in the map.
    pub fn len(&self) -> usize {
        self.installed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }
}

/// The ifindexes of `devices` that are veths with their peer in another
/// namespace (at most `PEER_DEVS`; the rest use a plain redirect).
fn peer_devices(devices: &[String]) -> Vec<u32> {
    let mut out = Vec::new();
    for d in devices {
        match ftsplice_linux::link::veth_peer_elsewhere(d) {
            Ok(Some(i)) if out.len() < ftsplice_bpf::bpf_abi::PEER_DEVS => {
                tracing::info!(device = %d, "veth: redirecting to its peer directly");
                out.push(i);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(device = %d, error = %e, "device kind unknown: plain redirect")
            }
        }
    }
    out
}

impl SpliceSink for BpfSink {
    fn install(&mut self, splice: &Splice) -> Result<(), SinkError> {
        // A newer version of a splice may have moved (never in practice:
        // tuples are immutable); drop stale keys first.
        if let Some(old) = self.installed.get(&splice.id) {
            if (old.client, old.vip, old.ssa, old.backend)
                != (splice.client, splice.vip, splice.ssa, splice.backend)
            {
                self.plane.remove(old).map_err(other)?;
            }
        }
        self.plane.install(splice).map_err(other)?;
        self.installed.insert(splice.id, splice.clone());
        Ok(())
    }

    fn hold(&mut self, splice: &Splice) -> Result<(), SinkError> {
        self.plane.hold(splice).map_err(other)?;
        self.installed.insert(splice.id, splice.clone());
        Ok(())
    }

    fn remove(&mut self, id: SpliceId) -> Result<(), SinkError> {
        match self.installed.remove(&id) {
            Some(s) => self.plane.remove(&s).map_err(other),
            None => Ok(()),
        }
    }

    fn ts_seen(&self, src: SocketAddrV4, dst: SocketAddrV4) -> Option<u32> {
        match self.plane.ts_seen(src, dst) {
            Ok(v) => v.map(|v| v.tsval),
            Err(e) => {
                tracing::warn!(error = %e, "reading ts_seen");
                None
            }
        }
    }

    fn forget_ts(&mut self, src: SocketAddrV4, dst: SocketAddrV4) {
        if let Err(e) = self.plane.forget_ts(src, dst) {
            tracing::warn!(error = %e, "deleting from ts_seen");
        }
    }

    fn seen(&self, id: SpliceId) -> Option<Seen> {
        match self.plane.seen(id) {
            Ok(v) => v.map(|v| Seen {
                packets: v.packets,
                fin_c2s: v.flags & SEEN_FIN_C2S != 0,
                fin_s2c: v.flags & SEEN_FIN_S2C != 0,
                rst: v.flags & SEEN_RST != 0,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "reading splice_seen");
                None
            }
        }
    }

    fn route_ssa(
        &mut self,
        ssa: Ipv4Addr,
        owners: &[(RangeInclusive<u16>, Ipv4Addr)],
    ) -> Result<(), SinkError> {
        if self.plane.role() != SpliceRole::Proxy {
            return Ok(());
        }
        self.plane.set_ssa_owners(ssa, owners).map_err(other)
    }

    fn route_clients(&mut self, vip: Ipv4Addr, owners: &[Ipv4Addr]) -> Result<(), SinkError> {
        if self.plane.role() != SpliceRole::Proxy {
            return Ok(());
        }
        self.plane.set_client_owners(vip, owners).map_err(other)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        match self.plane.counters() {
            Ok(c) => Counter::ALL.iter().map(|&k| (k.name(), c.get(k))).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading BPF counters");
                Vec::new()
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self.plane.role() {
            SpliceRole::Proxy => "bpf-proxy",
            SpliceRole::Agent => "bpf-agent",
        }
    }
}
