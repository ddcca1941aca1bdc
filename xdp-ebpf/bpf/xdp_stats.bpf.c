// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdptop's XDP program: counts every packet into the seed's shared
 * xdp_stats_map (atomically, for bpftool/libbpf scrapers) and into a per-CPU
 * per-interface breakdown for xdptop itself and, while xdptop asks for them,
 * per-source and per-service counters (top talkers). It never changes
 * traffic.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdp_stats.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct datarec);
	__uint(max_entries, XDP_STATS_MAP_MAX_ENTRIES);
} xdp_stats_map SEC(".maps");

/* One program instance per interface, so a one-slot array is enough and its
 * lookup is inlined by the verifier. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xdptop_stats);
	__uint(max_entries, 1);
} xdptop_stats SEC(".maps");

/* Run-time switches (struct xdptop_config), set by xdptop: one slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdptop_config);
	__uint(max_entries, 1);
} xdptop_config SEC(".maps");

/*
 * Benchmark variants (xdp-ebpf/build.rs builds them; xdptop never loads
 * them): XDPTOP_NO_TALKERS compiles the talkers out (the program as it was
 * before them), XDPTOP_NO_SOURCES / XDPTOP_NO_SERVICES leave out one of the
 * two tables, to show what each costs, and XDPTOP_SOURCES_LRU counts every
 * source in the LRU table, as xdptop did before the sources array.
 */

/*
 * Top talkers. Shared (not per-CPU) values updated with atomic adds: an
 * entry costs the same on 2 or 64 CPUs, and a sample reads it once instead
 * of once per CPU.
 *
 * Sources: the array below (see xdp_stats.h), and this LRU table for the
 * sources that find no slot there: under a flood of new sources it evicts
 * the least recently seen ones, so memory stays at max_entries, which the
 * loader sets (an eighth of `--talkers-table`).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xdptop_talker_key);
	__type(value, struct xdptop_counter);
	__uint(max_entries, XDPTOP_TALKERS_MAX_ENTRIES / 8);
} xdptop_talkers SEC(".maps");

/* Mmapable: xdptop reads it, and frees idle slots, through a mapping. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdptop_source_slot);
	__uint(max_entries, XDPTOP_TALKERS_MAX_ENTRIES);
	__uint(map_flags, BPF_F_MMAPABLE);
} xdptop_sources SEC(".maps");

/* One bit per slot of xdptop_sources, set by the program when it claims
 * the slot and cleared by xdptop when it frees it: xdptop reads the slots
 * in use without scanning the whole array. The loader sizes it with the
 * array (slots / 64 words, at least one). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XDPTOP_TALKERS_MAX_ENTRIES / 64);
	__uint(map_flags, BPF_F_MMAPABLE);
} xdptop_sources_used SEC(".maps");

/*
 * Services: one array slot per (TCP, port), (UDP, port) and other protocol
 * (see xdp_stats.h), so a look-up is an inlined index computation, every
 * service is exact and a port scan evicts nothing. Mmapable: xdptop reads it
 * through a read-only mapping, without syscalls.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdptop_counter);
	__uint(max_entries, XDPTOP_SERVICE_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
} xdptop_services SEC(".maps");

/*
 * libxdp's run config (xdp-tools lib/libxdp/protocol.org), read when xdptop
 * joins a multiprog dispatcher: it runs first (priority 0, the lowest value
 * there is, so before operators' programs at 10 or 20) and the chain goes on
 * after XDP_PASS, its only verdict. libxdp looks the struct up by the
 * program's name with a leading underscore; this is what XDP_RUN_CONFIG()
 * from xdp/xdp_helpers.h expands to, spelled out so building needs no
 * libxdp headers. xdptop sets the same values through libxdp's API too
 * (xdptop/src/bpf/dispatcher.rs, RUN_PRIO).
 */
struct {
	__uint(priority, 0);
	__uint(XDP_PASS, 1);
} _xdptop_count SEC(".xdp_run_config");

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

