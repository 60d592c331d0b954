/* Splice translation of one IPv4/TCP packet, in place: the C twin of
 * ftsplice_proto::splice::translate. Both must produce the same bytes for
 * every packet of the shared fixture table (crates/proto/fixtures).
 *
 * The packet is validated completely before the first byte is written, so a
 * packet sent to the slow path is untouched: the options (at most 40 bytes)
 * are copied to the stack and walked there one bpf_loop() step per option
 * (a plain 40-iteration loop over packet pointers exceeds the verifier's
 * 1M-instruction budget), and stored back only once accepted. The TCP checksum is not written
 * here: the caller applies the returned differences, with the kernel's
 * bpf_l4_csum_replace() in TC programs (correct for CHECKSUM_PARTIAL and
 * CHECKSUM_COMPLETE skbs too) or with ft_csum_apply() on raw bytes. Both are
 * the RFC 1624 update HC' = ~(~HC + ~m + m'). */
#ifndef FT_TRANSLATE_H
#define FT_TRANSLATE_H

#include <linux/types.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "abi.h"

#define FT_TCPOPT_EOL 0
#define FT_TCPOPT_NOP 1
#define FT_TCPOPT_MSS 2
#define FT_TCPOPT_WS 3
#define FT_TCPOPT_SACK_PERM 4
#define FT_TCPOPT_SACK 5
#define FT_TCPOPT_TS 8
/* RFC 7323 caps shift counts at 14; larger values are treated as 14. */
#define FT_MAX_WSCALE 14
#define FT_TS_LEN 10
#define FT_MAX_SACK_BLOCKS 4
/* NOP, NOP, timestamp: the option bytes of every segment Linux sends
 * once timestamps are on (SYNs and SACK-carrying ACKs aside). */
#define FT_TS_ONLY_LEN 12
/* At most 40 option bytes: as many iterations as bytes bounds the walk. */
#define FT_MAX_OPT_ITERS 40

enum ft_verdict {
	FT_OK = 0,
	FT_SLOW_SYN = FT_C_SLOW_SYN,
	FT_SLOW_TRUNCATED = FT_C_SLOW_TRUNCATED,
	FT_SLOW_BAD_OPTION = FT_C_SLOW_BAD_OPTION,
};

/* Checksum differences, as unfolded sums of 16-bit words (~old + new). */
struct ft_csum {
	__u64 pseudo; /* fields in the TCP pseudo header (addresses) */
	__u64 l4;     /* fields only in the TCP header */
};

static __always_inline __u32 ft_fold(__u64 acc)
{
	acc = (acc & 0xffffffff) + (acc >> 32);
	acc = (acc & 0xffffffff) + (acc >> 32);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (__u32)acc;
}

static __always_inline __u32 ft_sum32(__u32 host)
{
	return ft_fold((__u64)(host >> 16) + (host & 0xffff));
}

static __always_inline __u32 ft_swap16(__u32 v)
{
	return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}

/* Adds the change old -> new of a 32-bit field at TCP offset `off`. */
static __always_inline void ft_acc32(__u64 *acc, __u32 old, __u32 new, __u32 off)
{
	__u32 m = ft_sum32(old), m2 = ft_sum32(new);
	if (off & 1) {
		m = ft_swap16(m);
		m2 = ft_swap16(m2);
	}
	*acc += (~m & 0xffff) + m2;
}

static __always_inline void ft_acc16(__u64 *acc, __u32 old, __u32 new)
{
	*acc += (~old & 0xffff) + (new & 0xffff);
}

/* Folds a difference to the form bpf_l4_csum_replace() takes: the kernel
 * sums packet words as they sit in memory, i.e. byte-swapped on a
 * little-endian host, and a ones-complement sum swaps with its words. */
static __always_inline __u32 ft_csum_diff(__u64 acc)
{
	return bpf_htons((__u16)ft_fold(acc));
}

/* HC' = ~(~HC + diff), all in host order. */
static __always_inline __u16 ft_csum_update(__u16 check, __u64 diff)
{
	return (__u16)~ft_fold((__u64)(~check & 0xffff) + diff);
}

static __always_inline __u32 ft_load32(const __u8 *p)
{
	return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
}

static __always_inline void ft_store32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* Rewrites the 32-bit field at p (TCP offset off) by adding `add`. */
static __always_inline void ft_add32(__u8 *p, __u32 off, __u32 add, __u64 *acc)
{
	__u32 old = ft_load32(p), new = old + add;
	ft_store32(p, new);
	ft_acc32(acc, old, new, off);
}

/* Options are copied to the stack (at most 40 bytes, zero padded), walked
 * and rewritten there, and stored back only once the whole packet has been
 * accepted. Their checksum difference is taken over the whole region at
 * once (it starts at TCP offset 20, word aligned): ~sum(old) + sum(new). */
