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
# Tests of ig's side run in one guest each, the others leave them out by
# name (not by t.Skip): TestPublish (registry, signing, verification with
# bin/cosign) in the guest of PUBLISH_KERNEL, TestMetricsAndCounts in that
# of METRICS_KERNEL, and each TEST@KERNEL of ONE_GUEST_TESTS in KERNEL's.
# k8s@KERNEL needs K8S_PARTS, the directory scripts/k8s.sh prints, and
# K8S_TCG (bin/vm -tcg-threads for the node's guest): the
# control plane and the registry run here (.build/controlplane), the node in
# the guest, linked by a TAP interface (run_k8s).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/.build

image=$1
shift
jobs=${JOBS:-2}
publish_kernel=${PUBLISH_KERNEL:?set by make test-integration}
metrics_kernel=${METRICS_KERNEL:?set by make test-integration}
one_guest_tests="TestPublish@$publish_kernel TestMetricsAndCounts@$metrics_kernel ${ONE_GUEST_TESTS-}"
cosign=${COSIGN:?set by make test-integration}

run_one() { # run_one JOB: boots its kernel, runs the tests, logs the result
	local job=$1 log=$OUT/integration-$1.log start=$(date +%s) rc opts= skip=()
	local k=${job#k8s@}
	if [ "$k" != "$job" ]; then
		run_k8s "$k" >"$log" 2>&1
		rc=$?
	else
		local spec
		for spec in $one_guest_tests; do
			[ "${spec#*@}" = "$k" ] || skip+=("${spec%@*}")
		done
		[ "$k" = "$publish_kernel" ] && opts="-cosign $cosign"
		[ ${#skip[@]} -gt 0 ] && opts+=" -test.skip '^($(IFS='|'; echo "${skip[*]}"))\$'"
		bin/vm -kernel "$k" -timeout 50m -share "$REPO" -workdir "$REPO/test/integration" -- \
			"$OUT/integration.test -test.v -test.count=1 -repo $REPO -image $image -loadgen $OUT/loadgen -timeline $OUT/timeline-$k.tsv $opts" \
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

# run_k8s KERNEL: the Kubernetes tests. On this side: the TAP link
# (192.168.200.1 here, the guest's card at the other end; nothing is
# forwarded beyond this host), the control plane and the registry
# (.build/controlplane), and the gadget image pushed to that registry and
# signed with a key made for the run (scripts/publish.sh, the code of make
# push and make sign). In the guest: the node and test/k8s.
run_k8s() {
	local k=$1 work=$OUT/k8s-host tap=trk8s0 host_ip=192.168.200.1 cp rc=0
	local reg=192.168.200.1:5000 ref=192.168.200.1:5000/trace_tcpretrans:k8s
	local parts=${K8S_PARTS:?set by make test-k8s}
	rm -rf "$work"
	mkdir -p "$work"
	# What an interrupted run may have left: its components, its link.
	pkill -f "^$parts/bin/" && sleep 5
	ip link del "$tap" 2>/dev/null
	ip tuntap add dev "$tap" mode tap && ip addr add "$host_ip/24" dev "$tap" && ip link set "$tap" up || return 1
	"$OUT/controlplane" -parts "$parts" -work "$work" &
	cp=$!
	local end=$(($(date +%s) + 300))
	until [ -f "$work/ready" ]; do
		if ! kill -0 "$cp" 2>/dev/null || [ "$(date +%s)" -ge "$end" ]; then
			echo "k8s: the control plane did not start; its logs:"
			tail -n 30 "$work"/*.log
			kill "$cp" 2>/dev/null
			ip link del "$tap"
			return 1
		fi
		sleep 1
	done
	echo "k8s: control plane and registry ready; publishing $ref"
	if bin/ig image tag "$image" "$ref" >/dev/null &&
		scripts/publish.sh push bin/ig "$ref" "$reg" &&
		COSIGN_PASSWORD= scripts/publish.sh keys "$cosign" "$work/cosign.key" "$work/cosign.pub" &&
		COSIGN_PASSWORD= scripts/publish.sh sign bin/ig "$cosign" "$ref" "$work/cosign.key" "$reg"; then
		# The node's pods and IG's daemon want more memory than ig alone.
		bin/vm -kernel "$k" -mem 4096 -tcg-threads "${K8S_TCG:-single}" -tap "$tap" -timeout 40m -share "$REPO" -workdir "$REPO/test/k8s" -- \
			"$OUT/k8s.test -test.v -test.count=1 -repo $REPO -parts $parts -control-plane $work -image $ref -public-key $work/cosign.pub"
		rc=$?
		[ "$rc" -eq 0 ] || { echo "k8s: the control plane's logs:"; tail -n 30 "$work"/*.log; }
	else
		rc=1
	fi
	kill "$cp"
	wait "$cp"
	bin/ig image remove "$ref" >/dev/null 2>&1
	ip link del "$tap"
	return "$rc"
}

# A test of one_guest_tests whose name or kernel is wrong would run nowhere.
kernels=" $(printf '%s\n' "$@" | grep -v '^k8s@' | tr '\n' ' ')"
for spec in $one_guest_tests; do
	grep -q "^func ${spec%@*}(t \*testing.T)" test/integration/*_test.go ||
		{ echo "integration.sh: $spec: no such test in test/integration" >&2; exit 2; }
	[ "$kernels" = " " ] || [[ "$kernels" == *" ${spec#*@} "* ]] ||
		{ echo "integration.sh: $spec: ${spec#*@} is not among the kernels: $*" >&2; exit 2; }
done

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
	# Each failed job's whole log was printed when it ended, perhaps long
	# before the end of the run: its failures again, last.
	for job in "${failed[@]}"; do
		echo "=== why $job failed (from $OUT/integration-$job.log):"
		grep -a -E -e '--- FAIL|^\s+(Error|Messages):|_test\.go:[0-9]+:|^vm: |^k8s: |^panic:|timed out' \
			"$OUT/integration-$job.log" | tail -n 60 | cut -c1-400 | sed "s/^/[$job] /"
		# A guest that ended without the command's status: what its
		# console printed last.
		grep -a -B 25 "^vm: .*without the command's status" "$OUT/integration-$job.log" |
			tail -n 26 | cut -c1-400 | sed "s/^/[$job console] /"
	done
	echo "=== tests FAILED: ${failed[*]}"
	exit 1
fi
echo "=== tests passed: $*"
