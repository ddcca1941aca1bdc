// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The operator's firewall for xdptop/tests/dispatcher.rs, loaded with
 * xdp-loader as the user's host would: drops UDP datagrams whose IPv4 packet
 * is longer than 200 bytes and passes everything else, counting its verdicts
 * ([0] passed, [1] dropped) in an array that libxdp pins by name. Its own
 * run config puts it at priority 10, where operators' programs usually sit. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fw_verdicts SEC(".maps");

/* XDP_RUN_CONFIG(xdp_fw) from xdp/xdp_helpers.h, spelled out. */
struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} _xdp_fw SEC(".xdp_run_config");

SEC("xdp")
int xdp_fw(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 drop = 0;
	__u64 *n;

	if ((void *)(ip + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP) &&
	    ip->protocol == IPPROTO_UDP && bpf_ntohs(ip->tot_len) > 200)
		drop = 1;
	n = bpf_map_lookup_elem(&fw_verdicts, &drop);
	if (n)
		__sync_fetch_and_add(n, 1);
	return drop ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