/*
 * Set by the loader when xdptop runs with CAP_BPF but without CAP_PERFMON.
 * The verifier then forbids pointer subtraction (data_end - data) and, as
 * Spectre v1 hardening, a variable index into a map value. So the length
 * comes from bpf_xdp_get_buff_len() (Linux 5.18+) and every counter slot
 * gets a 0 or 1 added. The branch not taken is pruned by the verifier.
 */
volatile const __u8 cap_bpf_only = 0;

static __always_inline __u32 size_bucket(__u64 len)
{
	if (len <= 64)
		return 0;
	if (len <= 128)
		return 1;
	if (len <= 256)
		return 2;
	if (len <= 512)
		return 3;
	if (len <= 1024)
		return 4;
	if (len <= 1518)
		return 5;
	return 6;
}

static __always_inline int l4_class(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return XDPTOP_L4_TCP;
	case IPPROTO_UDP:
		return XDPTOP_L4_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return XDPTOP_L4_ICMP;
	default:
		return XDPTOP_L4_OTHER;
	}
}

static __always_inline void count_shared(__u64 len)
{
	__u32 key = 0;
	struct datarec *rec = bpf_map_lookup_elem(&xdp_stats_map, &key);

	if (!rec) {
		/* xdptop creates key 0 at load; this covers a map someone emptied. */
		struct datarec zero = {};

		bpf_map_update_elem(&xdp_stats_map, &key, &zero, BPF_NOEXIST);
		rec = bpf_map_lookup_elem(&xdp_stats_map, &key);
		if (!rec)
			return;
	}
	__sync_fetch_and_add(&rec->rx_packets, 1);
	__sync_fetch_and_add(&rec->rx_bytes, len);
}

/* Adds a packet of `len` bytes to the entry `key` of an LRU table, creating
 * it if needed. Two CPUs may create the same key at once: the loser adds to
 * the winner's entry. A packet whose entry vanished in between (evicted at
 * once under a flood) is not counted here; the interface's totals still
 * have it, so it shows in the "other" line. */
static __always_inline void count_entry(void *map, const void *key, __u64 len)
{
	struct xdptop_counter *c = bpf_map_lookup_elem(map, key);

	if (!c) {
		struct xdptop_counter first = {.packets = 1, .bytes = len};

		if (bpf_map_update_elem(map, key, &first, BPF_NOEXIST) == 0)
			return;
		c = bpf_map_lookup_elem(map, key);
		if (!c)
			return;
	}
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, len);
}

/* Murmur3's finaliser: every input bit moves the low bits the mask keeps. */
static __always_inline __u32 mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/*
 * Counts a packet of `len` bytes for the source whose key word is `want`
 * (see xdp_stats.h) in the sources array, probing from slot `h & mask`.
 * `v6` is the IPv6 address, NULL for IPv4. Returns 0 when no slot among the
 * probes holds or could take the source (the caller then uses the LRU
 * table). Two CPUs may claim two slots for one source: both count, and
 * xdptop adds them up.
 */
