//! Subcommands of the `ftsplice` binary, one module each.

pub mod daemon;
