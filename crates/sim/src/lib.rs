//! Deterministic discrete-event simulator: event heap, links, nodes, faults,
//! workloads and scenarios, driving the same sans-IO protocol logic as the
//! Linux daemons.
#![forbid(unsafe_code)]
