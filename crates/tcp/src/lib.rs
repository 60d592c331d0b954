//! A sans-IO TCP endpoint that behaves like Linux defaults (RFC 6298 RTO with a
//! 200 ms floor, SACK-based loss recovery, timestamps, window scaling), used by
//! the simulator for clients, servers and the proxies' pre-splice sockets.
#![forbid(unsafe_code)]
