//! Routing rules (request head → backend pool, first match wins, else the
//! default pool) and backend choice within a pool (round robin, or a seeded
//! hash of the client so a client keeps its backend while the pool is
//! unchanged).

use std::collections::BTreeSet;

use core::net::SocketAddrV4;

use super::head::RequestHead;
use crate::hash::mix64;

/// How a rule matches the request's host (compared without port,
/// case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    Exact(String),
    /// The domain itself or any subdomain: `Suffix("example.com")` matches
    /// `example.com` and `a.example.com`, not `badexample.com`.
    Suffix(String),
}

impl HostMatch {
    fn matches(&self, host: Option<&str>) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Exact(want) => host.is_some_and(|h| h.eq_ignore_ascii_case(want)),
            HostMatch::Suffix(dom) => host.is_some_and(|h| {
                let (h, d) = (h.to_ascii_lowercase(), dom.to_ascii_lowercase());
                h == d || h.strip_suffix(&d).is_some_and(|rest| rest.ends_with('.'))
            }),
        }
    }
}

/// One routing rule; every given condition must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub host: HostMatch,
    /// Path prefix on segment boundaries: `/api` matches `/api` and
    /// `/api/x`, not `/apix`; a prefix ending in `/` matches any path
    /// starting with it.
    pub path_prefix: Option<String>,
    /// Method, case-sensitive (methods are).
    pub method: Option<String>,
    pub pool: String,
}

impl Rule {
    pub fn matches(&self, head: &RequestHead) -> bool {
        let path_ok = self.path_prefix.as_deref().is_none_or(|p| {
            head.path
                .strip_prefix(p)
                .is_some_and(|rest| p.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
        });
        path_ok
            && self.method.as_deref().is_none_or(|m| m == head.method)
            && self.host.matches(head.host_name())
    }
}

/// Ordered rules with a default pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Router {
    pub rules: Vec<Rule>,
    pub default_pool: Option<String>,
}

impl Router {
    /// The pool for `head`: the first matching rule's, else the default.
    pub fn route(&self, head: &RequestHead) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.matches(head))
            .map(|r| r.pool.as_str())
            .or(self.default_pool.as_deref())
    }
}

/// How a pool picks a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolPolicy {
    RoundRobin,
    /// Rendezvous hash of the caller's key (e.g. the client's flow hash)
    /// mixed with `seed`.
    Hash {
        seed: u64,
    },
}

/// A named set of backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    backends: Vec<SocketAddrV4>,
    down: BTreeSet<SocketAddrV4>,
    policy: PoolPolicy,
    next: usize,
}

impl Pool {
    pub fn new(name: impl Into<String>, backends: Vec<SocketAddrV4>, policy: PoolPolicy) -> Self {
        Pool {
            name: name.into(),
            backends,
            down: BTreeSet::new(),
            policy,
            next: 0,
        }
    }

    pub fn backends(&self) -> &[SocketAddrV4] {
        &self.backends
    }

    /// Marks a backend unusable (or usable again).
    pub fn set_down(&mut self, backend: SocketAddrV4, down: bool) {
        if down {
            self.down.insert(backend);
        } else {
            self.down.remove(&backend);
        }
    }

