//! Faults the engine can inject, on a schedule or on demand.

use crate::net::link::LinkId;
use crate::net::node::NodeId;
use ftsplice_proto::Instant;

/// One fault (or repair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The node loses power: all volatile state, queued packets and timers
    /// are gone; frames to it are dropped.
    Crash(NodeId),
    /// The node boots again from its configuration (also how a node that
    /// started down joins).
    Restart(NodeId),
    /// The link drops everything queued, in flight and sent until `LinkUp`.
    LinkDown(LinkId),
    LinkUp(LinkId),
    /// Only nodes in the same group (or both outside every group) can talk;
    /// switches are transparent.
    Partition(Vec<Vec<NodeId>>),
    /// Ends every partition.
    Heal,
}

impl Fault {
    /// Name used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "crash",
            Fault::Restart(_) => "restart",
            Fault::LinkDown(_) => "link-down",
            Fault::LinkUp(_) => "link-up",
            Fault::Partition(_) => "partition",
            Fault::Heal => "heal",
        }
    }
}

/// A fault that was applied, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    pub at: Instant,
    pub fault: Fault,
    /// Name of the node or link it hit (empty for partitions).
    pub target: String,
}
