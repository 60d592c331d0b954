/* Stateless load balancer (XDP): packets for the service address are sent
 * to a live proxy chosen from a slot table the control plane fills in
 * proportion to the proxies' workload factors. Only the Ethernet addresses
 * change; the proxies own the service address too. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_cfg);
} lb_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FT_LB_SLOTS);
	__type(key, __u32);
	__type(value, struct lb_slot);
} lb_slots SEC(".maps");

/* Per-CPU packet count for burst spraying. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lb_spray SEC(".maps");

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

/* The flow hash; mirrored by ftsplice_bpf::lb::flow_hash. */
static __always_inline __u32 ft_flow_hash(__u32 saddr, __u32 daddr, __u32 ports)
{
	__u32 h = 0x9e3779b9;
	h ^= saddr;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h ^= daddr;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	h ^= ports;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

SEC("xdp")
int lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		ft_count(FT_C_NOT_IPV4);
		return XDP_PASS;
	}
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end) {
		ft_count(FT_C_NOT_IPV4);
		return XDP_PASS;
	}
	__u32 zero = 0;
	struct lb_cfg *cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg || ip->daddr != cfg->vip) {
		ft_count(FT_C_LB_NOT_VIP);
		return XDP_PASS;
	}
	__u32 n = cfg->nslots;
	if (n == 0 || n > FT_LB_SLOTS) {
		ft_count(FT_C_LB_NO_PROXY);
		return XDP_PASS;
	}
	__u32 pick;
	if (cfg->mode == FT_LB_MODE_SPRAY) {
		__u64 *cnt = bpf_map_lookup_elem(&lb_spray, &zero);
		if (!cnt)
			return XDP_PASS;
		__u32 burst = cfg->burst ? cfg->burst : 1;
		pick = (__u32)(*cnt / burst);
		*cnt += 1;
	} else {
		__u32 ports = 0;
		__u32 ihl = (ip->ihl & 15) * 4;
		__u8 *l4 = (__u8 *)ip + (ihl & 0x3c);
		if (ip->protocol == IPPROTO_TCP && !(ip->frag_off & bpf_htons(0x1fff)) &&
		    (void *)(l4 + 4) <= end)
			ports = ((__u32)l4[0] << 24) | ((__u32)l4[1] << 16) | ((__u32)l4[2] << 8) | l4[3];
		pick = ft_flow_hash(bpf_ntohl(ip->saddr), bpf_ntohl(ip->daddr), ports);
	}
	__u32 idx = pick % n;
	struct lb_slot *s = bpf_map_lookup_elem(&lb_slots, &idx);
	if (!s || !s->ifindex) {
		ft_count(FT_C_LB_NO_PROXY);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, s->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, s->smac, ETH_ALEN);
	ft_count(FT_C_LB_SENT);
	if (s->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(s->ifindex, 0);
}

char _license[] SEC("license") = "GPL";