    /// A usable backend, `key` identifying the client for hash policy.
    pub fn pick(&mut self, key: u64) -> Option<SocketAddrV4> {
        let up = |b: &&SocketAddrV4| !self.down.contains(*b);
        match self.policy {
            PoolPolicy::RoundRobin => {
                let n = self.backends.len();
                for i in 0..n {
                    let b = self.backends[(self.next + i) % n];
                    if !self.down.contains(&b) {
                        self.next = (self.next + i + 1) % n;
                        return Some(b);
                    }
                }
                None
            }
            PoolPolicy::Hash { seed } => self
                .backends
                .iter()
                .filter(up)
                .max_by_key(|b| {
                    let bits = (u64::from(b.ip().to_bits()) << 16) | u64::from(b.port());
                    (mix64(key ^ seed ^ mix64(bits)), **b)
                })
                .copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::head::{parse_head, HeadLimits, Parsed};
    use core::net::Ipv4Addr;

    fn head(method: &str, path: &str, host: &str) -> RequestHead {
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        match parse_head(raw.as_bytes(), &HeadLimits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    fn rule(host: HostMatch, path: Option<&str>, method: Option<&str>, pool: &str) -> Rule {
        Rule {
            host,
            path_prefix: path.map(str::to_owned),
            method: method.map(str::to_owned),
            pool: pool.into(),
        }
    }

    fn router() -> Router {
        Router {
            rules: vec![
                rule(
                    HostMatch::Exact("static.example.com".into()),
                    None,
                    None,
                    "static",
                ),
                rule(
                    HostMatch::Suffix("video.example.com".into()),
                    None,
                    None,
                    "video",
                ),
                rule(HostMatch::Any, Some("/api"), Some("POST"), "api-write"),
                rule(HostMatch::Any, Some("/api"), None, "api"),
                rule(HostMatch::Any, Some("/files/"), None, "files"),
            ],
            default_pool: Some("web".into()),
        }
    }

    #[test]
    fn first_match_wins_and_default_applies() {
        let r = router();
        let cases = [
            (head("GET", "/api/x", "Static.Example.com:80"), "static"),
            (head("GET", "/", "eu.video.example.com"), "video"),
            (head("GET", "/", "video.example.com"), "video"),
            (head("GET", "/", "badvideo.example.com"), "web"),
            (head("POST", "/api/users", "a"), "api-write"),
            (head("GET", "/api", "a"), "api"),
            (head("GET", "/api?x", "a"), "api"),
            (head("GET", "/apix", "a"), "web"),
            (head("GET", "/files/a/b", "a"), "files"),
            (head("GET", "/files", "a"), "web"),
        ];
        for (h, want) in cases {
            assert_eq!(r.route(&h), Some(want), "{h}");
        }
        let strict = Router {
            default_pool: None,
            ..r
        };
        assert_eq!(strict.route(&head("GET", "/", "x")), None);
    }

    fn be(n: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, n), 8080)
    }

    #[test]
    fn round_robin_skips_down_backends() {
        let mut p = Pool::new("web", vec![be(1), be(2), be(3)], PoolPolicy::RoundRobin);
        let picks: Vec<_> = (0..6).map(|_| p.pick(0).unwrap()).collect();
        assert_eq!(picks, [be(1), be(2), be(3), be(1), be(2), be(3)]);
        p.set_down(be(2), true);
        let picks: Vec<_> = (0..4).map(|_| p.pick(0).unwrap()).collect();
        assert_eq!(picks, [be(1), be(3), be(1), be(3)]);
        for b in [1, 3] {
            p.set_down(be(b), true);
        }
        assert_eq!(p.pick(0), None);
        assert_eq!(Pool::new("e", vec![], PoolPolicy::RoundRobin).pick(0), None);
    }

    #[test]
    fn hash_is_sticky_spread_and_seeded() {
        let mut p = Pool::new(
            "web",
            vec![be(1), be(2), be(3)],
            PoolPolicy::Hash { seed: 1 },
        );
        let mut q = Pool::new(
            "web",
            vec![be(1), be(2), be(3)],
            PoolPolicy::Hash { seed: 2 },
        );
        let mut counts = std::collections::BTreeMap::new();
        let mut differ = 0;
        for k in 0..3_000u64 {
            let a = p.pick(mix64(k)).unwrap();
            assert_eq!(p.pick(mix64(k)), Some(a));
            *counts.entry(a).or_insert(0) += 1;
            differ += usize::from(q.pick(mix64(k)) != Some(a));
        }
        assert!(counts.values().all(|&c| c > 800), "{counts:?}");
        assert!(differ > 1_000, "seed has no effect");
        // Taking a backend down only moves its own clients.
        let before: Vec<_> = (0..500u64).map(|k| p.pick(k).unwrap()).collect();
        p.set_down(be(2), true);
        for (k, b) in before.iter().enumerate() {
            let now = p.pick(k as u64).unwrap();
            if *b != be(2) {
                assert_eq!(now, *b);
            }
        }
    }
}
