//! Where a proxy (or agent) installs splices: the data plane behind a small
//! trait, so the control plane does not depend on how packets are moved.
//! The BPF implementation is [`crate::bpf_sink::BpfSink`]; without it a
//! daemon has [`NoDataPlane`] and refuses to splice rather than pretend.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::ops::RangeInclusive;
use ftsplice_proto::splice::{Splice, SpliceId};

/// Why the data plane refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("data plane table full ({0} entries)")]
    Full(usize),
    #[error("data plane: {0}")]
    Other(String),
}

/// What the data plane relayed of one splice since it was installed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Packets translated (both directions).
    pub packets: u64,
    pub fin_c2s: bool,
    pub fin_s2c: bool,
    pub rst: bool,
}

/// A data plane that relays packets of installed splices.
pub trait SpliceSink: Send {
    /// Installs (or replaces with a newer version) `splice`, both directions.
    fn install(&mut self, splice: &Splice) -> Result<(), SinkError>;
    /// Installs `splice` on hold while it is being created: segments with
    /// data, SYN or FIN are dropped (their senders retransmit them through
    /// the splice), pure ACKs go on to the proxy's sockets.
    fn hold(&mut self, splice: &Splice) -> Result<(), SinkError>;
    /// Removes the splice; removing an unknown id is not an error.
    fn remove(&mut self, id: SpliceId) -> Result<(), SinkError>;
    /// The latest TSval seen on packets `src -> dst` that went to the
    /// local stack (`None`: not seen).
    fn ts_seen(&self, src: SocketAddrV4, dst: SocketAddrV4) -> Option<u32>;
    /// Forgets what [`Self::ts_seen`] knows of `src -> dst`.
    fn forget_ts(&mut self, src: SocketAddrV4, dst: SocketAddrV4);
    /// What was relayed of splice `id` (`None`: nothing yet, or unknown).
    fn seen(&self, id: SpliceId) -> Option<Seen>;
    /// Packets to `ssa:port` that match no splice go to the proxy owning
    /// `port` (another proxy's partition, at that proxy's address); ports
    /// not listed are this node's. A no-op for data planes without it.
    fn route_ssa(
        &mut self,
        _ssa: Ipv4Addr,
        _owners: &[(RangeInclusive<u16>, Ipv4Addr)],
    ) -> Result<(), SinkError> {
        Ok(())
    }
    /// Client-side pre-splice routing: a packet to `vip` that matches no
    /// splice and no local socket goes to `owners[slot]`, the address of
    /// the owner of its flow-hash slot in the lb's weighted slot table
    /// (`ftsplice_bpf::lb::owner_addrs`; 0.0.0.0: this node). Empty
    /// `owners`: every connection is this node's. A no-op for data planes
    /// without it.
    fn route_clients(&mut self, _vip: Ipv4Addr, _owners: &[Ipv4Addr]) -> Result<(), SinkError> {
        Ok(())
    }
    /// Data-plane packet counters by reason, for metrics.
    fn counters(&self) -> Vec<(&'static str, u64)>;
    /// Short name for logs and metrics.
    fn kind(&self) -> &'static str;
}

/// The sink a daemon gets when no data plane is built in: every install
/// fails with a reason, so a proxy never drops sockets of a connection
/// nobody relays.
#[derive(Debug, Default)]
pub struct NoDataPlane;

const NO_PLANE: &str = "no data plane (the BPF programs of crates/bpf are not loaded)";

impl SpliceSink for NoDataPlane {
    fn install(&mut self, _splice: &Splice) -> Result<(), SinkError> {
        Err(SinkError::Other(NO_PLANE.into()))
    }
    fn hold(&mut self, _splice: &Splice) -> Result<(), SinkError> {
        Err(SinkError::Other(NO_PLANE.into()))
    }
    fn remove(&mut self, _id: SpliceId) -> Result<(), SinkError> {
        Ok(())
    }
    fn ts_seen(&self, _src: SocketAddrV4, _dst: SocketAddrV4) -> Option<u32> {
        None
    }
    fn forget_ts(&mut self, _src: SocketAddrV4, _dst: SocketAddrV4) {}
    fn seen(&self, _id: SpliceId) -> Option<Seen> {
        None
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    fn kind(&self) -> &'static str {
        "none"
    }
}
