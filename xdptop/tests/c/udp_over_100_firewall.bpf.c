// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The operator's firewall for xdptop/tests/verdicts.rs: drops UDP datagrams
 * whose payload is longer than 100 bytes and passes everything else. No map
 * and no run config, so `ip link ... obj` and xdp-loader (priority 50, the
 * default) load it alike. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_fw(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	return bpf_ntohs(udp->len) - sizeof(*udp) > 100 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
