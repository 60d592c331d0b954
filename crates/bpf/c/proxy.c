/* Proxy data plane: TC ingress on the proxy's interfaces. Packets of a
 * splice (either direction) are translated and redirected; everything else
 * goes to the stack (accepting proxies, pre-splice connections). */
#include "forward.h"

SEC("classifier")
int proxy_ingress(struct __sk_buff *skb)
{
	return ft_splice_skb(skb);
}

/* Test entry for BPF_PROG_TEST_RUN only: translation with the raw-bytes
 * checksum update, no forwarding. Returns the ft_verdict (0 = translated). */
SEC("classifier")
int splice_test(struct __sk_buff *skb)
{
	struct iphdr *ip;
	struct splice_val *v = ft_lookup(skb, &ip);
	if (!v)
		return FT_C_NO_SPLICE;
	struct ft_csum cs;
	int r = ft_translate(skb, FT_L3_OFF, v, &cs);
	if (r != FT_OK)
		return r;
	void *end = (void *)(long)skb->data_end;
	struct tcphdr *tcp = (void *)(long)skb->data + FT_L4_OFF;
	if ((void *)(tcp + 1) > end)
		return FT_SLOW_TRUNCATED;
	ft_csum_apply(tcp, &cs);
	return FT_OK;
}

char _license[] SEC("license") = "GPL";
