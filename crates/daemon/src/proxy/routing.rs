//! The proxy's routing built from its config: `proto::route`'s L7 rules
//! and pools, the L4 routes (listen address to pool, no request head), and the HTTP error answers the accept pipeline gives when it
//! cannot splice a request (400/408/431 for bad heads, 502 when the backend
//! cannot be reached, 503 when nothing can serve it).

use crate::config::{PoolPolicy as CfgPolicy, ProxyConfig};
use ftsplice_proto::hash::mix64;
use ftsplice_proto::route::head::{HeadError, HeadLimits, RequestHead};
use ftsplice_proto::route::rules::{HostMatch, Pool, PoolPolicy, Router, Rule};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Rules and pools of one proxy.
#[derive(Clone, Debug)]
pub struct Routing {
    router: Router,
    pools: BTreeMap<String, Pool>,
    /// L4 routes: listen address to pool name.
    l4: BTreeMap<SocketAddrV4, String>,
}

/// Why no backend was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No rule matched and there is no default pool.
    NoRule,
    /// The pool has no usable backend.
    PoolEmpty(String),
}

impl Routing {
    pub fn new(cfg: &ProxyConfig) -> Routing {
        let rules = cfg
            .routes
            .iter()
            .map(|r| Rule {
                host: match r.host.as_deref() {
                    None => HostMatch::Any,
                    Some(h) => match h.strip_prefix("*.") {
                        Some(dom) => HostMatch::Suffix(dom.to_string()),
                        None => HostMatch::Exact(h.to_string()),
                    },
                },
                path_prefix: r.path_prefix.clone(),
                method: r.method.clone(),
                pool: r.pool.clone(),
            })
            .collect();
        let pools = cfg
            .pools
            .iter()
            .map(|p| {
                let policy = match p.policy {
                    CfgPolicy::RoundRobin => PoolPolicy::RoundRobin,
                    // Every proxy must pick the same backend for a client:
                    // the seed is fixed, not per proxy.
                    CfgPolicy::Hash => PoolPolicy::Hash { seed: 0x5eed },
                };
                (
                    p.name.clone(),
                    Pool::new(&p.name, p.backends.clone(), policy),
                )
            })
            .collect();
        Routing {
            router: Router {
                rules,
                default_pool: cfg.default_pool.clone(),
            },
            pools,
            l4: cfg
                .l4_routes
                .iter()
                .map(|r| (r.listen, r.pool.clone()))
                .collect(),
        }
    }

    /// The backend for `head` from `client` (hash pools keep a client's
    /// address on one backend).
    pub fn pick(&mut self, head: &RequestHead, client: Ipv4Addr) -> Result<SocketAddrV4, NoRoute> {
        let name = self.router.route(head).ok_or(NoRoute::NoRule)?;
        self.pick_from(name.to_string(), client)
    }

    /// The backend for a connection accepted on the L4 route `listen`.
    pub fn pick_l4(
        &mut self,
        listen: SocketAddrV4,
        client: Ipv4Addr,
    ) -> Result<SocketAddrV4, NoRoute> {
        let name = self.l4.get(&listen).ok_or(NoRoute::NoRule)?.clone();
        self.pick_from(name, client)
    }

    fn pick_from(&mut self, name: String, client: Ipv4Addr) -> Result<SocketAddrV4, NoRoute> {
        let pool = self
            .pools
            .get_mut(&name)
            .ok_or_else(|| NoRoute::PoolEmpty(name.clone()))?;
        pool.pick(mix64(u64::from(client.to_bits())))
            .ok_or(NoRoute::PoolEmpty(name))
    }
}

/// The parser limits of the config.
pub fn head_limits(cfg: &ProxyConfig) -> HeadLimits {
    HeadLimits {
        max_head: cfg.head.max_bytes,
        max_headers: cfg.head.max_headers,
    }
}

/// The status a refused request head gets.
pub fn status_for(e: &HeadError) -> u16 {
    match e {
        HeadError::TooLarge(_) | HeadError::TooManyHeaders(_) => 431,
        _ => 400,
    }
}

/// A complete `Connection: close` answer with a one-line body.
pub fn error_response(status: u16, detail: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = format!("{status} {reason}: {detail}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use ftsplice_proto::route::head::{parse_head, Parsed};

    fn cfg() -> ProxyConfig {
        let text = r#"
id = 1
vip = "198.18.0.10:80"
ssa = "198.18.4.1"
ssa_ports = "40000-40009"
[[pool]]
name = "web"
backends = ["198.18.3.2:80", "198.18.3.3:80"]
[[pool]]
name = "api"
backends = ["198.18.3.4:8080", "198.18.3.5:8080"]
policy = "hash"
[[route]]
host = "*.example.com"
path_prefix = "/api"
pool = "api"
[[route]]
method = "DELETE"
pool = "web"
[[l4_route]]
listen = "198.18.0.10:5201"
pool = "api"
"#;
        ProxyConfig::from_source(&Source::new("t.toml", text)).unwrap()
    }

    fn head(raw: &str) -> RequestHead {
        match parse_head(raw.as_bytes(), &HeadLimits::default()) {
            Ok(Parsed::Complete(h)) => h,
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn rules_pools_and_policies_follow_the_config() {
        let mut r = Routing::new(&cfg());
        let c = Ipv4Addr::new(198, 18, 1, 1);
        let api = head("GET /api/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n");
        let first = r.pick(&api, c).unwrap();
        assert_eq!(first.port(), 8080);
        // Hash policy: the same client keeps its backend.
        for _ in 0..5 {
            assert_eq!(r.pick(&api, c).unwrap(), first);
        }
        // Round robin alternates.
        let del = head("DELETE /x HTTP/1.1\r\nHost: b\r\n\r\n");
        let a = r.pick(&del, c).unwrap();
        let b = r.pick(&del, c).unwrap();
        assert_ne!(a, b);
        // No rule and no default pool.
        let other = head("GET / HTTP/1.1\r\nHost: b\r\n\r\n");
        assert_eq!(r.pick(&other, c), Err(NoRoute::NoRule));
    }

    #[test]
    fn l4_routes_pick_by_listen_address_alone() {
        let mut r = Routing::new(&cfg());
        let c = Ipv4Addr::new(198, 18, 1, 1);
        let l4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 5201);
        let first = r.pick_l4(l4, c).unwrap();
        assert_eq!(first.port(), 8080, "the api pool");
        // The pool's policy (hash) applies as for L7 routes.
        assert_eq!(r.pick_l4(l4, c).unwrap(), first);
        // Another client may land elsewhere, but always in the pool.
        let other = r.pick_l4(l4, Ipv4Addr::new(198, 18, 1, 2)).unwrap();
        assert_eq!(other.port(), 8080);
        // A listen address without an L4 route.
        let http = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 80);
        assert_eq!(r.pick_l4(http, c), Err(NoRoute::NoRule));
    }

    #[test]
    fn error_answers_are_complete_http() {
        let r = String::from_utf8(error_response(431, "head too large")).unwrap();
        assert!(r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(status_for(&HeadError::TooLarge(10)), 431);
        assert_eq!(status_for(&HeadError::BadHost), 400);
    }
}
