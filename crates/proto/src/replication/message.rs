//! Replication messages exchanged between proxies (and from proxies to
//! split-splice agents). Their wire form is in [`super::codec`].

use crate::orphan_records::{PreKey, PreRecord};
use crate::splice::{Direction, Splice, SpliceId};
use crate::ProxyId;

/// One replication message. The sender's [`ProxyId`] travels in the codec
/// header, next to the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A new splice (the creating proxy waits for one ack before dropping
    /// its sockets).
    Create(Splice),
    /// A newer version of a splice.
    Update(Splice),
    /// The splice is gone; `version` is the deleting version (newer than
    /// every version of the splice), so replicas ignore older creates.
    Delete { id: SpliceId, version: u32 },
    /// "Send me your splices with id ≥ `from`", one chunk per request (a
    /// joining proxy pulls the table chunk by chunk).
    SnapshotRequest { from: SpliceId },
    /// One chunk of a snapshot, in id order; `last` when the table holds no
    /// splice after this chunk.
    Snapshot { splices: Vec<Splice>, last: bool },
    /// The receiver holds `id` at `version` or newer (or has deleted it).
    Ack { id: SpliceId, version: u32 },
    /// The sender saw a FIN travelling in `dir` (teardown, unacknowledged).
    Fin { id: SpliceId, dir: Direction },
    /// The sender relayed packets of these splices recently (idle tracking,
    /// sent to each splice's teardown owner; unacknowledged).
    Activity { ids: Vec<SpliceId> },
    /// Client connections the sender accepted and has not spliced (`add`),
    /// and ones that ended or are relayed instead (`remove`)
    /// ([`crate::orphan_records`]; unacknowledged).
    PreSplice {
        add: Vec<PreRecord>,
        remove: Vec<PreKey>,
    },
}

impl Message {
    /// The wire type code.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Create(_) => 1,
            Message::Update(_) => 2,
            Message::Delete { .. } => 3,
            Message::SnapshotRequest { .. } => 4,
            Message::Snapshot { .. } => 5,
            Message::Ack { .. } => 6,
            Message::Fin { .. } => 7,
            Message::Activity { .. } => 8,
            Message::PreSplice { .. } => 9,
        }
    }
}

/// A message with the proxy that sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub sender: ProxyId,
    pub msg: Message,
}
