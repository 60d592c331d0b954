/* Shared TC glue: parse Ethernet/IPv4/TCP, look the 4-tuple up, translate,
 * fix the TCP checksum with the kernel's helpers, and forward by fib lookup
 * (remembered per CPU for 50 ms: the next-hop cache below), or hand the
 * translated packet to the stack when the lookup fails. With
 * FT_EGRESS defined (the agent, on TC egress), a packet whose route leaves
 * by the device it is already leaving goes on with new MACs, unredirected.
 *
 * GSO packets (TSO/GSO offloads on, or GRO on the receiving device) are
 * translated like any other: segmentation copies the rewritten headers
 * into every segment and advances the sequence number per segment, TCP
 * options included. Their checksum is CHECKSUM_PARTIAL: the TCP checksum
 * field holds only the pseudo-header sum, which bpf_l4_csum_replace
 * updates for the address change (BPF_F_PSEUDO_HDR) and leaves alone for
 * the TCP header's own fields (the checksum is computed over those later).
 * Counters and splice_seen count wire segments (gso_segs).
 * Every translated packet is noted in `splice_seen` (teardown); with
 * FT_RECORD_TS defined (the proxy), the TSval of every TCP packet going to
 * the stack is noted in `ts_seen` (splice creation). */
#ifndef FT_FORWARD_H
#define FT_FORWARD_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include "translate.h"
#include "flowhash.h"

#ifndef AF_INET
#define AF_INET 2
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, struct splice_key);
	__type(value, struct splice_val);
} splices SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FT_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FT_SPLICE_SEEN_ENTRIES);
	__type(key, __u64);
	__type(value, struct splice_seen);
} splice_seen SEC(".maps");

#ifdef FT_RECORD_TS
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FT_TS_SEEN_ENTRIES);
	__type(key, struct splice_key);
	__type(value, struct ts_seen_val);
} ts_seen SEC(".maps");
#endif

/* Wire packets in skb: a GSO packet (built by the sending stack, or
 * merged by GRO) stands for gso_segs segments, any other for one. */
static __always_inline __u32 ft_segs(struct __sk_buff *skb)
{
	__u32 n = skb->gso_segs;
	return n ? n : 1;
}

/* Adds the packet's segments to counter c. */
static __always_inline void ft_count(struct __sk_buff *skb, __u32 c)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &c);
	if (n)
		*n += ft_segs(skb);
}

#define FT_L3_OFF ((__u32)sizeof(struct ethhdr))

/* A packet that passed ft_parse(). */
struct ft_pkt {
	__u32 l4_off; /* TCP header offset in the frame */
	__u32 hlen;   /* TCP header length */
	struct splice_val *v;
};

#define FT_TCP_FIN 0x01
#define FT_TCP_SYN 0x02
#define FT_TCP_RST 0x04

/* ft_parse() result for a packet of a splice (counters are >= 0). */
#define FT_PARSED (-1)

/* Validates Ethernet/IPv4/TCP in the reference translator's order
 * (proto::splice::translate docs) and looks the 4-tuple up. Returns
 * FT_PARSED with *p filled, or the counter saying why the packet goes to
 * the stack. */
