//! Test topologies: namespaces joined by veth pairs, point to point
//! ([`Topology::link`]) or through a switch, a namespace holding a Linux
//! bridge ([`Topology::add_switch`], [`Topology::attach`]); addressed only
//! inside 198.18.0.0/15 (RFC 2544 benchmarking range), torn down on drop.

use crate::{Error, NetNs, Result};
use std::net::Ipv4Addr;

/// Accepts only addresses in 198.18.0.0/15; test hosts never use any other.
pub fn check_test_addr(addr: Ipv4Addr) -> Result<Ipv4Addr> {
    let o = addr.octets();
    if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
        Ok(addr)
    } else {
        Err(Error::AddrOutOfRange(addr))
    }
}

/// One veth pair between two nodes of a [`Topology`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub a: usize,
    pub a_dev: String,
    pub a_addr: Ipv4Addr,
    pub b: usize,
    pub b_dev: String,
    pub b_addr: Ipv4Addr,
    pub prefix: u8,
}

/// One node's port on a switch: device `dev` in the node (addressed),
/// `port` its peer in the switch namespace, enslaved to the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub node: usize,
    pub dev: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub switch: usize,
    pub port: String,
}

/// Name of the bridge inside every switch node.
pub const BRIDGE: &str = "br0";

/// Turns off checksum and segmentation offloads on `dev` in `ns`.
fn offloads_off(ns: &NetNs, dev: &str) -> Result<()> {
    ns.exec(
        "ethtool",
        &[
            "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off",
        ],
    )
    .map(drop)
}

/// Checksum and segmentation offloads of the veth devices a [`Topology`]
/// creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Offloads {
    /// All off (`ethtool -K DEV tx off rx off tso off gso off gro off`):
    /// every packet between two devices is one MTU-sized frame with a full
    /// checksum. Senders' stacks still build GSO packets, which the device
    /// segments after TC egress.
    #[default]
    Off,
    /// The veth defaults: checksum offload, TSO and GSO on, GRO off.
    /// Packets of up to 64 KiB with `CHECKSUM_PARTIAL` cross every veth and
    /// bridge whole, as between the containers of one host.
    Default,
}

/// Namespaces ("nodes") and veth links. Dropping it deletes every namespace,
/// which deletes the veth devices in them.
#[derive(Debug, Default)]
pub struct Topology {
    // Links die with their namespaces; nodes are dropped in order.
    nodes: Vec<NetNs>,
    offloads: Offloads,
    devs: Vec<u32>,
    links: Vec<Link>,
    switches: Vec<usize>,
    ports: Vec<Port>,
}

impl Topology {
    pub fn new() -> Topology {
        Topology::default()
    }

    /// A topology whose devices get `offloads` (links added later).
    pub fn with_offloads(offloads: Offloads) -> Topology {
        Topology {
            offloads,
            ..Topology::default()
        }
    }

    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    fn set_offloads(&self, ns: &NetNs, dev: &str) -> Result<()> {
        match self.offloads {
            Offloads::Off => offloads_off(ns, dev),
            Offloads::Default => Ok(()),
        }
    }

    /// Adds a node in a fresh namespace; returns its index.
    pub fn add_node(&mut self, tag: &str) -> Result<usize> {
        self.nodes.push(NetNs::new(tag)?);
        self.devs.push(0);
        Ok(self.nodes.len() - 1)
    }

