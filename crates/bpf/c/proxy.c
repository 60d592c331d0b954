/* Proxy data plane: TC ingress on the proxy's interfaces. Packets of a
 * splice (either direction) are translated and redirected; everything else
 * goes to the stack (accepting proxies, pre-splice connections). */
#define FT_RECORD_TS
#include "forward.h"

SEC("classifier")
int proxy_ingress(struct __sk_buff *skb)
{
	return ft_splice_skb(skb);
}

/* Test entry for BPF_PROG_TEST_RUN only: translation with the raw-bytes
 * checksum update, no forwarding. Returns 0xff when translated, else the ft_counter index of the reason. */
#define FT_TEST_TRANSLATED 0xff

SEC("classifier")
int splice_test(struct __sk_buff *skb)
{
	struct ft_pkt p;
	int why = ft_parse(skb, &p);
	if (why != FT_PARSED)
		return why;
	struct ft_csum cs;
	int r = ft_translate(skb, FT_L3_OFF, p.l4_off, p.hlen, p.v, &cs);
	if (r != FT_OK)
		return r;
	void *end = (void *)(long)skb->data_end;
	struct tcphdr *tcp = (void *)(long)skb->data + (p.l4_off & 0xff);
	if ((void *)(tcp + 1) > end)
		return FT_SLOW_TRUNCATED;
	ft_csum_apply(tcp, &cs);
	return FT_TEST_TRANSLATED;
}

char _license[] SEC("license") = "GPL";
