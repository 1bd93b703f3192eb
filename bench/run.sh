#!/usr/bin/env bash
# `make bench`: measure, in one run, this gadget against the floor (empty
# programs on the same hooks), the comparison image (IG's own
# trace_tcpretrans unless COMPARE_IMAGE says otherwise; none if empty),
# BCC's tcpretrans and bpftrace's tcpretrans.bt, and where this gadget's
# cost is (variants of its program, its wake-ups); write
# bench/results/REPORT.md, bench/results/bench.png and the raw data.
# Variables come from the Makefile.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/.build/bench
RES=$REPO/bench/results
IG=$REPO/bin/ig
VM=$REPO/bin/vm
# Every setting comes from the Makefile, which holds the defaults.
for v in IMAGE BENCH_RUNS BENCH_SECONDS BENCH_VM_SECONDS BENCH_NATIVE_LEVELS BENCH_VM_LEVELS BENCH_KERNEL VM_LOCK BENCH_VM CLANG LLVM_STRIP; do
	[ -n "${!v:-}" ] || { echo "bench/run.sh: $v is not set: run 'make bench'" >&2; exit 2; }
done
COMPARE_IMAGE=${COMPARE_IMAGE:-}

start=$(date +%s)
mkdir -p "$OUT" "$RES"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- program.bpf.c gadget.yaml build.yaml go 2>/dev/null || commit="$commit (with uncommitted changes to the gadget)"
KSRC=$(BENCH_KERNEL=$BENCH_KERNEL VM=$VM bench/deps.sh | tail -1)

echo "bench: building the floor, the program's variants, the load generator and the harness"
"$CLANG" -target bpf -O2 -g -c bench/floor.bpf.c -o "$OUT/floor.bpf.o"
# The program's BENCH_LEAVE_OUT variants, each leaving out one step of an
# event (1: the socket-owner lookup, 2: the socket and segment reads, 4: the
# event itself), built as IG's builder builds the image's amd64 object
# (Makefile.build of ig image build).
for v in owner:1 reads:2 event:4; do
	obj="$OUT/leave-out-${v%%:*}.bpf.o"
	"$CLANG" -target bpf -Wall -g -O2 -I/usr/include/x86_64-linux-gnu -D __TARGET_ARCH_x86 -DBENCH_LEAVE_OUT="${v#*:}" \
		-c program.bpf.c -I /usr/include/gadget/amd64/ -o "$obj"
	"$LLVM_STRIP" -g "$obj"
done
(cd test && go build -o "$REPO/.build/loadgen" ./loadgen)
(cd bench && CGO_ENABLED=0 go build -o "$OUT/bench" ./harness)

compare_args=()
if [ -n "$COMPARE_IMAGE" ]; then
	"$OUT/bench" extract -ig "$IG" -image "$COMPARE_IMAGE" -out "$OUT/compare.bpf.o"
	compare_args=(-compare-image "$COMPARE_IMAGE" -compare-object "$OUT/compare.bpf.o")
fi

# Leftovers of an interrupted run.
for ns in $(ip netns list | awk '/^trbench-/{print $1}'); do ip netns del "$ns"; done

echo "bench: native measurement on $(uname -r)"
"$OUT/bench" native -object "$REPO/.build/amd64.bpf.o" -floor "$OUT/floor.bpf.o" -loadgen "$REPO/.build/loadgen" \
	-variants "$OUT" "${compare_args[@]}" -tools "ours,compare,ours-wake-each,ours-no-owner,ours-no-reads,ours-no-event,ours-nodrain,ours-batched" \
	-levels "$BENCH_NATIVE_LEVELS" -runs "$BENCH_RUNS" -seconds "$BENCH_SECONDS" -out "$OUT/native.json"

# A result of an earlier run must not go into this report.
rm -f "$OUT/vm.json"
if [ "$BENCH_VM" = 1 ]; then
	echo "bench: end to end in Linux $BENCH_KERNEL under QEMU (waiting for $VM_LOCK)"
	# One retry: a boot can fail for reasons of the host (QEMU/TCG soft
	# lockups are retried by bin/vm itself).
	for attempt in 1 2; do
		flock "$VM_LOCK" "$VM" -kernel "$BENCH_KERNEL" -timeout 60m -share "$REPO" -workdir "$REPO" -- \
			"$OUT/bench vm -object $REPO/.build/amd64.bpf.o -image $IMAGE -ig $IG -floor $OUT/floor.bpf.o \
			-loadgen $REPO/.build/loadgen -variants $OUT ${compare_args[*]} -bcc-kernel-source $KSRC -levels $BENCH_VM_LEVELS \
			-runs $BENCH_RUNS -seconds $BENCH_VM_SECONDS -out $OUT/vm.json" 2>&1 | tee "$OUT/vm-console.log" |
			grep --line-buffered -E '^bench:|^vm:|lockup|panic' || true
		[ -s "$OUT/vm.json" ] && break
		echo "bench: the VM run wrote no result (attempt $attempt; see $OUT/vm-console.log)" >&2
	done
	[ -s "$OUT/vm.json" ] || { echo "bench: the VM run wrote no result (see $OUT/vm-console.log)" >&2; exit 1; }
fi

end=$(date +%s)
"$OUT/bench" report -native "$OUT/native.json" -vm "$OUT/vm.json" -dir "$RES" -compare-image "$COMPARE_IMAGE" -commit "$commit" \
	-wall "$((end - start))" -command "make bench${COMPARE_IMAGE:+ COMPARE_IMAGE=$COMPARE_IMAGE} BENCH_RUNS=$BENCH_RUNS BENCH_SECONDS=$BENCH_SECONDS BENCH_VM_SECONDS=$BENCH_VM_SECONDS BENCH_VM_LEVELS=$BENCH_VM_LEVELS"
echo "bench: wrote $RES/REPORT.md and $RES/bench.png in $((end - start)) s"
