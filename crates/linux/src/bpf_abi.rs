//! The BPF map schema (crates/bpf/c/abi.h), field for field, as `#[repr(C)]`
//! types aya can copy into and out of maps. They live here because
//! implementing `aya::Pod` is `unsafe`, and this is the only crate allowed
//! that; crates/bpf builds them from `proto::splice::Splice`.
//!
//! Byte order: addresses and ports are network order (as in the packet),
//! every other field host order.

#![allow(unsafe_code)] // `unsafe impl Pod`: each has a `// SAFETY:` line.

/// Incoming 4-tuple, key of the `splices` map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct SpliceKey {
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    pub sport: [u8; 2],
    pub dport: [u8; 2],
}

/// `splice_val.flags`: both connections negotiated timestamps.
pub const FLAG_TS: u8 = 0x01;
/// `splice_val.flags`: both connections negotiated SACK.
pub const FLAG_SACK: u8 = 0x02;
/// `splice_val.flags`: splice being created: segments with data, SYN or
/// FIN are dropped, pure ACKs and RSTs go to the stack.
pub const FLAG_HOLD: u8 = 0x04;
pub const DIR_C2S: u8 = 0;
pub const DIR_S2C: u8 = 1;

/// One direction of a splice, value of the `splices` map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct SpliceVal {
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub seq_add: u32,
    pub ack_add: u32,
    pub tsval_add: u32,
    pub tsecr_add: u32,
    pub wscale_in: u8,
    pub wscale_out: u8,
    pub flags: u8,
    pub dir: u8,
    pub version: u32,
    pub splice_id: u64,
}

/// Value of the proxy's `ts_seen` LRU map (key: [`SpliceKey`], the
/// incoming 4-tuple): the latest TSval of TCP packets that went to the
/// stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct TsSeenVal {
    pub tsval: u32,
    /// Packets recorded (wraps).
    pub packets: u32,
}

/// Capacity of `ts_seen`.
pub const TS_SEEN_ENTRIES: u32 = 65_536;

/// `splice_seen.flags`: a FIN travelled client to server.
pub const SEEN_FIN_C2S: u64 = 0x01;
/// `splice_seen.flags`: a FIN travelled server to client.
pub const SEEN_FIN_S2C: u64 = 0x02;
/// `splice_seen.flags`: a RST travelled either way.
pub const SEEN_RST: u64 = 0x04;

/// Value of the `splice_seen` LRU map (key: the splice id, `u64`): what the
/// data plane translated of one splice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct SpliceSeen {
    /// `bpf_ktime_get_ns()` when the entry was made (not refreshed per
    /// packet: a change of `packets` is what tells activity).
    pub first_ns: u64,
    /// Translated segments (a GSO packet counts `gso_segs`), both directions.
    pub packets: u64,
    /// `SEEN_*` bits.
    pub flags: u64,
}

/// Capacity of `splice_seen`.
pub const SPLICE_SEEN_ENTRIES: u32 = 1 << 18;

/// The proxy's shared splice address, single entry of `proxy_cfg`: a TCP
/// packet to `ssa:port` matching no splice is forwarded to the proxy whose
/// address `ssa_owner[port]` holds (0: this proxy, or unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct ProxyCfg {
    pub ssa: [u8; 4],
    /// The service address (client-side pre-splice redirect); 0: off.
    pub vip: [u8; 4],
    /// Devices (ifindex; 0: unused) that are veths whose peer is in another
    /// namespace: packets the proxy redirects out of one go straight to the
    /// peer's ingress (`bpf_redirect_peer`).
    pub peer_dev: [u32; PEER_DEVS],
}

/// Entries of [`ProxyCfg::peer_dev`].
pub const PEER_DEVS: usize = 4;

/// Capacity of the lb slot table (`proto::lb::SLOTS`).
pub const LB_SLOTS: usize = 4096;
pub const LB_MODE_FLOW: u32 = 0;
pub const LB_MODE_SPRAY: u32 = 1;
/// Per packet, a uniformly random slot.
pub const LB_MODE_RANDOM: u32 = 2;
/// SSA gateway: TCP to the owner of the destination port (`lb_port_owner`)
/// when it has one, else flow hash.
pub const LB_MODE_PORT: u32 = 3;
/// Entries of `lb_port_owner` (one per port).
pub const LB_PORTS: usize = 65536;
/// `client_owner` value of a slot this proxy owns and has owned, unchanged,
/// for `proto::orphan`'s grace (`FT_OWNER_SETTLED`): its orphaned client
/// ACKs are marked [`ORPHAN_MARK`] on their way to the stack.
pub const OWNER_SETTLED: core::net::Ipv4Addr = core::net::Ipv4Addr::BROADCAST;
/// The skb mark of an orphaned client ACK (`FT_ORPHAN_MARK`); the stack's
/// reset carries it when `net.ipv4.fwmark_reflect` is 1.
pub const ORPHAN_MARK: u32 = 0x6f72_7068;

