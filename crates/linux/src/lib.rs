//! Kernel glue: network namespaces and veth pairs, TCP_REPAIR, raw sockets.
//! This is the only crate allowed `unsafe`; every block carries a `// SAFETY:` line.
