#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make deps`, idempotently:
#  - Debian packages: bpfcc-tools (BCC's tcpretrans), bpftrace (tcpretrans.bt),
#    gnuplot-nox (the chart), util-linux (flock);
#  - the kernel headers of the Debian kernel the VM boots (BENCH_KERNEL, from
#    the Makefile), for BCC: bin/vm -headers downloads them once from the
#    kernel's Debian suite, merges Debian's -common and -amd64 trees and
#    prints the directory (see vm/debian/headers.go).
# Prints the BCC_KERNEL_SOURCE directory on its last line.
set -euo pipefail

VM=${VM:-$(cd "$(dirname "$0")/.." && pwd)/bin/vm}
BENCH_KERNEL=${BENCH_KERNEL:?set by make bench}

[ -x "$VM" ] || { echo "bench/deps.sh: $VM not found: run 'make vm'" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/deps.sh: needs root" >&2
	exit 1
fi

need=()
command -v tcpretrans-bpfcc >/dev/null 2>&1 || need+=(bpfcc-tools)
command -v bpftrace >/dev/null 2>&1 || need+=(bpftrace)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
command -v flock >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	echo "bench/deps.sh: installing ${need[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Its stdout is the directory alone (progress goes to stderr).
"$VM" -kernel "$BENCH_KERNEL" -headers
