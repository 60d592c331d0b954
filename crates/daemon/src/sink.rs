//! Where a proxy (or agent) installs splices: the data plane behind a small
//! trait, so the control plane does not depend on how packets are moved.
//! The BPF implementation (maps of crates/bpf) plugs in here; until it
//! exists a daemon has no sink and refuses to start splicing rather than
//! pretend.

use ftsplice_proto::splice::{Splice, SpliceId};

/// Why the data plane refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("data plane table full ({0} entries)")]
    Full(usize),
    #[error("data plane: {0}")]
    Other(String),
}

/// A data plane that relays packets of installed splices.
pub trait SpliceSink: Send {
    /// Installs (or replaces with a newer version) `splice`, both directions.
    fn install(&mut self, splice: &Splice) -> Result<(), SinkError>;
    /// Removes the splice; removing an unknown id is not an error.
    fn remove(&mut self, id: SpliceId) -> Result<(), SinkError>;
    /// Short name for logs and metrics.
    fn kind(&self) -> &'static str;
}

/// The sink a daemon gets when no data plane is built in: every install
/// fails with a reason, so a proxy never drops sockets of a connection
/// nobody relays.
#[derive(Debug, Default)]
pub struct NoDataPlane;

impl SpliceSink for NoDataPlane {
    fn install(&mut self, _splice: &Splice) -> Result<(), SinkError> {
        Err(SinkError::Other(
            "no data plane in this build (the BPF loader of crates/bpf is not available)".into(),
        ))
    }
    fn remove(&mut self, _id: SpliceId) -> Result<(), SinkError> {
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "none"
    }
}
