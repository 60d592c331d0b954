/* Split-splice agent: TC egress on a backend. The backend's packets toward
 * the shared splice address are rewritten to come from the service address
 * and go straight to the client (direction ServerToClient of a splice). */
#define FT_EGRESS
#include "forward.h"

SEC("classifier")
int agent_egress(struct __sk_buff *skb)
{
	return ft_splice_skb(skb);
}

char _license[] SEC("license") = "GPL";