/// One slot of the lb's proxy table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct LbSlot {
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    pub ifindex: u32,
}

/// The lb's configuration (single entry of `lb_config`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct LbCfg {
    pub vip: [u8; 4],
    pub nslots: u32,
    pub mode: u32,
    pub burst: u32,
    /// `lb_tc` sends packets leaving by this device (a veth whose peer is
    /// in another namespace) straight to the peer's ingress
    /// (`bpf_redirect_peer`); 0: none.
    pub peer_dev: u32,
}

// SAFETY: repr(C), integers and byte arrays only, no padding (sizes below
// equal the sum of the fields), so every bit pattern is valid and copying
// the bytes to and from the kernel is sound.
unsafe impl aya::Pod for SpliceKey {}
// SAFETY: as above; 48 bytes with no padding.
unsafe impl aya::Pod for SpliceVal {}
// SAFETY: as above; 16 bytes with no padding.
unsafe impl aya::Pod for LbSlot {}
// SAFETY: as above; 8 bytes with no padding.
unsafe impl aya::Pod for TsSeenVal {}
// SAFETY: as above; 24 bytes with no padding.
unsafe impl aya::Pod for ProxyCfg {}
// SAFETY: as above; 24 bytes with no padding.
unsafe impl aya::Pod for SpliceSeen {}
// SAFETY: as above; 20 bytes with no padding.
unsafe impl aya::Pod for LbCfg {}

const _: () = assert!(core::mem::size_of::<SpliceKey>() == 12);
const _: () = assert!(core::mem::size_of::<SpliceVal>() == 48);
const _: () = assert!(core::mem::size_of::<LbSlot>() == 16);
const _: () = assert!(core::mem::size_of::<LbCfg>() == 20);
const _: () = assert!(core::mem::size_of::<TsSeenVal>() == 8);
const _: () = assert!(core::mem::size_of::<ProxyCfg>() == 24);
const _: () = assert!(core::mem::size_of::<SpliceSeen>() == 24);

/// Indices of the per-CPU `counters` array (`enum ft_counter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Counter {
    NotIpv4 = 0,
    NotTcp,
    Fragment,
    NoSplice,
    Translated,
    Redirected,
    FibStack,
    HoldDrop,
    SlowSyn,
    SlowTruncated,
    SlowBadOption,
    /// Of the redirected (or `LbSent`) packets, those handed straight to
    /// a veth peer's ingress (`bpf_redirect_peer`, see [`ProxyCfg::peer_dev`]).
    RedirectedPeer,
    LbSent,
    LbNoProxy,
    LbNotVip,
    SlowBadIpHeader,
    SlowBadTcpHeader,
    /// A pure ACK or RST of a splice on hold went to the stack.
    HoldPass,
    /// To an SSA port of another proxy's partition: forwarded there.
    PresliceRedirect,
    /// An orphaned client ACK (`proto::orphan`) marked [`ORPHAN_MARK`]
    /// for the stack's reset.
    OrphanMarked,
}

impl Counter {
    pub const COUNT: u32 = 20;
    pub const ALL: [Counter; 20] = [
        Counter::NotIpv4,
        Counter::NotTcp,
        Counter::Fragment,
        Counter::NoSplice,
        Counter::Translated,
        Counter::Redirected,
        Counter::FibStack,
        Counter::HoldDrop,
        Counter::SlowSyn,
        Counter::SlowTruncated,
        Counter::SlowBadOption,
        Counter::RedirectedPeer,
        Counter::LbSent,
        Counter::LbNoProxy,
        Counter::LbNotVip,
        Counter::SlowBadIpHeader,
        Counter::SlowBadTcpHeader,
        Counter::HoldPass,
        Counter::PresliceRedirect,
        Counter::OrphanMarked,
    ];

    /// Stable lowercase name for metrics.
    pub fn name(self) -> &'static str {
        match self {
            Counter::NotIpv4 => "not_ipv4",
            Counter::NotTcp => "not_tcp",
            Counter::Fragment => "fragment",
            Counter::NoSplice => "no_splice",
            Counter::Translated => "translated",
            Counter::Redirected => "redirected",
            Counter::FibStack => "fib_stack",
            Counter::HoldDrop => "hold_drop",
            Counter::SlowSyn => "slow_syn",
            Counter::SlowTruncated => "slow_truncated",
            Counter::SlowBadOption => "slow_bad_option",
            Counter::RedirectedPeer => "redirected_peer",
            Counter::LbSent => "lb_sent",
            Counter::LbNoProxy => "lb_no_proxy",
            Counter::LbNotVip => "lb_not_vip",
            Counter::SlowBadIpHeader => "slow_bad_ip_header",
            Counter::SlowBadTcpHeader => "slow_bad_tcp_header",
            Counter::HoldPass => "hold_pass",
            Counter::PresliceRedirect => "presplice_redirect",
            Counter::OrphanMarked => "orphan_marked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_dense_and_named_uniquely() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32);
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::COUNT as usize);
    }
}