static __always_inline int ft_parse(struct __sk_buff *skb, struct ft_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return FT_C_NOT_IPV4;
	__u32 len = skb->len - FT_L3_OFF; /* IPv4 bytes in the frame */
	if (len < sizeof(struct iphdr))
		return FT_C_SLOW_TRUNCATED;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return FT_C_SLOW_TRUNCATED;
	if (ip->version != 4)
		return FT_C_NOT_IPV4;
	__u32 ihl = ip->ihl * 4;
	__u32 tl = bpf_ntohs(ip->tot_len);
	if (ihl < sizeof(struct iphdr) || ihl > len || tl < ihl || tl > len)
		return FT_C_SLOW_BAD_IP_HEADER;
	if (ip->frag_off & bpf_htons(0x3fff))
		return FT_C_FRAGMENT;
	if (ip->protocol != IPPROTO_TCP)
		return FT_C_NOT_TCP;
	__u32 seg = tl - ihl;
	if (seg < sizeof(struct tcphdr))
		return FT_C_SLOW_TRUNCATED;
	__u32 l4_off = FT_L3_OFF + (ihl & 0x3c);
	struct tcphdr *tcp = data + l4_off;
	if ((void *)(tcp + 1) > end)
		return FT_C_SLOW_TRUNCATED;
	__u32 hlen = tcp->doff * 4;
	if (hlen < sizeof(struct tcphdr) || hlen > seg)
		return FT_C_SLOW_BAD_TCP_HEADER;
	struct splice_key k = {
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.sport = tcp->source,
		.dport = tcp->dest,
	};
	p->l4_off = l4_off;
	p->hlen = hlen;
	p->v = bpf_map_lookup_elem(&splices, &k);
	if (!p->v)
		return FT_C_NO_SPLICE;
	return FT_PARSED;
}

#ifdef FT_RECORD_TS
/* Options walked to find the timestamp: enough for every layout stacks
 * send (Linux, BSD, Windows put it first, behind two NOPs). */
#define FT_TS_WALK 12

/* Notes the packet's TSval (if it carries a well-formed timestamp option)
 * under its incoming 4-tuple. Called for packets ft_parse() validated. A
 * subprogram with a frame of at most 32 bytes (the main program's is
 * nearly 512): it walks the options in the packet itself, with no helper
 * calls in the loop, so nothing is spilled. */
static __noinline int ft_record_ts(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + FT_L3_OFF;
	if ((void *)(ip + 1) > end)
		return 0;
	struct tcphdr *tcp = (void *)ip + ((ip->ihl * 4) & 0x3c);
	if ((void *)(tcp + 1) > end)
		return 0;
	__u32 n = (tcp->doff * 4) & 0x3c;
	if (n < sizeof(struct tcphdr) + FT_TS_LEN)
		return 0;
	n -= sizeof(struct tcphdr);
	struct splice_key k = {
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.sport = tcp->source,
		.dport = tcp->dest,
	};
	__u8 *opt = (__u8 *)(tcp + 1);
	__u32 off = 0;
	__u32 tsval = 0;
	int found = 0;
	for (int i = 0; i < FT_TS_WALK; i++) {
		if (off + 1 >= n)
			break;
		__u8 *o = opt + (off & 63);
		if ((void *)(o + 2) > end)
			break;
		__u8 kind = o[0];
		if (kind == FT_TCPOPT_EOL)
			break;
		if (kind == FT_TCPOPT_NOP) {
			off += 1;
			continue;
		}
		__u32 len = o[1];
		if (len < 2 || off + len > n)
			break;
		if (kind == FT_TCPOPT_TS) {
			if (len == FT_TS_LEN && (void *)(o + FT_TS_LEN) <= end) {
				tsval = ((__u32)o[2] << 24) | ((__u32)o[3] << 16) | ((__u32)o[4] << 8) | o[5];
				found = 1;
			}
			break;
		}
		off += len;
	}
	if (!found)
		return 0;
	struct ts_seen_val *old = bpf_map_lookup_elem(&ts_seen, &k);
	if (old) {
		old->tsval = tsval;
		old->packets += 1;
		return 1;
	}
	struct ts_seen_val v = { .tsval = tsval, .packets = 1 };
	bpf_map_update_elem(&ts_seen, &k, &v, BPF_ANY);
	return 1;
}
#define FT_RECORD(skb) ft_record_ts(skb)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proxy_cfg);
} proxy_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __be32);
} ssa_owner SEC(".maps");

