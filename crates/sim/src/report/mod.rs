//! Run reports: the DESIGN.md document built from a simulated run
//! ([`json::from_sim`]; the type and its human table live in
//! `ftsplice_report`, shared with the namespace testbed) and SVG line plots
//! ([`svg`]).

pub mod json;
pub mod svg;

pub use ftsplice_report::table;
pub use json::{from_sim, Connections, FaultReport, Latency, Report};
