#!/usr/bin/env bash
# make test-integration and make test-k8s: the integration tests inside each
# Debian kernel of KERNELS under QEMU, and the Kubernetes tests (test/k8s)
# in the guest of k8s@KERNEL, JOBS guests at a time (a TCG guest runs on one
# host thread, so two guests use two cores). Each guest's console goes to
# .build/integration-<job>.log; its test results are printed when it ends,
# the whole log when it fails.
#
#   scripts/integration.sh IMAGE JOB...      (JOB: KERNEL or k8s@KERNEL; JOBS, default 2)
#
# TestPublish (registry, signing, verification with bin/cosign) runs in the
# guest of PUBLISH_KERNEL only: what it checks is ig's, not the kernel's.
# k8s@KERNEL needs K8S_PARTS, the directory scripts/k8s.sh prints.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/.build

image=$1
shift
jobs=${JOBS:-2}
publish_kernel=${PUBLISH_KERNEL:?set by make test-integration}
cosign=${COSIGN:?set by make test-integration}

run_one() { # run_one JOB: boots its kernel, runs the tests, logs the result
	local job=$1 log=$OUT/integration-$1.log start=$(date +%s) rc publish="-test.skip ^TestPublish\$"
	local k=${job#k8s@}
	if [ "$k" != "$job" ]; then
		# The node's pods, IG's daemon and the control plane want more
		# memory than ig alone.
		bin/vm -kernel "$k" -mem 4096 -timeout 40m -share "$REPO" -workdir "$REPO/test/k8s" -- \
			"$OUT/k8s.test -test.v -test.count=1 -repo $REPO -image $image -parts ${K8S_PARTS:?} -cosign $cosign" \
			>"$log" 2>&1
		rc=$?
	else
		[ "$k" = "$publish_kernel" ] && publish="-cosign $cosign"
		bin/vm -kernel "$k" -timeout 50m -share "$REPO" -workdir "$REPO/test/integration" -- \
			"$OUT/integration.test -test.v -test.count=1 -repo $REPO -image $image -loadgen $OUT/loadgen $publish" \
			>"$log" 2>&1
		rc=$?
	fi
	local took=$(($(date +%s) - start))
	grep -a -E '^\s*--- (PASS|FAIL)|^(PASS|FAIL|ok)\b|^vm: |^cluster: ' "$log" | sed "s/^/[$job] /"
	if [ "$rc" -eq 0 ]; then
		echo "=== tests of $job passed in $took s"
	else
		echo "=== tests of $job FAILED (status $rc) after $took s; its log:"
		sed "s/^/[$job] /" "$log"
	fi
	return "$rc"
}

pids=()
names=()
failed=()
for job in "$@"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n || true
	done
	echo "=== tests of $job: started (log: $OUT/integration-$job.log)"
	run_one "$job" &
	pids+=($!)
	names+=("$job")
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || failed+=("${names[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "=== tests FAILED: ${failed[*]}"
	exit 1
fi
echo "=== tests passed: $*"
