//! The BPF data plane: C programs (lb, proxy, agent) sharing one translate
//! header (c/translate.h), their aya loader, and the map entries the control
//! plane writes. The map schema is `ftsplice_linux::bpf_abi` (mirroring
//! c/abi.h); [`splice_map`] derives its entries from `proto::splice::Splice`.
#![forbid(unsafe_code)]

pub mod lb;
mod loader;
mod objects;
pub mod splice_map;

pub use ftsplice_linux::bpf_abi::{
    self, Counter, LbCfg, LbSlot, SpliceKey, SpliceSeen, SpliceVal, TsSeenVal,
};
pub use loader::{Counters, LbPlane, SplicePlane, SpliceRole, TestRun};
pub use objects::{AGENT_OBJ, LB_OBJ, PROXY_OBJ};

/// Errors of loading, attaching and map access.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("loading BPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("BPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("BPF object lacks {0}")]
    Missing(&'static str),
    #[error("invalid input: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = core::result::Result<T, E>;
