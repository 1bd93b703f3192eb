#!/usr/bin/env bash
# make run: run the gadget on this host if it can run ig fully, otherwise in
# a VM with a Debian kernel where a demo workload reproduces the guide.
set -euo pipefail
cd "$(dirname "$0")/.."

image=$1
shift
: "${RUN_KERNEL:?set by make run}"

host_can_run_ig() {
	# ig's container collection needs PID 1's namespaces, and its socket
	# enricher attaches kprobes.
	readlink /proc/1/ns/mnt >/dev/null 2>&1 || return 1
	# The gadget's kprobe check (go/contract.KprobeSymbol).
	grep -qw register_kprobe /proc/kallsyms 2>/dev/null || return 1
}

if host_can_run_ig; then
	echo "run: running $image on this host (Ctrl-C to stop)" >&2
	exec bin/ig run "$image" --verify-image=false "$@"
fi

echo "run: this host cannot run ig fully (no kprobes or PID 1 hidden);" >&2
echo "run: booting Debian's $RUN_KERNEL kernel under QEMU to run the guide's scenario there" >&2
exec bin/vm -kernel "$RUN_KERNEL" -share "$PWD" -workdir "$PWD" -- \
	"scripts/demo.sh $(printf '%q ' "$image" "$@")"
