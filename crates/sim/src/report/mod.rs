//! Run reports: the JSON document of DESIGN.md ([`json`]), a human table
//! ([`table`]) and SVG line plots ([`svg`]).

pub mod json;
pub mod svg;
pub mod table;

pub use json::{Connections, FaultReport, Latency, Report};
