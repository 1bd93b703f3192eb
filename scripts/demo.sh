#!/usr/bin/env bash
# The guide's scenario, without internet: a web server container and a client
# container whose interface drops 25% of the packets; the gadget traces the
# client container. Runs as root on a host (or VM) with docker and bin/ig.
#
#   scripts/demo.sh IMAGE [ig flags...]
#
# Environment: DEMO_FETCHES (default 20) bounds the client's downloads.
set -euo pipefail
cd "$(dirname "$0")/.."

image=$1
shift
fetches=${DEMO_FETCHES:-20}
work=$(mktemp -d /tmp/demo.XXXXXX)
ig_pid=

cleanup() {
	# TERM, not INT: a non-interactive shell starts background commands
	# with SIGINT ignored. Whatever ig has attached goes with its process.
	if [ -n "$ig_pid" ] && kill -TERM "$ig_pid" 2>/dev/null; then
		for _ in $(seq 40); do
			kill -0 "$ig_pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$ig_pid" 2>/dev/null || true
		wait "$ig_pid" 2>/dev/null || true
	fi
	docker rm -f test-trace-tcpretrans "$GUIDE_WEB" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# shellcheck source=scripts/guide.sh
. scripts/guide.sh
web_ip=$(guide_up "$work")

echo "demo: starting ig run $image --containername test-trace-tcpretrans $*" >&2
bin/ig run "$image" --verify-image=false --containername test-trace-tcpretrans "$@" &
ig_pid=$!
# Under QEMU/TCG ig takes 30 to 140 s to compile the wasm operator and attach.
wait_for "the gadget's programs to be attached" 180 gadget_attached

lossy_client test-trace-tcpretrans 25
echo "demo: client container drops 25% of its packets; fetching http://$web_ip/big.bin $fetches times" >&2
fetch test-trace-tcpretrans "$fetches"
sleep 2
