/* The map schema shared by the BPF programs and the control plane.
 * Mirrored field for field by crates/linux/src/bpf_abi.rs; the sizes are
 * asserted on both sides. All addresses and ports are in network byte order,
 * every other field in host byte order. */
#ifndef FT_ABI_H
#define FT_ABI_H

#include <linux/types.h>

/* Incoming 4-tuple of a packet, key of the `splices` map. */
struct splice_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

/* splice_val.flags */
#define FT_F_TS 0x01   /* both connections negotiated timestamps */
#define FT_F_SACK 0x02 /* both connections negotiated SACK */
/* splice being created: segments carrying data, SYN or FIN are dropped
 * (peers retransmit them through the splice); pure ACKs and RSTs go on to
 * the proxy's sockets, so their send queues can drain before the freeze. */
#define FT_F_HOLD 0x04

/* splice_val.dir */
#define FT_DIR_C2S 0
#define FT_DIR_S2C 1

/* What to do with a packet matching one splice_key: one entry per direction.
 * Sequence-space values are *added* (wrapping); the control plane negates
 * where proto::splice says "subtract". */
struct splice_val {
	__be32 saddr; /* outgoing source address */
	__be32 daddr; /* outgoing destination address */
	__be16 sport;
	__be16 dport;
	__u32 seq_add;   /* added to the sequence number */
	__u32 ack_add;   /* added to the ack number and SACK block edges */
	__u32 tsval_add; /* added to TSval */
	__u32 tsecr_add; /* added to TSecr */
	__u8 wscale_in;  /* shift the sender applies to its own windows */
	__u8 wscale_out; /* shift the receiver applies to windows it gets */
	__u8 flags;      /* FT_F_* */
	__u8 dir;        /* FT_DIR_* */
	__u32 version;
	__u64 splice_id;
};

/* Index of the per-CPU `counters` array: why a packet went where it went.
 * The splice programs count wire segments (a GSO packet adds gso_segs), the
 * lb counts packets. */
enum ft_counter {
	FT_C_NOT_IPV4 = 0,    /* not IPv4 over Ethernet: stack */
	FT_C_NOT_TCP,         /* IPv4 but not TCP: stack */
	FT_C_FRAGMENT,        /* IP fragment: stack */
	FT_C_NO_SPLICE,       /* TCP, no splice for the 4-tuple: stack */
	FT_C_TRANSLATED,      /* translated (then redirected or to the stack) */
	FT_C_REDIRECTED,      /* translated and sent on by fib lookup */
	FT_C_FIB_STACK,       /* translated, fib lookup failed: stack routes it */
	FT_C_HOLD_DROP,       /* splice on hold: dropped */
	FT_C_SLOW_SYN,        /* SYN on a spliced 4-tuple: slow path */
	FT_C_SLOW_TRUNCATED,  /* headers shorter than they claim: slow path */
	FT_C_SLOW_BAD_OPTION, /* malformed TCP option: slow path */
	FT_C_REDIRECTED_PEER, /* of those redirected (or lb_sent): handed to a
	                       * veth peer's ingress (bpf_redirect_peer) */
	FT_C_LB_SENT,         /* lb: sent to a proxy */
	FT_C_LB_NO_PROXY,     /* lb: no live proxy in the table: stack */
	FT_C_LB_NOT_VIP,      /* lb: not for the service address: stack */
	FT_C_SLOW_BAD_IP_HEADER,  /* IHL or total length inconsistent: stack */
	FT_C_SLOW_BAD_TCP_HEADER, /* data offset below 5 or past the segment */
	FT_C_HOLD_PASS,       /* splice on hold, pure ACK or RST: stack */
	FT_C_PRESPLICE_REDIRECT, /* to the SSA port of another proxy: sent there */
	FT_C_ORPHAN_MARKED,   /* orphaned client ACK marked FT_ORPHAN_MARK: stack */
	FT_C_MAX,
};

/* lb: one slot of the proxy table, filled from proto::lb::SlotTable (each
 * proxy holds about W_i / sum(W) of the slots). */
struct lb_slot {
	__u8 dmac[6]; /* the proxy's MAC */
	__u8 smac[6]; /* our MAC on the egress interface */
	__u32 ifindex; /* egress interface (== ingress: XDP_TX) */
};