/* Redirects to the egress of `ifindex`, or, when the control plane listed
 * it in proxy_cfg.peer_dev (a veth whose peer is in another namespace),
 * straight to the peer's ingress: the packet skips this device's egress,
 * the veth transmit and a second trip through the CPU's backlog queue
 * (valid on TC ingress only, which is where the proxy runs). */
static __always_inline long ft_redirect(struct __sk_buff *skb, __u32 ifindex)
{
	__u32 key = 0;
	struct proxy_cfg *cfg = bpf_map_lookup_elem(&proxy_cfg, &key);
	if (cfg && ifindex) {
#pragma unroll
		for (int i = 0; i < FT_PEER_DEVS; i++) {
			if (cfg->peer_dev[i] == ifindex) {
				ft_count(skb, FT_C_REDIRECTED_PEER);
				return bpf_redirect_peer(ifindex, 0);
			}
		}
	}
	return bpf_redirect(ifindex, 0);
}

/* Decrements the IPv4 TTL, updating the header checksum incrementally
 * (the TTL and protocol bytes form one 16-bit word). */
static __always_inline void ft_dec_ttl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + FT_L3_OFF;
	if ((void *)(ip + 1) > end)
		return;
	__u16 *word = (__u16 *)&ip->ttl;
	__u16 old = *word;
	ip->ttl -= 1;
	__u16 now = *word;
	bpf_l3_csum_replace(skb, FT_L3_OFF + __builtin_offsetof(struct iphdr, check), old, now, 2);
}

/* Client side (proto::owner): the owner of each flow-hash slot of the
 * weighted slot table the lb uses (proto::lb::SlotTable over the live
 * proxies and their workload factors), as that proxy's address; 0 where
 * this proxy owns the slot or no table is set. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FT_LB_SLOTS);
	__type(key, __u32);
	__type(value, __be32);
} client_owner SEC(".maps");

/* Scratch for the pre-splice redirect: the FIB lookup's 64 bytes and the
 * socket tuple do not fit the subprogram's stack. */
struct ft_fwd_scratch {
	struct bpf_fib_lookup fib;
	struct bpf_redir_neigh nh;
	struct bpf_sock_tuple tuple;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ft_fwd_scratch);
} fwd_scratch SEC(".maps");

#ifndef FT_TCP_ACK
#define FT_TCP_ACK 0x10
#endif

/* An orphan candidate in a settled slot of this proxy (see
 * FT_OWNER_SETTLED): an ACK without RST is marked for the stack's reset. */
static __always_inline int ft_orphan(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + FT_L3_OFF;
	if ((void *)(ip + 1) > end)
		return -1;
	__u8 *tcp = (void *)ip + ((ip->ihl * 4) & 0x3c);
	if ((void *)(tcp + 14) > end)
		return -1;
	if ((tcp[13] & (FT_TCP_ACK | FT_TCP_RST)) != FT_TCP_ACK)
		return -1;
	skb->mark = FT_ORPHAN_MARK;
	ft_count(skb, FT_C_ORPHAN_MARKED);
	return -1;
}

/* A packet matching no splice that belongs to another proxy, forwarded to
 * it by FIB lookup of its address, headers unchanged but for the TTL:
 * - to the SSA at a port of another proxy's partition (a backend's SYN-ACK
 *   or ACK of a connection that proxy is still splicing);
 * - to the VIP in a flow-hash slot another proxy owns (client_owner), when
 *   this proxy has no socket of the connection (its own pre-splice
 *   connections stay here, whoever owns the slot now). Such packets lose
 *   one TTL per redirect, so proxies whose tables disagree for a moment
 *   cannot bounce a packet forever.
 * A client packet in a slot this proxy owns goes to the stack; in a
 * settled one (FT_OWNER_SETTLED) an orphan is marked first (ft_orphan).
 * Returns the TC verdict, or -1 to go on to the stack. */
