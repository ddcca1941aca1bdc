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

/*
 * Services: transport protocol and destination port, counted in a
 * direct-indexed array (no key, nothing to evict): slot
 *   XDPTOP_SERVICE_TCP + port    TCP, by destination port (host byte order)
 *   XDPTOP_SERVICE_UDP + port    UDP, by destination port
 *   XDPTOP_SERVICE_PROTO + proto any other IP protocol number, port 0
 * (the PROTO slots of TCP and UDP stay unused). 2 x 65536 + 256 slots of
 * 16 bytes: 2 MiB, whatever the CPUs and the sources table's size.
 */
#define XDPTOP_SERVICE_TCP 0
#define XDPTOP_SERVICE_UDP 65536
#define XDPTOP_SERVICE_PROTO 131072
#define XDPTOP_SERVICE_SLOTS (131072 + 256)

/* Packets and bytes (L2 frame, as in struct datarec) since the entry was
 * created (sources: an evicted entry that comes back starts again from
 * zero) or, for a service slot, since the program was loaded. */
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
	/* Slots of the sources array minus one (a power of two minus one),
	 * written with the switch. Programs from before the array read this
	 * field as padding. */
	__u32 source_mask;
};

/*
 * Sources array (xdptop_sources): open addressing, so that a source already
 * in it costs an inlined array look-up and a compare, where a hash map's
 * look-up costs a call into the kernel. A slot is claimed by the program
 * with a compare-and-swap of its key word and freed only by xdptop (the
 * reader), which takes slots that stayed idle, waits until no program can
 * still be adding to them (an RCU grace period), and then empties them.
 * A source may hold more than one slot (two CPUs claiming at once, or a
 * slot freed before its own): readers add them up. A source that finds no
 * slot among its XDPTOP_SOURCE_PROBES goes to the LRU table xdptop_talkers,
 * so no packet with a source address is left out while there is room there.
 *
 * Key word (`key`): 0 empty; else the state in the low byte:
 *   XDPTOP_SOURCE_V4    the IPv4 address in the high 32 bits (as loaded
 *                       from the packet, network byte order in memory)
 *   XDPTOP_SOURCE_V6    an IPv6 source: a hash of it in the high 32 bits,
 *                       the address in `addr`
 *   XDPTOP_SOURCE_BUSY  an IPv6 slot whose address is being written
 *   XDPTOP_SOURCE_DEAD  being freed by xdptop: counts nothing
 */
#define XDPTOP_SOURCE_V4 1
#define XDPTOP_SOURCE_V6 2
#define XDPTOP_SOURCE_BUSY 3
#define XDPTOP_SOURCE_DEAD 4
#define XDPTOP_SOURCE_PROBES 8

struct xdptop_source_slot {
	__u64 key;
	__u64 packets;
	__u64 bytes;
	__u8 addr[16];
};

/* Default size of the sources array (slots, a power of two); the loader
 * may change it (`--talkers-table N`) and sizes the LRU table that takes
 * what finds no slot to an eighth of it. The services array has a fixed
 * size. */
#define XDPTOP_TALKERS_MAX_ENTRIES 131072

#endif /* XDP_STATS_H */
