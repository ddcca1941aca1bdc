// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A faithful stand-in for the seed host's counting program (as loaded there by
 * libxdp): one hash lookup and two atomic adds into the pinned xdp_stats_map.
 * Used by tests as "another loader's program" and by the benchmark as the
 * baseline xdptop must stay close to.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdp_stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct datarec);
	__uint(max_entries, XDP_STATS_MAP_MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_stats_map SEC(".maps");

SEC("xdp")
int xdp_stats_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0;
	struct datarec *rec = bpf_map_lookup_elem(&xdp_stats_map, &key);

	if (!rec) {
		struct datarec zero = {};

		bpf_map_update_elem(&xdp_stats_map, &key, &zero, BPF_NOEXIST);
		rec = bpf_map_lookup_elem(&xdp_stats_map, &key);
		if (!rec)
			return XDP_PASS;
	}
	__sync_fetch_and_add(&rec->rx_packets, 1);
	__sync_fetch_and_add(&rec->rx_bytes, data_end - data);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
