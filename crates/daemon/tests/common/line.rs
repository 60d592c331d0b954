//! The address plan and topology shared by the live daemon tests: a client,
//! one proxy (VIP and SSA on its `lo`) and a backend in a line, optionally
//! with the backend's direct link to the client (split splice) or a second
//! proxy (failover); and the `proxy.toml` template they fill in.

use ftsplice_linux::{NetNs, Topology};
use std::net::Ipv4Addr;

/// Client on the proxy's first link.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 1);
/// The proxy's address toward the client.
pub const P_IN: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 2);
/// The proxy's address toward the backend.
pub const P_OUT: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 1);
/// The backend (on the proxy's link).
pub const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 2);
/// The service address, on the proxies' `lo`.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 62, 10);
/// The shared splice address, on the proxies' `lo`.
pub const SSA: Ipv4Addr = Ipv4Addr::new(198, 18, 62, 20);
/// The client's end of the direct link to the backend.
pub const C_DIRECT: Ipv4Addr = Ipv4Addr::new(198, 18, 66, 1);
/// The backend's end of its direct link to the client.
pub const B_DIRECT: Ipv4Addr = Ipv4Addr::new(198, 18, 66, 2);
/// The client's link to the second proxy.
pub const C_2: Ipv4Addr = Ipv4Addr::new(198, 18, 63, 1);
pub const P2_IN: Ipv4Addr = Ipv4Addr::new(198, 18, 63, 2);
/// The second proxy's link to the backend.
pub const P2_OUT: Ipv4Addr = Ipv4Addr::new(198, 18, 64, 1);
pub const BACKEND_2: Ipv4Addr = Ipv4Addr::new(198, 18, 64, 2);
/// The proxies' replication link.
pub const P_REPL: Ipv4Addr = Ipv4Addr::new(198, 18, 65, 1);
pub const P2_REPL: Ipv4Addr = Ipv4Addr::new(198, 18, 65, 2);

/// Network of the client's first link.
pub const CLIENT_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 0);
/// Network of the first proxy's backend link.
pub const BACKEND_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 0);

/// The namespaces of a line topology (deleted when dropped).
pub struct Line {
    pub t: Topology,
    pub c: usize,
    pub p: usize,
    pub b: usize,
    /// The second proxy, if asked for.
    pub p2: Option<usize>,
}

/// What differs between the tests' topologies.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineOptions {
    /// Client e1 -- backend e1 (`C_DIRECT`/`B_DIRECT`); the backend routes
    /// the client's network over it and forwards (split-splice agent).
    pub direct: bool,
    /// A second proxy: client e1 -- p2 e0, p2 e1 -- backend e1, and
    /// p e2 -- p2 e2 for replication. The backend's route to the SSA goes
    /// to p2 (it forwards pre-splice packets to their owner); the client's
    /// route to the VIP goes to p.
    pub second_proxy: bool,
}

impl Line {
    /// Client -- proxy -- backend; node names are `{tag}c`, `{tag}p`,
    /// `{tag}b` (and `{tag}q`).
    pub fn new(tag: &str, o: LineOptions) -> Line {
        assert!(
            !(o.direct && o.second_proxy),
            "direct link and second proxy are not combined"
        );
        let mut t = Topology::new();
        let c = t.add_node(&format!("{tag}c")).unwrap();
        let p = t.add_node(&format!("{tag}p")).unwrap();
        let p2 = o
            .second_proxy
            .then(|| t.add_node(&format!("{tag}q")).unwrap());
        let b = t.add_node(&format!("{tag}b")).unwrap();
        t.link(c, CLIENT, p, P_IN, 24).unwrap(); // c e0, p e0
        if let Some(q) = p2 {
            t.link(c, C_2, q, P2_IN, 24).unwrap(); // c e1, q e0
        }
        t.link(p, P_OUT, b, BACKEND, 24).unwrap(); // p e1, b e0
        t.route(c, VIP, 32, P_IN).unwrap();
        match p2 {
            Some(q) => {
                t.link(q, P2_OUT, b, BACKEND_2, 24).unwrap(); // q e1, b e1
                t.link(p, P_REPL, q, P2_REPL, 24).unwrap(); // p e2, q e2
                t.route(b, SSA, 32, P2_OUT).unwrap();
                // The second proxy reaches the client's and the backend's
                // addresses on the first proxy's links.
                t.route(q, CLIENT_NET, 24, C_2).unwrap();
                t.route(q, BACKEND_NET, 24, BACKEND_2).unwrap();
            }
            None => t.route(b, SSA, 32, P_OUT).unwrap(),
        }
        if o.direct {
            t.link(c, C_DIRECT, b, B_DIRECT, 24).unwrap(); // c e1, b e1
            t.route(b, CLIENT_NET, 24, C_DIRECT).unwrap();
            t.forward(b).unwrap();
        }
        for n in std::iter::once(p).chain(p2) {
            for a in [VIP, SSA] {
                t.node(n)
                    .ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"])
                    .unwrap();
            }
            t.forward(n).unwrap();
        }
        Line { t, c, p, b, p2 }
    }

    pub fn client(&self) -> &NetNs {
        self.t.node(self.c)
    }

    pub fn proxy(&self) -> &NetNs {
        self.t.node(self.p)
    }

    pub fn backend(&self) -> &NetNs {
        self.t.node(self.b)
    }

    pub fn proxy2(&self) -> &NetNs {
        self.t.node(self.p2.expect("no second proxy"))
    }
}

/// The `proxy.toml` of a test proxy: VIP port 80, the SSA, pool `web` of
/// `BACKEND:8080`, plus what the test adds.
#[derive(Clone, Debug)]
pub struct ProxyToml {
    pub id: u16,
    pub ssa_ports: &'static str,
    /// A TOML array of device names.
    pub interfaces: &'static str,
    /// Extra top-level keys (`mss_clamp = 1400`, `default_pool = "web"`).
    pub top: String,
    /// Extra tables (`[teardown]`, `[replication]`, `[[route]]`, ...).
    pub tables: String,
}

/// Fast teardown: deleted 200 ms after FINs both ways.
pub const FAST_TEARDOWN: &str = "[teardown]\nlinger_ms = 200\nidle_ms = 10000\ntick_ms = 50\n";

impl Default for ProxyToml {
    fn default() -> ProxyToml {
        ProxyToml {
            id: 1,
            ssa_ports: "40000-40099",
            interfaces: r#"["e0", "e1"]"#,
            top: "mss_clamp = 1400\ndefault_pool = \"web\"\n".into(),
            tables: FAST_TEARDOWN.into(),
        }
    }
}

impl ProxyToml {
    pub fn render(&self) -> String {
        format!(
            "id = {}\nvip = \"{VIP}:80\"\nssa = \"{SSA}\"\nssa_ports = \"{}\"\n\
             interface = {}\n{}\n[[pool]]\nname = \"web\"\nbackends = [\"{BACKEND}:8080\"]\n\n{}",
            self.id, self.ssa_ports, self.interfaces, self.top, self.tables
        )
    }
}