static __always_inline int count_source(__u64 want, __u32 h, __u32 mask, const __u32 *v6, __u64 len)
{
	/* Unrolled: a loop counter is a branch whose outcome the verifier
	 * knows, and before Linux 6.17 a loader without CAP_PERFMON has the
	 * verifier walk the other way too, to the end of the program, for each
	 * (minutes under emulation before it refuses such a program anyway). */
#pragma unroll
	for (__u32 i = 0; i < XDPTOP_SOURCE_PROBES; i++) {
		__u32 idx = (h + i) & mask;
		struct xdptop_source_slot *s = bpf_map_lookup_elem(&xdptop_sources, &idx);
		__u64 key;

		if (!s)
			return 0;
		key = s->key;
		if (key == 0) {
			/* IPv6: claim it busy, write the address, then publish. */
			__u64 claim = v6 ? (want & ~0xffULL) | XDPTOP_SOURCE_BUSY : want;
			__u32 word = idx / 64;
			__u64 *used;

			if (__sync_val_compare_and_swap(&s->key, 0, claim) != 0)
				continue;
			used = bpf_map_lookup_elem(&xdptop_sources_used, &word);
			if (used)
				__sync_fetch_and_or(used, 1ULL << (idx % 64));
			if (v6) {
				__builtin_memcpy(s->addr, v6, 16);
				__sync_val_compare_and_swap(&s->key, claim, want);
			}
			key = want;
		} else if (key == want && v6) {
			const __u32 *a = (const __u32 *)s->addr;

			if (a[0] != v6[0] || a[1] != v6[1] || a[2] != v6[2] || a[3] != v6[3])
				continue;
		}
		if (key == want) {
			__sync_fetch_and_add(&s->packets, 1);
			__sync_fetch_and_add(&s->bytes, len);
			return 1;
		}
	}
	return 0;
}

/*
 * Counts a packet for source `src` (key word `want`, hash `h`, IPv6 address
 * `v6` or NULL): in the sources array, or in the LRU table when it finds no
 * slot there. The benchmark variants choose here, for both families.
 */
static __always_inline void count_src(const struct xdptop_talker_key *src, __u64 want, __u32 h,
				      __u32 mask, const __u32 *v6, __u64 len)
{
#ifndef XDPTOP_NO_SOURCES
#ifndef XDPTOP_SOURCES_LRU
	if (count_source(want, h, mask, v6, len))
		return;
#endif
	count_entry(&xdptop_talkers, src, len);
#endif
}

/* IPv6 extension headers: the transport protocol lies behind them and is not
 * looked for, so such packets count as "other" services. */
static __always_inline int ipv6_extension(__u8 nexthdr)
{
	switch (nexthdr) {
	case 0:	 /* hop-by-hop options */
	case 43: /* routing */
	case 44: /* fragment */
	case 51: /* authentication */
	case 60: /* destination options */
		return 1;
	default:
		return 0;
	}
}

/* Adds a packet of `len` bytes to service slot `slot` (see xdp_stats.h). */
static __always_inline void count_service(__u32 slot, __u64 len)
{
	struct xdptop_counter *c = bpf_map_lookup_elem(&xdptop_services, &slot);

	if (!c)
		return;
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, len);
}

/*
 * Counts the packet for its source and its service. `l3` is the network
 * header of an IPv4 or IPv6 packet (`proto`); anything that cannot be parsed
 * (other protocols, truncated headers) is left out and shows in the "other"
 * lines, which xdptop computes from the interface's totals.
 */
static __always_inline void count_talkers(void *l3, __u16 proto, void *data_end, __u64 len,
					  __u32 mask)
{
	struct xdptop_talker_key src = {};
	__u8 protocol;
	__u32 slot;
	__u8 *l4;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = l3;
		__u32 ihl;

		if ((void *)(iph + 1) > data_end)
			return;
		src.addr[10] = 0xff;
		src.addr[11] = 0xff;
		__builtin_memcpy(&src.addr[12], &iph->saddr, 4);
		count_src(&src, ((__u64)iph->saddr << 32) | XDPTOP_SOURCE_V4, mix32(iph->saddr),
			  mask, NULL, len);
		/* After the first fragment there is no transport header. */
		if (iph->frag_off & bpf_htons(0x1fff))
			return;
		protocol = iph->protocol;
		ihl = iph->ihl * 4;
		if (ihl == sizeof(*iph))
			l4 = (__u8 *)(iph + 1);
		else if (ihl < sizeof(*iph) || cap_bpf_only)
			/* Without CAP_PERFMON a variable offset into the packet is
			 * refused: packets with IP options (rare) count as "other". */
			return;
		else
			l4 = (__u8 *)iph + ihl;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = l3;

		__u32 a[4];
		__u32 h;

		if ((void *)(ip6h + 1) > data_end)
			return;
		__builtin_memcpy(a, &ip6h->saddr, 16);
		__builtin_memcpy(src.addr, a, 16);
		h = mix32(a[0] ^ mix32(a[1] ^ mix32(a[2] ^ mix32(a[3]))));
		count_src(&src, ((__u64)h << 32) | XDPTOP_SOURCE_V6, h, mask, a, len);
		if (ipv6_extension(ip6h->nexthdr))
			return;
		protocol = ip6h->nexthdr;
		l4 = (__u8 *)(ip6h + 1);
	} else {
		return;
	}
	if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) {
		/* The destination port: bytes 2-3 of TCP and UDP headers alike. */
		if ((void *)(l4 + 4) > data_end)
			return;
		slot = protocol == IPPROTO_TCP ? XDPTOP_SERVICE_TCP : XDPTOP_SERVICE_UDP;
		slot += ((__u32)l4[2] << 8) | l4[3];
	} else {
		/* Other protocols (ICMP, SCTP, ...) by protocol number, port 0. */
		slot = XDPTOP_SERVICE_PROTO + protocol;
	}