#define FT_OPT_BUF 64

static __always_inline __u64 ft_sum_opts(const __u8 *b)
{
	__u64 acc = 0;
#pragma unroll
	for (int i = 0; i < 40; i += 2)
		acc += ((__u32)b[i] << 8) | b[i + 1];
	return acc;
}

/* State of the option walk, on the caller's stack; one bpf_loop() step
 * handles one option, so the verifier checks the step once instead of
 * every path through 40 unrolled iterations. */
struct ft_opt_walk {
	__u8 b[FT_OPT_BUF]; /* the options, zero padded */
	__u32 n;            /* option bytes present */
	__u32 off;          /* next option */
	__s32 verdict;
	__u32 seen_ts, seen_sack;
	__u32 flags, tsval_add, tsecr_add, ack_add;
};

static __always_inline void ft_buf_add32(__u8 *b, __u32 off, __u32 add)
{
	__u32 v = ((__u32)b[off & 63] << 24) | ((__u32)b[(off + 1) & 63] << 16) |
		  ((__u32)b[(off + 2) & 63] << 8) | b[(off + 3) & 63];
	v += add;
	b[off & 63] = v >> 24;
	b[(off + 1) & 63] = v >> 16;
	b[(off + 2) & 63] = v >> 8;
	b[(off + 3) & 63] = v;
}

/* One option: returns 1 to stop the walk (end, or a slow-path verdict).
 * The rules are ftsplice_wire's option parser: EOL ends, NOP is one byte,
 * anything else needs a length byte >= 2 and its whole body inside the
 * options; MSS, window scale, SACK-permitted and timestamp must have their
 * fixed lengths, SACK 1 to 4 blocks; a second timestamp or SACK option is
 * malformed. Unknown kinds are skipped. */
static long ft_opt_step(__u32 index, void *ctx)
{
	struct ft_opt_walk *w = ctx;
	__u32 off = w->off & 63;
	__u32 n = w->n;
	if (off >= n || off >= 40)
		return 1;
	__u8 *b = w->b;
	__u8 kind = b[off];
	if (kind == FT_TCPOPT_EOL)
		return 1;
	if (kind == FT_TCPOPT_NOP) {
		w->off = off + 1;
		return 0;
	}
	w->verdict = FT_SLOW_BAD_OPTION;
	if (off + 1 >= n)
		return 1;
	__u32 len = b[(off + 1) & 63];
	if (len < 2 || off + len > n)
		return 1;
	if ((kind == FT_TCPOPT_MSS && len != 4) || (kind == FT_TCPOPT_WS && len != 3) ||
	    (kind == FT_TCPOPT_SACK_PERM && len != 2))
		return 1;
	if (kind == FT_TCPOPT_TS) {
		if (len != FT_TS_LEN || w->seen_ts)
			return 1;
		w->seen_ts = 1;
		if (w->flags & FT_F_TS) {
			ft_buf_add32(b, off + 2, w->tsval_add);
			ft_buf_add32(b, off + 6, w->tsecr_add);
		} else {
			for (int j = 0; j < FT_TS_LEN; j++)
				b[(off + j) & 63] = FT_TCPOPT_NOP;
		}
	} else if (kind == FT_TCPOPT_SACK) {
		if (len < 10 || (len - 2) % 8 || w->seen_sack)
			return 1;
		w->seen_sack = 1;
		if (w->flags & FT_F_SACK) {
			for (int e = 0; e < FT_MAX_SACK_BLOCKS * 2; e++)
				if (2 + e * 4 < len)
					ft_buf_add32(b, off + 2 + e * 4, w->ack_add);
		} else {
			for (int j = 0; j < 34; j++)
				if (j < len)
					b[(off + j) & 63] = FT_TCPOPT_NOP;
		}
	}
	w->verdict = FT_OK;
	w->off = off + len;
	return 0;
}

/* Translates the IPv4/TCP packet of skb through the splice direction `v`.
 * The caller has validated the IPv4 header and the TCP header length
 * (ft_parse) and found `v` by the packet's 4-tuple; the TCP header starts
 * at l4_off and is hlen bytes long. On FT_OK the packet is rewritten except
 * for the TCP checksum, whose differences are in *cs; on any other verdict
 * nothing was written. Packet pointers are invalid after the call. */
