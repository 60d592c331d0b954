//! What runs on simulated machines: synthetic traffic, TCP hosts with the
//! HTTP workload, the load balancer, the splicing proxy and the split-splice
//! agent.

pub mod agent;
pub mod control;
pub mod endpoint;
pub mod http;
pub mod lb;
pub mod logger;
pub mod presplice;
pub mod proxy;
pub mod tcpip;
pub mod traffic;
pub mod webmail;
