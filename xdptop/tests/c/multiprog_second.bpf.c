// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* One of two components xdptop/tests/multiprog.rs stacks with xdp-loader in
 * libxdp's dispatcher: counts every packet it sees into a pinned array (so
 * the test can tell it ran) and passes it on to the next component. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} second_seen SEC(".maps");

SEC("xdp")
int xdp_second(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *seen = bpf_map_lookup_elem(&second_seen, &key);

	if (seen)
		__sync_fetch_and_add(seen, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