static __always_inline int ft_translate(struct __sk_buff *skb, __u32 l3_off, __u32 l4_off,
					 __u32 hlen, const struct splice_val *v, struct ft_csum *cs)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + (l3_off & 0xff);
	if ((void *)(ip + 1) > end)
		return FT_SLOW_TRUNCATED;
	struct tcphdr *tcp = data + (l4_off & 0xff);
	if ((void *)(tcp + 1) > end)
		return FT_SLOW_TRUNCATED;
	if (tcp->syn)
		return FT_SLOW_SYN;
	if (hlen < sizeof(struct tcphdr) || hlen > 60)
		return FT_SLOW_TRUNCATED;
	__u32 n = (hlen - sizeof(struct tcphdr)) & 63;
	if (n > 40)
		return FT_SLOW_TRUNCATED;
	struct ft_opt_walk w = {};
	w.n = n;
	w.flags = v->flags;
	w.tsval_add = v->tsval_add;
	w.tsecr_add = v->tsecr_add;
	w.ack_add = v->ack_add;
	__u32 opt_off = (l4_off & 0xff) + sizeof(struct tcphdr);
	__u64 opt_old = 0, opt_new = 0;
	if (n) {
		if (bpf_skb_load_bytes(skb, opt_off, w.b, n))
			return FT_SLOW_TRUNCATED;
		opt_old = ft_sum_opts(w.b);
		if (n == FT_TS_ONLY_LEN && w.b[0] == FT_TCPOPT_NOP && w.b[1] == FT_TCPOPT_NOP &&
		    w.b[2] == FT_TCPOPT_TS && w.b[3] == FT_TS_LEN) {
			/* What Linux puts on every segment but SYNs: the walk
			 * would step over the two NOPs, handle the timestamp
			 * and end; take only the timestamp step. */
			w.off = 2;
			ft_opt_step(0, &w);
		} else {
			bpf_loop(FT_MAX_OPT_ITERS, ft_opt_step, &w, 0);
		}
		if (w.verdict != FT_OK)
			return w.verdict;
		opt_new = ft_sum_opts(w.b);
	}

	/* Accepted: from here on, write. Pointers are still valid (loading
	 * bytes does not move packet data), but re-derive them for the
	 * verifier. */
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	ip = data + (l3_off & 0xff);
	if ((void *)(ip + 1) > end)
		return FT_SLOW_TRUNCATED;
	tcp = data + (l4_off & 0xff);
	if ((void *)(tcp + 1) > end)
		return FT_SLOW_TRUNCATED;

	cs->pseudo = 0;
	cs->l4 = 0;

	/* Addresses: IP header checksum and the TCP pseudo header. */
	__u32 os = bpf_ntohl(ip->saddr), od = bpf_ntohl(ip->daddr);
	__u32 ns = bpf_ntohl(v->saddr), nd = bpf_ntohl(v->daddr);
	__u64 addr = 0;
	ft_acc32(&addr, os, ns, 0);
	ft_acc32(&addr, od, nd, 0);
	ip->saddr = v->saddr;
	ip->daddr = v->daddr;
	ip->check = bpf_htons(ft_csum_update(bpf_ntohs(ip->check), addr));
	cs->pseudo = addr;

	/* Ports, sequence and ack numbers. */
	ft_acc16(&cs->l4, bpf_ntohs(tcp->source), bpf_ntohs(v->sport));
	ft_acc16(&cs->l4, bpf_ntohs(tcp->dest), bpf_ntohs(v->dport));
	tcp->source = v->sport;
	tcp->dest = v->dport;
	ft_add32((__u8 *)&tcp->seq, 4, v->seq_add, &cs->l4);
	/* The ack field is rewritten even without ACK (as the reference does):
	 * the receiver ignores it then. */
	ft_add32((__u8 *)&tcp->ack_seq, 8, v->ack_add, &cs->l4);

	/* Window: scale to bytes with the sender's shift, back down with the
	 * shift the receiver applies; saturate at the field's maximum. */
	__u32 win = bpf_ntohs(tcp->window);
	__u32 shl = v->wscale_in < FT_MAX_WSCALE ? v->wscale_in : FT_MAX_WSCALE;
	__u32 shr = v->wscale_out < FT_MAX_WSCALE ? v->wscale_out : FT_MAX_WSCALE;
	__u32 bytes = win << shl;
	__u32 nwin = bytes >> shr;
	if (nwin > 0xffff)
		nwin = 0xffff;
	ft_acc16(&cs->l4, win, nwin);
	tcp->window = bpf_htons(nwin);

	if (n) {
		cs->l4 += (~ft_fold(opt_old) & 0xffff) + ft_fold(opt_new);
		if (bpf_skb_store_bytes(skb, opt_off, w.b, n, 0))
			return FT_SLOW_TRUNCATED; /* cannot fail: bounds checked */
	}
	return FT_OK;
}

/* Applies the checksum differences to the TCP checksum in place (for raw
 * packets, and skbs whose checksum is complete in the packet). */
static __always_inline void ft_csum_apply(struct tcphdr *tcp, const struct ft_csum *cs)
{
	__u16 c = bpf_ntohs(tcp->check);
	c = ft_csum_update(c, cs->pseudo);
	c = ft_csum_update(c, cs->l4);
	tcp->check = bpf_htons(c);
}

#endif
