//! The BPF data plane: C programs (lb, proxy, agent) sharing one translate
//! header, their aya loader, and the map types the control plane writes.
#![forbid(unsafe_code)]
