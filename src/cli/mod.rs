//! Subcommands of the `ftsplice` binary, one module each.

pub mod bench;
pub mod bench_studies;
pub mod daemon;
pub mod demo;
pub mod sim;
pub mod study;
pub mod testbed;
