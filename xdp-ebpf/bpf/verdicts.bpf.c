// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdptop's verdict observer: an fexit program attached to the XDP program
 * that runs on an interface (a libxdp dispatcher or a single program, xdptop's
 * own or another loader's), without reloading or replacing it. It runs after
 * every return of the target's entry point and counts, per CPU, packets and
 * bytes by the verdict returned.
 *
 * xdptop loads it with the target's fd and the BTF id of the target's entry
 * function (aya's FExit::load_for_program, see third_party/aya/XDPTOP-PATCH.md),
 * so the section name's target is only a placeholder.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdp_stats.h"

/*
 * The first two members of the kernel's struct xdp_buff (include/net/xdp.h),
 * unchanged since XDP began. On fexit of an XDP program the verifier types
 * the context argument as the kernel's struct xdp_buff, and these loads are
 * checked against its BTF at load time. Declared here rather than taken from
 * vmlinux.h with CO-RE so that loading needs no kernel BTF in user space.
 */
struct xdp_buff {
	void *data;
	void *data_end;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xdptop_verdict);
	__uint(max_entries, XDPTOP_VERDICTS);
} xdptop_verdicts SEC(".maps");

/*
 * ctx[0] is the target's context (struct xdp_buff *), ctx[1] its return
 * value. Bytes are the frame's linear length after the target ran (a
 * program that moved the head or tail changes them, as the kernel sees it).
 */
SEC("fexit/xdp")
int xdptop_verdict(__u64 *ctx)
{
	struct xdp_buff *xdp = (struct xdp_buff *)ctx[0];
	__u32 verdict = (__u32)(int)ctx[1];
	struct xdptop_verdict *rec;

	if (verdict >= XDPTOP_VERDICTS)
		verdict = XDP_ABORTED;
	rec = bpf_map_lookup_elem(&xdptop_verdicts, &verdict);
	if (!rec)
		return 0;
	rec->packets++;
	rec->bytes += (__u64)((char *)xdp->data_end - (char *)xdp->data);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