    pub fn node(&self, i: usize) -> &NetNs {
        &self.nodes[i]
    }

    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Joins nodes `a` and `b` with a veth pair (devices `eN` numbered per
    /// node), addresses both ends `/prefix`, brings them up and sets their
    /// offloads ([`Offloads`]; [`Topology::new`] turns them off).
    pub fn link(
        &mut self,
        a: usize,
        a_addr: Ipv4Addr,
        b: usize,
        b_addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<Link> {
        check_test_addr(a_addr)?;
        check_test_addr(b_addr)?;
        if a == b || a >= self.nodes.len() || b >= self.nodes.len() || prefix > 32 {
            return Err(Error::State(format!("bad link {a}-{b}/{prefix}")));
        }
        let a_dev = format!("e{}", self.devs[a]);
        let b_dev = format!("e{}", self.devs[b]);
        self.devs[a] += 1;
        self.devs[b] += 1;
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        na.ip(&[
            "link",
            "add",
            &a_dev,
            "type",
            "veth",
            "peer",
            "name",
            &b_dev,
            "netns",
            nb.name(),
        ])?;
        for (ns, dev, addr) in [(na, &a_dev, a_addr), (nb, &b_dev, b_addr)] {
            ns.ip(&["addr", "add", &format!("{addr}/{prefix}"), "dev", dev])?;
            self.set_offloads(ns, dev)?;
            ns.ip(&["link", "set", dev, "up"])?;
        }
        let link = Link {
            a,
            a_dev,
            a_addr,
            b,
            b_dev,
            b_addr,
            prefix,
        };
        self.links.push(link.clone());
        Ok(link)
    }

    /// Adds a switch: a node whose namespace holds the Linux bridge
    /// [`BRIDGE`] (no STP, no forwarding delay, no multicast snooping, so
    /// ports forward at once and gratuitous ARP floods to every port; no
    /// netfilter calls from the bridge).
    pub fn add_switch(&mut self, tag: &str) -> Result<usize> {
        let sw = self.add_node(tag)?;
        let ns = &self.nodes[sw];
        ns.ip(&[
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ns.ip(&["link", "set", BRIDGE, "up"])?;
        // A switch, not a firewall: with br_netfilter loaded, every frame
        // crossing the bridge would also run the namespace's IPv4/IPv6/ARP
        // netfilter hooks (`bridge-nf-call-*` default to 1 in each new
        // namespace), a per-crossing CPU cost no hardware switch has and
        // that paths with more crossings would pay more of. Per namespace;
        // `-e`: absent without br_netfilter, nothing to turn off then.
        ns.exec(
            "sysctl",
            &[
                "-q",
                "-e",
                "-w",
                "net.bridge.bridge-nf-call-iptables=0",
                "net.bridge.bridge-nf-call-ip6tables=0",
                "net.bridge.bridge-nf-call-arptables=0",
            ],
        )?;
        self.switches.push(sw);
        Ok(sw)
    }

    /// Plugs `node` into `switch`: a veth pair whose node end (`eN`) gets
    /// `addr/prefix` and whose switch end (`pN`) joins the bridge. Offloads as in [`Topology::link`], on both ends.
    pub fn attach(
        &mut self,
        node: usize,
        switch: usize,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<Port> {
        check_test_addr(addr)?;
        if !self.switches.contains(&switch)
            || node == switch
            || node >= self.nodes.len()
            || prefix > 32
        {
            return Err(Error::State(format!(
                "bad attach {node} to switch {switch}"
            )));
        }
        let dev = format!("e{}", self.devs[node]);
        let port = format!("p{}", self.devs[switch]);
        self.devs[node] += 1;
        self.devs[switch] += 1;
        let (nn, ns) = (&self.nodes[node], &self.nodes[switch]);
        nn.ip(&[
            "link",
            "add",
            &dev,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            ns.name(),
        ])?;
        nn.ip(&["addr", "add", &format!("{addr}/{prefix}"), "dev", &dev])?;
        self.set_offloads(nn, &dev)?;
        self.set_offloads(ns, &port)?;
        ns.ip(&["link", "set", &port, "master", BRIDGE])?;
        ns.ip(&["link", "set", &port, "up"])?;
        nn.ip(&["link", "set", &dev, "up"])?;
        let p = Port {
            node,
            dev,
            addr,
            prefix,
            switch,
            port,
        };
        self.ports.push(p.clone());
        Ok(p)
    }

    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// Adds a route on `node` to `dst/prefix` via `gw` (all in range).
    pub fn route(&self, node: usize, dst: Ipv4Addr, prefix: u8, gw: Ipv4Addr) -> Result<()> {
        check_test_addr(dst)?;
        check_test_addr(gw)?;
        self.nodes[node]
            .ip(&[
                "route",
                "add",
                &format!("{dst}/{prefix}"),
                "via",
                &gw.to_string(),
            ])
            .map(drop)
    }

    /// Turns on IPv4 forwarding in `node`.
    pub fn forward(&self, node: usize) -> Result<()> {
        self.nodes[node].sysctl("net.ipv4.ip_forward", "1")
    }

    /// The MAC address of `dev` in `node`.
    pub fn mac(&self, node: usize, dev: &str) -> Result<[u8; 6]> {
        let out = self.nodes[node].ip(&["-o", "link", "show", "dev", dev])?;
        let text = out
            .split("link/ether ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .ok_or_else(|| Error::State(format!("no MAC in `{}`", out.trim())))?;
        parse_mac(text).ok_or_else(|| Error::State(format!("bad MAC {text}")))
    }
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skip_unless_root;

    #[test]
    fn only_benchmark_range_is_accepted() {
        assert!(check_test_addr(Ipv4Addr::new(198, 18, 0, 1)).is_ok());
        assert!(check_test_addr(Ipv4Addr::new(198, 19, 255, 254)).is_ok());
        assert!(check_test_addr(Ipv4Addr::new(198, 20, 0, 1)).is_err());
        assert!(check_test_addr(Ipv4Addr::new(10, 0, 0, 1)).is_err());
        assert!(check_test_addr(Ipv4Addr::new(8, 8, 8, 8)).is_err());
    }

    #[test]
    fn parses_macs() {
        assert_eq!(parse_mac("02:00:0a:ff:00:01"), Some([2, 0, 10, 255, 0, 1]));
        assert_eq!(parse_mac("02:00:0a"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:01:07"), None);
        assert_eq!(parse_mac("zz:00:0a:ff:00:01"), None);
    }

    #[test]
    fn out_of_range_link_is_refused_before_touching_the_kernel() {
        let mut t = Topology::new();
        // No nodes exist: the address check fires first, so this needs no root.
        let err = t
            .link(
                0,
                Ipv4Addr::new(10, 0, 0, 1),
                1,
                Ipv4Addr::new(198, 18, 0, 2),
                24,
            )
            .unwrap_err();
        assert!(matches!(err, Error::AddrOutOfRange(_)));
    }

    #[test]
    fn switch_joins_three_nodes_on_one_lan() {
        if skip_unless_root("switch_joins_three_nodes_on_one_lan") {
            return;
        }
        let mut t = Topology::new();
        let sw = t.add_switch("sw").unwrap();
        let nodes: Vec<usize> = (0..3).map(|_| t.add_node("h").unwrap()).collect();
        let mut ports = Vec::new();
        for (i, &n) in nodes.iter().enumerate() {
            let addr = Ipv4Addr::new(198, 18, 9, 1 + i as u8);
            ports.push(t.attach(n, sw, addr, 24).unwrap());
        }
        assert_eq!(ports[0].dev, "e0");
        assert_eq!(
            ports.iter().map(|p| p.port.as_str()).collect::<Vec<_>>(),
            ["p0", "p1", "p2"]
        );
        assert!(t
            .attach(nodes[0], nodes[1], Ipv4Addr::new(198, 18, 9, 9), 24)
            .is_err());
        // Every node reaches every other one over the bridge, no routes.
        let listener = t
            .node(nodes[2])
            .run(|| std::net::TcpListener::bind("198.18.9.3:0").unwrap())
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        for &n in &nodes[..2] {
            t.node(n)
                .run(move || std::net::TcpStream::connect(("198.18.9.3", port)))
                .unwrap()
                .unwrap();
            listener.accept().unwrap();
        }
        let brif = t
            .node(sw)
            .ip(&["-o", "link", "show", "master", BRIDGE])
            .unwrap();
        assert_eq!(brif.lines().count(), 3, "{brif}");
        // No netfilter calls from the bridge (where br_netfilter exists).
        let nf = t
            .node(sw)
            .exec(
                "sysctl",
                &["-e", "-n", "net.bridge.bridge-nf-call-iptables"],
            )
            .unwrap();
        assert!(nf.trim().is_empty() || nf.trim() == "0", "{nf}");
    }

    #[test]
    fn routed_three_node_line_pings_end_to_end() {
        if skip_unless_root("routed_three_node_line_pings_end_to_end") {
            return;
        }
        let mut t = Topology::new();
        let (c, r, s) = (
            t.add_node("c").unwrap(),
            t.add_node("r").unwrap(),
            t.add_node("s").unwrap(),
        );
        let l1 = t
            .link(
                c,
                Ipv4Addr::new(198, 18, 1, 1),
                r,
                Ipv4Addr::new(198, 18, 1, 2),
                24,
            )
            .unwrap();
        let l2 = t
            .link(
                r,
                Ipv4Addr::new(198, 18, 2, 1),
                s,
                Ipv4Addr::new(198, 18, 2, 2),
                24,
            )
            .unwrap();
        assert_eq!((l1.a_dev.as_str(), l2.a_dev.as_str()), ("e0", "e1"));
        t.forward(r).unwrap();
        t.route(c, Ipv4Addr::new(198, 18, 2, 0), 24, l1.b_addr)
            .unwrap();
        t.route(s, Ipv4Addr::new(198, 18, 1, 0), 24, l2.a_addr)
            .unwrap();
        // A TCP connection across the router proves addressing + routes.
        let listener = t
            .node(s)
            .run(|| std::net::TcpListener::bind("198.18.2.2:0").unwrap())
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = t
            .node(c)
            .run(move || std::net::TcpStream::connect(("198.18.2.2", port)))
            .unwrap()
            .unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer, stream.local_addr().unwrap());
        let mac = t.mac(r, "e0").unwrap();
        assert_ne!(mac, [0; 6]);
        let name = t.node(c).name().to_string();
        drop(t);
        assert!(!std::path::Path::new("/run/netns").join(name).exists());
    }
}
