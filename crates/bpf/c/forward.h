/* Shared TC glue: parse Ethernet/IPv4/TCP, look the 4-tuple up, translate,
 * fix the TCP checksum with the kernel's helpers, and forward by fib lookup
 * (or hand the translated packet to the stack when the lookup fails). */
#ifndef FT_FORWARD_H
#define FT_FORWARD_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include "translate.h"

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

static __always_inline void ft_count(__u32 c)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &c);
	if (n)
		*n += 1;
}

#define FT_L3_OFF ((__u32)sizeof(struct ethhdr))

/* A packet that passed ft_parse(). */
struct ft_pkt {
	__u32 l4_off; /* TCP header offset in the frame */
	__u32 hlen;   /* TCP header length */
	struct splice_val *v;
};

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
	p->v = bpf_map_lookup_elem(&splices, &k);
	if (!p->v)
		return FT_C_NO_SPLICE;
	p->l4_off = l4_off;
	p->hlen = hlen;
	return FT_PARSED;
}

/* Translates and forwards a packet of a splice. Returns the TC verdict. */
static __always_inline int ft_splice_skb(struct __sk_buff *skb)
{
	struct ft_pkt p;
	int why = ft_parse(skb, &p);
	if (why != FT_PARSED) {
		ft_count(why);
		return TC_ACT_OK;
	}
	struct splice_val *v = p.v;
	if (v->flags & FT_F_HOLD) {
		ft_count(FT_C_HOLD_DROP);
		return TC_ACT_SHOT;
	}
	struct ft_csum cs;
	int r = ft_translate(skb, FT_L3_OFF, p.l4_off, p.hlen, v, &cs);
	if (r != FT_OK) {
		ft_count(r);
		return TC_ACT_OK;
	}
	ft_count(FT_C_TRANSLATED);
	__be32 daddr = v->daddr, saddr = v->saddr;
	__u32 csum_off = (p.l4_off & 0xff) + offsetof(struct tcphdr, check);
	bpf_l4_csum_replace(skb, csum_off, 0, ft_csum_diff(cs.pseudo), BPF_F_PSEUDO_HDR);
	bpf_l4_csum_replace(skb, csum_off, 0, ft_csum_diff(cs.l4), 0);

	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_TCP;
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	fib.ifindex = skb->ingress_ifindex ? skb->ingress_ifindex : skb->ifindex;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0);
		bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0);
		ft_count(FT_C_REDIRECTED);
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh = {};
		nh.nh_family = AF_INET;
		nh.ipv4_nh = fib.ipv4_dst;
		ft_count(FT_C_REDIRECTED);
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	ft_count(FT_C_FIB_STACK);
	return TC_ACT_OK;
}

#endif
