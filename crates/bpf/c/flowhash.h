/* The flow hash every lb and proxy agrees on: proto::hash::flow_hash of a
 * packet's (saddr:sport -> daddr:dport); its slot in the weighted slot
 * table is the hash modulo FT_LB_SLOTS (proto::lb::SlotTable::slot_of).
 * Used by the XDP lb (lb.c) and the proxies' client-side pre-splice
 * redirect (forward.h). */
#ifndef FT_FLOWHASH_H
#define FT_FLOWHASH_H

#include <linux/types.h>

/* proto::hash::mix64 (the SplitMix64 finalizer). */
static __always_inline __u64 ft_mix64(__u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* proto::hash::flow_hash of (saddr:sport -> daddr:dport), host order. */
static __always_inline __u64 ft_flow_hash(__u32 saddr, __u16 sport, __u32 daddr, __u16 dport)
{
	__u64 a = ((__u64)saddr << 16) | sport;
	__u64 b = ((__u64)daddr << 16) | dport;
	b = (b << 17) | (b >> 47);
	return ft_mix64(ft_mix64(a) ^ b);
}

#endif
