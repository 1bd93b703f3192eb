#!/usr/bin/env bash
# make test-integration: the integration tests inside each Debian kernel of
# KERNELS under QEMU, JOBS guests at a time (a TCG guest runs on one host
# thread, so two guests use two cores). Each guest's console goes to
# .build/integration-<kernel>.log; its test results are printed when it ends,
# the whole log when it fails.
#
#   scripts/integration.sh IMAGE KERNEL...      (JOBS, default 2)
#
# TestPublish (registry, signing, verification with bin/cosign) runs in the
# guest of PUBLISH_KERNEL only: what it checks is ig's, not the kernel's.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/.build

image=$1
shift
jobs=${JOBS:-2}
publish_kernel=${PUBLISH_KERNEL:?set by make test-integration}
cosign=${COSIGN:?set by make test-integration}

run_one() { # run_one KERNEL: boots it, runs the tests, logs the result
	local k=$1 log=$OUT/integration-$1.log start=$(date +%s) rc publish="-test.skip ^TestPublish\$"
	[ "$k" = "$publish_kernel" ] && publish="-cosign $cosign"
	bin/vm -kernel "$k" -timeout 50m -share "$REPO" -workdir "$REPO/test/integration" -- \
		"$OUT/integration.test -test.v -test.count=1 -repo $REPO -image $image -loadgen $OUT/loadgen $publish" \
		>"$log" 2>&1
	rc=$?
	local took=$(($(date +%s) - start))
	grep -a -E '^\s*--- (PASS|FAIL)|^(PASS|FAIL|ok)\b|^vm: ' "$log" | sed "s/^/[$k] /"
	if [ "$rc" -eq 0 ]; then
		echo "=== integration tests on Linux $k passed in $took s"
	else
		echo "=== integration tests on Linux $k FAILED (status $rc) after $took s; its log:"
		sed "s/^/[$k] /" "$log"
	fi
	return "$rc"
}

pids=()
kernels=()
failed=()
for k in "$@"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n || true
	done
	echo "=== integration tests on Linux $k: started (log: $OUT/integration-$k.log)"
	run_one "$k" &
	pids+=($!)
	kernels+=("$k")
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || failed+=("${kernels[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "=== integration tests FAILED on Linux ${failed[*]}"
	exit 1
fi
echo "=== integration tests passed on Linux $*"
