// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The seed host's libbpf scraper, as the user runs it: open the pinned map,
 * look up key 0 into a 16-byte struct datarec, print it.
 * Usage: seed_scraper PIN_PATH   -> prints "rx_packets rx_bytes"
 */
#include <stdio.h>
#include <linux/types.h>
#include <bpf/bpf.h>

struct datarec {
	__u64 rx_packets;
	__u64 rx_bytes;
};

int main(int argc, char **argv)
{
	struct datarec rec = {};
	__u32 key = 0;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PIN_PATH\n", argv[0]);
		return 2;
	}
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		perror("bpf_obj_get");
		return 1;
	}
	if (bpf_map_lookup_elem(fd, &key, &rec)) {
		perror("bpf_map_lookup_elem");
		return 1;
	}
	printf("%llu %llu\n", (unsigned long long)rec.rx_packets, (unsigned long long)rec.rx_bytes);
	return 0;
}
