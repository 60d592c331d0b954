/* Stateless load balancer: packets for the service address are sent to a
 * live proxy chosen from a slot table the control plane fills in proportion
 * to the proxies' workload factors. Only the Ethernet addresses change; the
 * proxies own the service address too. Two entries share the maps and the
 * choice (ft_lb_pick): `lb` for XDP (native on NICs), and `lb_tc` for TC
 * ingress, which handles a GSO packet (up to 64 KiB from a veth with
 * offloads on) as one packet where generic XDP would first copy it into
 * one linear buffer.
 *
 * The flow hash and the slot index are exactly proto::hash::flow_hash and
 * proto::lb::SlotTable::slot_of, and the control plane fills the table from
 * proto::lb::SlotTable, so this program, the simulator's lb and the
 * pre-splice owner rule (proto::owner::client_owner) agree on the proxy of
 * every connection (crates/bpf/tests/lb_program.rs checks it). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "abi.h"
#include "flowhash.h"

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

/* SSA gateway mode: the slot of each destination port's owner; ifindex 0
 * where the port has no live owner. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FT_LB_PORTS);
	__type(key, __u32);
	__type(value, struct lb_slot);
} lb_port_owner SEC(".maps");

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

/* Adds `segs` wire packets to counter c. */
static __always_inline void ft_count(__u32 c, __u32 segs)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &c);
	if (n)
		*n += segs;
}

/* What ft_lb_pick decided. */
#define FT_LB_PASS 0 /* to the stack */
#define FT_LB_DROP 1
#define FT_LB_SEND 2 /* MACs rewritten: send out of *ifindex */

/* Chooses the proxy of the frame [data, end) (`segs` wire packets, for the
 * counters) and rewrites its MACs for it. */
static __always_inline int ft_lb_pick(void *data, void *end, __u32 segs, __u32 *ifindex,
				      __u32 *peer_dev)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		ft_count(FT_C_NOT_IPV4, segs);
		return FT_LB_PASS;
	}
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end) {
		ft_count(FT_C_NOT_IPV4, segs);
		return FT_LB_PASS;
	}
	__u32 zero = 0;
	struct lb_cfg *cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg || ip->daddr != cfg->vip) {
		ft_count(FT_C_LB_NOT_VIP, segs);
		return FT_LB_PASS;
	}
	__u32 n = cfg->nslots;
	if (n == 0 || n > FT_LB_SLOTS) {
		/* No live proxy (or standby): drop TCP, which the clients
		 * retransmit, rather than let a stack that owns the address
		 * reset the connections. */
		ft_count(FT_C_LB_NO_PROXY, segs);
		return ip->protocol == IPPROTO_TCP ? FT_LB_DROP : FT_LB_PASS;
	}
	__u64 pick;
	if (cfg->mode == FT_LB_MODE_RANDOM) {
		pick = bpf_get_prandom_u32();
	} else if (cfg->mode == FT_LB_MODE_SPRAY) {
		__u64 *cnt = bpf_map_lookup_elem(&lb_spray, &zero);
		if (!cnt)
			return FT_LB_PASS;
		__u32 burst = cfg->burst ? cfg->burst : 1;
		pick = *cnt / burst;
		*cnt += 1;
	} else {
		/* Ports 0 when there are none to read (non-TCP, fragments). */
		__u16 sport = 0, dport = 0;
		__u32 ihl = (ip->ihl & 15) * 4;
		__u8 *l4 = (__u8 *)ip + (ihl & 0x3c);
		if (ip->protocol == IPPROTO_TCP && !(ip->frag_off & bpf_htons(0x1fff)) &&
		    (void *)(l4 + 4) <= end) {
			sport = ((__u16)l4[0] << 8) | l4[1];
			dport = ((__u16)l4[2] << 8) | l4[3];
		}
		pick = ft_flow_hash(bpf_ntohl(ip->saddr), sport, bpf_ntohl(ip->daddr), dport);
	}
	__u32 idx = (__u32)(pick % n);
	struct lb_slot *s = 0;
	if (cfg->mode == FT_LB_MODE_PORT && ip->protocol == IPPROTO_TCP &&
	    !(ip->frag_off & bpf_htons(0x1fff))) {
		__u32 ihl = (ip->ihl & 15) * 4;
		__u8 *l4 = (__u8 *)ip + (ihl & 0x3c);
		if ((void *)(l4 + 4) <= end) {
			__u32 dport = ((__u32)l4[2] << 8) | l4[3];
			s = bpf_map_lookup_elem(&lb_port_owner, &dport);
			if (s && !s->ifindex)
				s = 0;
		}
	}
	if (!s)
		s = bpf_map_lookup_elem(&lb_slots, &idx);
	if (!s || !s->ifindex) {
		ft_count(FT_C_LB_NO_PROXY, segs);
		return FT_LB_PASS;
	}
	__builtin_memcpy(eth->h_dest, s->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, s->smac, ETH_ALEN);
	ft_count(FT_C_LB_SENT, segs);
	*ifindex = s->ifindex;
	*peer_dev = cfg->peer_dev;
	return FT_LB_SEND;
}

SEC("xdp")
int lb(struct xdp_md *ctx)
{
	__u32 ifindex = 0, peer_dev = 0;
	int r = ft_lb_pick((void *)(long)ctx->data, (void *)(long)ctx->data_end, 1, &ifindex,
			   &peer_dev);
	if (r == FT_LB_DROP)
		return XDP_DROP;
	if (r != FT_LB_SEND)
		return XDP_PASS;
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/* The same balancer on TC ingress: sent packets leave by the egress of the
 * slot's device (the ingress device itself in a one-armed lb), or, when
 * that device is lb_cfg.peer_dev (a veth whose peer is in another
 * namespace), go straight to the peer's ingress: no second pass through
 * this device's egress, the veth transmit and the CPU's backlog queue. */
SEC("classifier")
int lb_tc(struct __sk_buff *skb)
{
	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u32 ifindex = 0, peer_dev = 0;
	int r = ft_lb_pick((void *)(long)skb->data, (void *)(long)skb->data_end, segs, &ifindex,
			   &peer_dev);
	if (r == FT_LB_DROP)
		return TC_ACT_SHOT;
	if (r != FT_LB_SEND)
		return TC_ACT_OK;
	if (peer_dev && peer_dev == ifindex) {
		ft_count(FT_C_REDIRECTED_PEER, segs);
		return bpf_redirect_peer(ifindex, 0);
	}
	return bpf_redirect(ifindex, 0);
}

char _license[] SEC("license") = "GPL";
