/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Layout shared by the XDP program and its readers. The Rust mirror lives in
 * xdp-ebpf/src/lib.rs and a test checks it against the object's BTF.
 */
#ifndef XDP_STATS_H
#define XDP_STATS_H

#include <linux/types.h>

/* The seed's contract: key 0 of xdp_stats_map holds the global counters. */
struct datarec {
	__u64 rx_packets;
	__u64 rx_bytes;
};

#define XDP_STATS_MAP_MAX_ENTRIES 1

enum xdptop_l3 {
	XDPTOP_L3_IPV4 = 0,
	XDPTOP_L3_IPV6,
	XDPTOP_L3_ARP,
	XDPTOP_L3_OTHER,
	XDPTOP_L3_MAX,
};

/* Counted for IPv4 and IPv6 packets only. */
enum xdptop_l4 {
	XDPTOP_L4_TCP = 0,
	XDPTOP_L4_UDP,
	XDPTOP_L4_ICMP,
	XDPTOP_L4_OTHER,
	XDPTOP_L4_MAX,
};

/* Frame length (L2, without FCS) upper bounds: <=64 <=128 <=256 <=512
 * <=1024 <=1518 and larger. */
#define XDPTOP_SIZE_BUCKETS 7

/* xdptop's own per-CPU, per-interface counters (one array slot). */
struct xdptop_stats {
	__u64 packets;
	__u64 bytes;
	__u64 l3[XDPTOP_L3_MAX];
	__u64 l4[XDPTOP_L4_MAX];
	__u64 size_hist[XDPTOP_SIZE_BUCKETS];
};

/*
 * Top talkers (issue 16). Counted only while xdptop_config.talkers is set,
 * which xdptop does while something consumes them (`--talkers N`).
 *
 * Sources: the packet's IP source address; IPv4 as an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d), so one table holds both families.
 */
struct xdptop_talker_key {
	__u8 addr[16];
};

/* Services: transport protocol and destination port (in host byte order);
 * port 0 for protocols without ports and for IPv4 fragments after the first. */
struct xdptop_service_key {
	__u16 port;
	__u8 protocol;
	__u8 pad; /* always 0 */
};

/* Packets and bytes (L2 frame, as in struct datarec) since the entry was
 * created; an evicted entry that comes back starts again from zero. */
struct xdptop_counter {
	__u64 packets;
	__u64 bytes;
};

/* The verdict observer's per-CPU counters (bpf/verdicts.bpf.c): one array
 * slot per XDP action, XDP_ABORTED (0) to XDP_REDIRECT (4); a return value
 * outside that range is counted as XDP_ABORTED, as the kernel treats it. */
#define XDPTOP_VERDICTS 5

struct xdptop_verdict {
	__u64 packets;
	__u64 bytes;
};

/* Run-time switches, one array slot, written by xdptop. */
struct xdptop_config {
	__u32 talkers; /* 1: count sources and services */
	__u32 pad;
};

/* Default table sizes (entries); the loader may change them
 * (`--talkers-table N`: sources N, services N / 8). */
#define XDPTOP_TALKERS_MAX_ENTRIES 131072
#define XDPTOP_SERVICES_MAX_ENTRIES 16384

#endif /* XDP_STATS_H */
