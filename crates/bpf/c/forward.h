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
#define FT_L4_OFF (FT_L3_OFF + (__u32)sizeof(struct iphdr))
#define FT_TCP_CSUM_OFF (FT_L4_OFF + (__u32)offsetof(struct tcphdr, check))

/* Finds the splice direction for the packet in skb; NULL if none (the
 * reason is counted). On success *ipp points at the IPv4 header. */
static __always_inline struct splice_val *ft_lookup(struct __sk_buff *skb, struct iphdr **ipp)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		ft_count(FT_C_NOT_IPV4);
		return NULL;
	}
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4) {
		ft_count(FT_C_NOT_IPV4);
		return NULL;
	}
	if (ip->protocol != IPPROTO_TCP) {
		ft_count(FT_C_NOT_TCP);
		return NULL;
	}
	if (ip->frag_off & bpf_htons(0x3fff)) {
		ft_count(FT_C_FRAGMENT);
		return NULL;
	}
	/* Ports sit right after the header, whatever its length. */
	__u32 ihl = (ip->ihl & 15) * 4;
	__u8 *l4 = (__u8 *)ip + ihl;
	if (ihl < sizeof(struct iphdr) || (void *)(l4 + 4) > end) {
		ft_count(FT_C_SLOW_TRUNCATED);
		return NULL;
	}
	struct splice_key k = {
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.sport = *(__be16 *)l4,
		.dport = *(__be16 *)(l4 + 2),
	};
	struct splice_val *v = bpf_map_lookup_elem(&splices, &k);
	if (!v) {
		ft_count(FT_C_NO_SPLICE);
		return NULL;
	}
	*ipp = ip;
	return v;
}

/* Translates and forwards a packet of a splice. Returns the TC verdict. */
static __always_inline int ft_splice_skb(struct __sk_buff *skb)
{
	struct iphdr *ip;
	struct splice_val *v = ft_lookup(skb, &ip);
	if (!v)
		return TC_ACT_OK;
	if (v->flags & FT_F_HOLD) {
		ft_count(FT_C_HOLD_DROP);
		return TC_ACT_SHOT;
	}
	struct ft_csum cs;
	int r = ft_translate(skb, FT_L3_OFF, v, &cs);
	if (r != FT_OK) {
		ft_count(r);
		return TC_ACT_OK;
	}
	ft_count(FT_C_TRANSLATED);
	__be32 daddr = v->daddr, saddr = v->saddr;
	bpf_l4_csum_replace(skb, FT_TCP_CSUM_OFF, 0, ft_csum_diff(cs.pseudo), BPF_F_PSEUDO_HDR);
	bpf_l4_csum_replace(skb, FT_TCP_CSUM_OFF, 0, ft_csum_diff(cs.l4), 0);

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