#ifndef XDPTOP_NO_SERVICES
	count_service(slot, len);
#endif
}

/* Adds one to slot `idx` of `arr[n]`. Without CAP_PERFMON the verifier
 * rejects a variable index into a map value, so add 0 or 1 to every slot. */
#define COUNT_SLOT(arr, n, idx)                                                                    \
	do {                                                                                       \
		if (cap_bpf_only) {                                                                \
			for (int i_ = 0; i_ < (n); i_++)                                           \
				(arr)[i_] += (idx) == i_;                                          \
		} else if ((idx) >= 0 && (idx) < (n)) {                                            \
			(arr)[idx]++;                                                              \
		}                                                                                  \
	} while (0)

SEC("xdp")
int xdptop_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = cap_bpf_only ? bpf_xdp_get_buff_len(ctx) : data_end - data;
	struct xdptop_stats *st;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__u32 key = 0;
	__u16 proto;
	int l4 = -1;

	count_shared(len);

	st = bpf_map_lookup_elem(&xdptop_stats, &key);
	if (!st)
		return XDP_PASS;
	st->packets++;
	st->bytes += len;
	COUNT_SLOT(st->size_hist, XDPTOP_SIZE_BUCKETS, (int)size_bucket(len));

	if (l3 > data_end) {
		st->l3[XDPTOP_L3_OTHER]++;
		return XDP_PASS;
	}
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;

		if ((void *)(vh + 1) > data_end) {
			st->l3[XDPTOP_L3_OTHER]++;
			return XDP_PASS;
		}
		proto = vh->encapsulated_proto;
		l3 = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = l3;

		st->l3[XDPTOP_L3_IPV4]++;
		l4 = (void *)(iph + 1) <= data_end ? l4_class(iph->protocol) : XDPTOP_L4_OTHER;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = l3;

		st->l3[XDPTOP_L3_IPV6]++;
		/* Extension headers are not walked: they are rare and cost cycles. */
		l4 = (void *)(ip6h + 1) <= data_end ? l4_class(ip6h->nexthdr) : XDPTOP_L4_OTHER;
	} else if (proto == bpf_htons(ETH_P_ARP)) {
		st->l3[XDPTOP_L3_ARP]++;
	} else {
		st->l3[XDPTOP_L3_OTHER]++;
	}
	if (l4 >= 0)
		COUNT_SLOT(st->l4, XDPTOP_L4_MAX, l4);
#ifndef XDPTOP_NO_TALKERS
	{
		/* Off unless xdptop consumes talkers: one load and a branch. */
		struct xdptop_config *cfg = bpf_map_lookup_elem(&xdptop_config, &key);

		if (cfg && cfg->talkers)
			count_talkers(l3, proto, data_end, len, cfg->source_mask);
	}
#endif
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
