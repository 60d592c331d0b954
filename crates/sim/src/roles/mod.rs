//! What runs on simulated machines.

pub mod traffic;