static __noinline int ft_presplice(struct __sk_buff *skb)
{
	/* Map lookups first, packet reads after: nothing packet-derived
	 * lives across a helper call, so the frame stays within 32 bytes. */
	__u32 key = 0;
	struct proxy_cfg *cfg = bpf_map_lookup_elem(&proxy_cfg, &key);
	if (!cfg)
		return -1;
	struct ft_fwd_scratch *s = bpf_map_lookup_elem(&fwd_scratch, &key);
	if (!s)
		return -1;
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + FT_L3_OFF;
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
		return -1;
	struct tcphdr *tcp = (void *)ip + ((ip->ihl * 4) & 0x3c);
	if ((void *)(tcp + 1) > end)
		return -1;
	__u64 *w = (__u64 *)&s->fib;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(s->fib) / 8); i++)
		w[i] = 0;
	s->fib.family = AF_INET;
	s->fib.l4_protocol = IPPROTO_TCP;
	s->fib.tot_len = bpf_ntohs(ip->tot_len);
	s->fib.ipv4_src = ip->saddr;
	s->fib.ifindex = skb->ingress_ifindex ? skb->ingress_ifindex : skb->ifindex;
	int client = 0;
	if (cfg->ssa && ip->daddr == cfg->ssa) {
		key = bpf_ntohs(tcp->dest);
	} else if (cfg->vip && ip->daddr == cfg->vip && ip->ttl > 1) {
		client = 1;
		s->tuple.ipv4.saddr = ip->saddr;
		s->tuple.ipv4.daddr = ip->daddr;
		s->tuple.ipv4.sport = tcp->source;
		s->tuple.ipv4.dport = tcp->dest;
		key = (__u32)(ft_flow_hash(bpf_ntohl(ip->saddr), bpf_ntohs(tcp->source),
					    bpf_ntohl(ip->daddr), bpf_ntohs(tcp->dest)) %
			      FT_LB_SLOTS);
	} else {
		return -1;
	}
	__be32 *owner = client ? bpf_map_lookup_elem(&client_owner, &key)
			       : bpf_map_lookup_elem(&ssa_owner, &key);
	if (!owner || !*owner)
		return -1;
	s->fib.ipv4_dst = *owner;
	if (client) {
		/* A connection this proxy has a socket for (handshaking,
		 * accepted, being spliced) stays here; a listener is not one. */
		struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, &s->tuple, sizeof(s->tuple.ipv4),
							 BPF_F_CURRENT_NETNS, 0);
		if (sk) {
			int mine = sk->state != BPF_TCP_LISTEN;
			bpf_sk_release(sk);
			if (mine)
				return -1;
		}
		if (s->fib.ipv4_dst == FT_OWNER_SETTLED)
			return ft_orphan(skb);
	}
	long rc = bpf_fib_lookup(skb, &s->fib, sizeof(s->fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return -1;
	if (client)
		ft_dec_ttl(skb);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		bpf_skb_store_bytes(skb, 0, s->fib.dmac, ETH_ALEN, 0);
		bpf_skb_store_bytes(skb, ETH_ALEN, s->fib.smac, ETH_ALEN, 0);
		ft_count(skb, FT_C_PRESPLICE_REDIRECT);
		return ft_redirect(skb, s->fib.ifindex);
	}
	__u64 *n = (__u64 *)&s->nh;
	n[0] = 0;
	n[1] = 0;
	s->nh.nh_family = AF_INET;
	/* The lookup rewrote ipv4_dst to the next hop. */
	s->nh.ipv4_nh = s->fib.ipv4_dst;
	ft_count(skb, FT_C_PRESPLICE_REDIRECT);
	return bpf_redirect_neigh(s->fib.ifindex, &s->nh, sizeof(s->nh), 0);
}
#define FT_PRESPLICE(skb) ft_presplice(skb)
#else
#define FT_RECORD(skb) 0
#define FT_PRESPLICE(skb) (-1)
/* The agent runs on TC egress, where bpf_redirect_peer is refused. */
#define ft_redirect(skb, ifindex) bpf_redirect(ifindex, 0)
#endif

