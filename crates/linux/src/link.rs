//! Whether a device is a veth whose peer lives in another network
//! namespace: the one kind of device BPF on TC ingress may hand a packet to
//! the peer's ingress directly (`bpf_redirect_peer`), skipping the egress of
//! this end and a second trip through the CPU's backlog queue. The kernel
//! drops what is redirected that way to any other device (a physical NIC,
//! a bridge, a veth whose peer is in the same namespace), so the data
//! planes use it only for devices this check approves. Read from
//! `ip -details -json link show DEV` in the calling thread's namespace.

use crate::{run_cmd, Error, Result};

/// The ifindex of `dev` if it is a veth whose peer is in another
/// namespace, else `None`.
pub fn veth_peer_elsewhere(dev: &str) -> Result<Option<u32>> {
    let out = run_cmd("ip", &["-details", "-json", "link", "show", "dev", dev])?;
    parse_veth_peer_elsewhere(&out)
        .map_err(|e| Error::State(format!("`ip -details -json link show dev {dev}`: {e}")))
}

/// [`veth_peer_elsewhere`] on the JSON `ip` printed: a veth
/// (`linkinfo.info_kind`) with a `link_netnsid` (its peer's namespace,
/// present only when that is not this one).
pub fn parse_veth_peer_elsewhere(json: &str) -> core::result::Result<Option<u32>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let link = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or("no device in the output")?;
    let ifindex = link
        .get("ifindex")
        .and_then(serde_json::Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .ok_or("no ifindex")?;
    let veth = link
        .get("linkinfo")
        .and_then(|l| l.get("info_kind"))
        .and_then(serde_json::Value::as_str)
        == Some("veth");
    let elsewhere = link.get("link_netnsid").is_some();
    Ok((veth && elsewhere).then_some(ifindex))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{skip_unless_root, NetNs};

    #[test]
    fn parses_ip_json() {
        let other = r#"[{"ifindex":2,"link_index":3,"ifname":"e0","link_netnsid":0,"linkinfo":{"info_kind":"veth"}}]"#;
        assert_eq!(parse_veth_peer_elsewhere(other), Ok(Some(2)));
        let same = r#"[{"ifindex":4,"link":"d1","ifname":"d0","linkinfo":{"info_kind":"veth"}}]"#;
        assert_eq!(parse_veth_peer_elsewhere(same), Ok(None));
        let macvlan =
            r#"[{"ifindex":5,"ifname":"m0","link_netnsid":1,"linkinfo":{"info_kind":"macvlan"}}]"#;
        assert_eq!(parse_veth_peer_elsewhere(macvlan), Ok(None));
        let nic = r#"[{"ifindex":2,"ifname":"eth0"}]"#;
        assert_eq!(parse_veth_peer_elsewhere(nic), Ok(None));
        assert!(parse_veth_peer_elsewhere("[]").is_err());
        assert!(parse_veth_peer_elsewhere("not json").is_err());
    }

    #[test]
    fn only_a_veth_with_its_peer_in_another_namespace_qualifies() {
        if skip_unless_root("only_a_veth_with_its_peer_in_another_namespace_qualifies") {
            return;
        }
        let a = NetNs::new("lka").unwrap();
        let b = NetNs::new("lkb").unwrap();
        a.ip(&["link", "add", "s0", "type", "veth", "peer", "name", "s1"])
            .unwrap();
        a.ip(&[
            "link",
            "add",
            "x0",
            "type",
            "veth",
            "peer",
            "name",
            "x1",
            "netns",
            b.name(),
        ])
        .unwrap();
        a.ip(&["link", "add", "br9", "type", "bridge"]).unwrap();
        let x0 = a.ifindex("x0").unwrap();
        let got = a
            .run(|| ["s0", "x0", "br9", "lo"].map(|d| veth_peer_elsewhere(d).unwrap()))
            .unwrap();
        assert_eq!(got, [None, Some(x0), None, None]);
        assert!(a.run(|| veth_peer_elsewhere("nope")).unwrap().is_err());
    }
}
