//! The address plan of the namespace system: one switched LAN like the
//! paper's testbed (Figure 7), subnet 198.18.0.0/24, every node one port on
//! the switch.
//!
//! | node | address |
//! |---|---|
//! | primary lb, backup lb | .2, .3 (the primary answers ARP for the VIP) |
//! | SSA gateway (an lb instance owning the SSA) | .4 |
//! | kernel-forwarding router, HAProxy host (bench only) | .5, .6 |
//! | VIP (on lb; on every proxy's `lo`) | .10 |
//! | SSA (on every proxy's `lo`) | .20 |
//! | proxies | .31 .. |
//! | clients | .51 .. |
//! | backends | .101 .. |
//!
//! Backends reach the SSA through the gateway (the proxies' `lo` copies are
//! hidden by `arp_ignore`), so backend->SSA packets reach a live proxy even
//! when the proxy that opened the connection is dead. A split splice sends
//! from the backend straight to the client over the switch, as in the
//! paper's Figure 2(c). The router's bench path uses a second backend
//! address outside the LAN ([`Plan::routed_backend`]).

use std::net::Ipv4Addr;

/// Prefix length of the LAN.
pub const PREFIX: u8 = 24;

/// Port the service (nginx, or the iperf3 server) listens on behind the VIP.
pub const HTTP_PORT: u16 = 80;
pub const IPERF_PORT: u16 = 5201;
/// Heartbeats to every lb instance.
pub const HEARTBEAT_PORT: u16 = 7000;
/// Replication between proxies (and agents).
pub const REPLICATION_PORT: u16 = 7100;
/// Prometheus endpoints.
pub const METRICS_PORT: u16 = 9100;

/// How many proxies the plan can hold (.31 ..= .50).
pub const MAX_PROXIES: usize = 20;
pub const MAX_CLIENTS: usize = 40;
pub const MAX_BACKENDS: usize = 40;

/// The addresses of one system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub proxies: usize,
    pub clients: usize,
    pub backends: usize,
}

const fn lan(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, host)
}

impl Plan {
    pub fn new(proxies: usize, clients: usize, backends: usize) -> Result<Plan, String> {
        if proxies == 0 || proxies > MAX_PROXIES {
            return Err(format!("proxies must be 1..={MAX_PROXIES}, got {proxies}"));
        }
        if clients == 0 || clients > MAX_CLIENTS {
            return Err(format!("clients must be 1..={MAX_CLIENTS}, got {clients}"));
        }
        if backends == 0 || backends > MAX_BACKENDS {
            return Err(format!(
                "backends must be 1..={MAX_BACKENDS}, got {backends}"
            ));
        }
        Ok(Plan {
            proxies,
            clients,
            backends,
        })
    }

    pub fn vip(&self) -> Ipv4Addr {
        lan(10)
    }
    pub fn ssa(&self) -> Ipv4Addr {
        lan(20)
    }
    pub fn lb(&self) -> Ipv4Addr {
        lan(2)
    }
    pub fn backup_lb(&self) -> Ipv4Addr {
        lan(3)
    }
    pub fn gateway(&self) -> Ipv4Addr {
        lan(4)
    }
    pub fn router(&self) -> Ipv4Addr {
        lan(5)
    }
    pub fn haproxy(&self) -> Ipv4Addr {
        lan(6)
    }
    /// Proxy `i` (0-based); its id is `i + 1`.
    pub fn proxy(&self, i: usize) -> Ipv4Addr {
        lan(31 + i as u8)
    }
    pub fn client(&self, i: usize) -> Ipv4Addr {
        lan(51 + i as u8)
    }
    pub fn backend(&self, i: usize) -> Ipv4Addr {
        lan(101 + i as u8)
    }
    /// A second address of backend 0, outside the LAN, reached only through
    /// the router (bench path "kernel IP forwarding hop").
    pub fn routed_backend(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 2, 10)
    }
    /// Proxy `i`'s share of the SSA's ports: equal disjoint slices of
    /// 20000..=59999.
    pub fn ssa_ports(&self, i: usize) -> (u16, u16) {
        let per = 40_000 / self.proxies as u32;
        let lo = 20_000 + per * i as u32;
        (lo as u16, (lo + per - 1) as u16)
    }
    /// Agent ids follow the proxies' (1..=proxies) at 101..
    pub fn agent_id(&self, backend: usize) -> u16 {
        101 + backend as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn addresses_are_distinct_and_in_the_test_range() {
        let p = Plan::new(MAX_PROXIES, MAX_CLIENTS, MAX_BACKENDS).unwrap();
        let mut all = vec![
            p.vip(),
            p.ssa(),
            p.lb(),
            p.backup_lb(),
            p.gateway(),
            p.router(),
            p.haproxy(),
            p.routed_backend(),
        ];
        all.extend((0..p.proxies).map(|i| p.proxy(i)));
        all.extend((0..p.clients).map(|i| p.client(i)));
        all.extend((0..p.backends).map(|i| p.backend(i)));
        let set: BTreeSet<_> = all.iter().collect();
        assert_eq!(set.len(), all.len());
        for a in all {
            assert!(ftsplice_linux::check_test_addr(a).is_ok(), "{a}");
        }
    }

    #[test]
    fn port_partitions_are_disjoint_and_cover_no_service_port() {
        for n in 1..=MAX_PROXIES {
            let p = Plan::new(n, 1, 1).unwrap();
            let mut prev_hi = 19_999u16;
            for i in 0..n {
                let (lo, hi) = p.ssa_ports(i);
                assert!(lo > prev_hi && hi >= lo, "{n} {i}: {lo}-{hi}");
                prev_hi = hi;
            }
            assert!(prev_hi <= 59_999);
        }
    }

    #[test]
    fn sizes_are_bounded() {
        assert!(Plan::new(0, 1, 1).is_err());
        assert!(Plan::new(MAX_PROXIES + 1, 1, 1).is_err());
        assert!(Plan::new(1, 0, 1).is_err());
        assert!(Plan::new(1, 1, MAX_BACKENDS + 1).is_err());
    }
}