/* The TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04) of a parsed packet, and
 * whether it carries payload (bit 8). */
static __always_inline __u32 ft_flags_payload(struct __sk_buff *skb, __u32 l4_off, __u32 hlen)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + FT_L3_OFF;
	if ((void *)(ip + 1) > end)
		return 0;
	__u8 *tcp = data + (l4_off & 0xff);
	if ((void *)(tcp + 14) > end)
		return 0;
	__u32 seg = bpf_ntohs(ip->tot_len) - ip->ihl * 4;
	return tcp[13] | (seg > hlen ? 0x100 : 0);
}

/* A packet of a splice on hold: segments with data, SYN or FIN are dropped
 * (the peer retransmits them through the installed splice); pure ACKs and
 * RSTs go to the proxy's socket. Returns the TC verdict. */
static __noinline int ft_hold(struct __sk_buff *skb, __u32 l4_off, __u32 hlen)
{
	__u32 f = ft_flags_payload(skb, l4_off, hlen);
	if (f & (0x100 | FT_TCP_SYN | FT_TCP_FIN)) {
		ft_count(skb, FT_C_HOLD_DROP);
		return TC_ACT_SHOT;
	}
	ft_count(skb, FT_C_HOLD_PASS);
	return TC_ACT_OK;
}


/* Next-hop cache: per CPU, the last successful FIB lookup of each slot
 * (hashed from source, destination and arrival device), trusted for
 * FT_NH_TTL_NS. A lookup walks policy rules, tables and the neighbour
 * table on every packet of a flow that leaves by the same next hop; the
 * cache reads one entry instead. A route or neighbour (MAC) change
 * therefore reaches the packets of a splice within FT_NH_TTL_NS. Failed
 * lookups and unresolved neighbours are not cached. */
#define FT_NH_BITS 8
#define FT_NH_TTL_NS (50ULL * 1000 * 1000)

struct ft_nh {
	__u64 stamp; /* bpf_ktime_get_coarse_ns() of the lookup */
	__be32 saddr;
	__be32 daddr;
	__u32 in_if;
	__u32 out_if;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1 << FT_NH_BITS);
	__type(key, __u32);
	__type(value, struct ft_nh);
} nh_cache SEC(".maps");

static __always_inline struct ft_nh *ft_nh_slot(__be32 saddr, __be32 daddr, __u32 in_if)
{
	__u32 h = (daddr ^ (saddr * 0x9e3779b1u) ^ in_if) * 0x9e3779b1u;
	__u32 key = h >> (32 - FT_NH_BITS);
	return bpf_map_lookup_elem(&nh_cache, &key);
}

/* Notes a translated packet of splice `id` for the control plane (its TCP
 * flags are unchanged by translation). */
static __noinline void ft_note_seen(struct __sk_buff *skb, __u64 id, __u32 dir, __u32 l4_off)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *tcp = data + (l4_off & 0xff);
	if ((void *)(tcp + 14) > end)
		return;
	__u32 tcp_flags = tcp[13];
	__u64 f = 0;
	if (tcp_flags & FT_TCP_FIN)
		f |= dir == FT_DIR_C2S ? FT_SEEN_FIN_C2S : FT_SEEN_FIN_S2C;
	if (tcp_flags & FT_TCP_RST)
		f |= FT_SEEN_RST;
	struct splice_seen *s = bpf_map_lookup_elem(&splice_seen, &id);
	if (s) {
		__sync_fetch_and_add(&s->packets, ft_segs(skb));
		if (f && (s->flags & f) != f)
			__sync_fetch_and_or(&s->flags, f);
		return;
	}
	struct splice_seen n = { .first_ns = bpf_ktime_get_ns(), .packets = ft_segs(skb), .flags = f };
	bpf_map_update_elem(&splice_seen, &id, &n, BPF_NOEXIST);
}