#define FT_LB_SLOTS 4096    /* == proto::lb::SLOTS */
#define FT_LB_MODE_FLOW 0   /* flow hash: a connection sticks to one proxy */
#define FT_LB_MODE_SPRAY 1  /* bursts of `burst` packets round the table */
#define FT_LB_MODE_RANDOM 2 /* per packet, a random slot (paper 5.1) */
/* SSA gateway: a TCP packet goes to the owner of its destination port
 * (lb_port_owner, the proxies' SSA port partitions) when that owner is in
 * the table, else by flow hash like FT_LB_MODE_FLOW. */
#define FT_LB_MODE_PORT 3
#define FT_LB_PORTS 65536

struct lb_cfg {
	__be32 vip;
	__u32 nslots; /* slots in use, 0..=FT_LB_SLOTS */
	__u32 mode;
	__u32 burst;
	/* lb_tc: packets sent out of this device (a veth whose peer is in
	 * another namespace) go to the peer's ingress directly
	 * (bpf_redirect_peer); 0: none. */
	__u32 peer_dev;
};

/* proxy: the latest TSval seen per incoming 4-tuple (splice_key) of TCP
 * packets that went to the stack, value of the LRU map `ts_seen`. The
 * kernel keeps the peer's TSval (ts_recent) but does not expose it; the
 * control plane reads it here when it freezes a connection. */
struct ts_seen_val {
	__u32 tsval;
	__u32 packets; /* packets recorded (wraps) */
};

#define FT_TS_SEEN_ENTRIES 65536

/* What a data plane saw of one splice since it was installed, value of the
 * LRU map `splice_seen` keyed by the splice id (__u64). The control plane
 * polls it to drive teardown (proto::teardown). */
#define FT_SEEN_FIN_C2S 0x01
#define FT_SEEN_FIN_S2C 0x02
#define FT_SEEN_RST 0x04

struct splice_seen {
	__u64 first_ns; /* bpf_ktime_get_ns() when the entry was made (not
	                 * refreshed: `packets` changing is the activity) */
	__u64 packets; /* translated segments (a GSO packet counts gso_segs), both directions */
	__u64 flags;   /* FT_SEEN_* (64-bit: BPF atomics need it) */
};

#define FT_SPLICE_SEEN_ENTRIES (1 << 18)

/* proxy: `client_owner` value of a slot this proxy owns and has owned,
 * unchanged, for proto::orphan's grace (0 is an own slot still in its
 * grace). A client ACK in such a slot with no socket here but the listener
 * is an orphan (its pre-splice proxy died, or it is stale): it goes to the
 * stack marked FT_ORPHAN_MARK, and the stack's reset (<SEQ=SEG.ACK><RST>,
 * the LISTEN rule) carries the mark with net.ipv4.fwmark_reflect=1, so it
 * passes the proxy's filter that drops every other reset from the VIP. */
#define FT_OWNER_SETTLED 0xffffffffu
#define FT_ORPHAN_MARK 0x6f727068u /* "orph" */

/* proxy: the shared splice address (single entry of `proxy_cfg`). A TCP
 * packet to ssa:port with no splice belongs to the proxy owning the port's
 * partition: `ssa_owner[port]` holds that proxy's address (0: this proxy,
 * or unknown), and the packet is forwarded to it unchanged. */
#define FT_PEER_DEVS 4

struct proxy_cfg {
	__be32 ssa;
	/* The service address (client-side pre-splice redirect); 0: off. */
	__be32 vip;
	/* Devices (ifindex; 0: unused) that are veths whose peer is in
	 * another namespace: a packet redirected out of one is handed to the
	 * peer's ingress (bpf_redirect_peer), skipping this device's egress
	 * and a second pass through the CPU's backlog queue. */
	__u32 peer_dev[FT_PEER_DEVS];
};

_Static_assert(sizeof(struct proxy_cfg) == 24, "proxy_cfg size");
_Static_assert(sizeof(struct ts_seen_val) == 8, "ts_seen_val size");
_Static_assert(sizeof(struct splice_seen) == 24, "splice_seen size");
_Static_assert(sizeof(struct splice_key) == 12, "splice_key size");
_Static_assert(sizeof(struct splice_val) == 48, "splice_val size");
_Static_assert(sizeof(struct lb_slot) == 16, "lb_slot size");
_Static_assert(sizeof(struct lb_cfg) == 20, "lb_cfg size");

#endif