/* Translates and forwards a packet of a splice. Returns the TC verdict. */
static __always_inline int ft_splice_skb(struct __sk_buff *skb)
{
	struct ft_pkt p;
	int why = ft_parse(skb, &p);
	if (why != FT_PARSED) {
		if (why == FT_C_NO_SPLICE) {
			FT_RECORD(skb);
			int verdict = FT_PRESPLICE(skb);
			if (verdict >= 0)
				return verdict;
		}
		ft_count(skb, why);
		return TC_ACT_OK;
	}
	struct splice_val *v = p.v;
	if (v->flags & FT_F_HOLD) {
		int verdict = ft_hold(skb, p.l4_off, p.hlen);
		if (verdict == TC_ACT_OK)
			FT_RECORD(skb);
		return verdict;
	}
	struct ft_csum cs;
	int r = ft_translate(skb, FT_L3_OFF, p.l4_off, p.hlen, v, &cs);
	if (r != FT_OK) {
		ft_count(skb, r);
		return TC_ACT_OK;
	}
	ft_count(skb, FT_C_TRANSLATED);
	ft_note_seen(skb, v->splice_id, v->dir, p.l4_off);
	__be32 daddr = v->daddr, saddr = v->saddr;
	__u32 csum_off = (p.l4_off & 0xff) + offsetof(struct tcphdr, check);
	bpf_l4_csum_replace(skb, csum_off, 0, ft_csum_diff(cs.pseudo), BPF_F_PSEUDO_HDR);
	bpf_l4_csum_replace(skb, csum_off, 0, ft_csum_diff(cs.l4), 0);

	__u32 in_if = skb->ingress_ifindex ? skb->ingress_ifindex : skb->ifindex;
	__u32 out_if;
	struct ft_nh *nh = ft_nh_slot(saddr, daddr, in_if);
	__u64 now = bpf_ktime_get_coarse_ns();
	/* The checksum helpers invalidated packet pointers: re-derive. */
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end) {
		ft_count(skb, FT_C_FIB_STACK);
		return TC_ACT_OK;
	}
	if (nh && nh->daddr == daddr && nh->saddr == saddr && nh->in_if == in_if &&
	    now - nh->stamp < FT_NH_TTL_NS) {
		__builtin_memcpy(eth->h_dest, nh->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, nh->smac, ETH_ALEN);
		out_if = nh->out_if;
	} else {
		struct bpf_fib_lookup fib = {};
		fib.family = AF_INET;
		fib.l4_protocol = IPPROTO_TCP;
		fib.ipv4_src = saddr;
		fib.ipv4_dst = daddr;
		fib.ifindex = in_if;
		long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
			struct bpf_redir_neigh rn = {};
			rn.nh_family = AF_INET;
			rn.ipv4_nh = fib.ipv4_dst;
			ft_count(skb, FT_C_REDIRECTED);
			return bpf_redirect_neigh(fib.ifindex, &rn, sizeof(rn), 0);
		}
		if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
			ft_count(skb, FT_C_FIB_STACK);
			return TC_ACT_OK;
		}
		/* The helper call invalidated packet pointers too. */
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > end) {
			ft_count(skb, FT_C_FIB_STACK);
			return TC_ACT_OK;
		}
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		out_if = fib.ifindex;
		if (nh) {
			nh->daddr = daddr;
			nh->saddr = saddr;
			nh->in_if = in_if;
			nh->out_if = out_if;
			__builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
			__builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
			nh->stamp = now;
		}
	}
	ft_count(skb, FT_C_REDIRECTED);
#ifdef FT_EGRESS
	/* Already on its way out of the right device: carry on. A redirect
	 * would queue it to this device's egress again, and run this program
	 * a second time. */
	if (out_if == skb->ifindex)
		return TC_ACT_OK;
#endif
	return ft_redirect(skb, out_if);
}

#endif
