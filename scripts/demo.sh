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
	docker rm -f test-trace-tcpretrans tr-web >/dev/null 2>&1 || true
}
trap cleanup EXIT

# shellcheck source=scripts/docker-env.sh
. scripts/docker-env.sh
start_dockerd "$work"
import_busybox_image trtest/busybox "$work"

docker run -d --name tr-web trtest/busybox /bin/httpd -f -p 80 -h /www >/dev/null
web_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' tr-web)

echo "demo: starting ig run $image --containername test-trace-tcpretrans $*" >&2
bin/ig run "$image" --verify-image=false --containername test-trace-tcpretrans "$@" &
ig_pid=$!
# Under QEMU/TCG ig takes 30 to 70 s to compile the wasm operator and attach.
wait_for "the gadget's programs to be attached" 180 gadget_attached

docker run -d --cap-add NET_ADMIN --name test-trace-tcpretrans trtest/busybox /bin/sleep 3600 >/dev/null
client_pid=$(docker inspect -f '{{.State.Pid}}' test-trace-tcpretrans)
nsenter -t "$client_pid" -n tc qdisc add dev eth0 root netem drop 25%
echo "demo: client container drops 25% of its packets; fetching http://$web_ip/ $fetches times" >&2
docker exec test-trace-tcpretrans /bin/sh -c \
	"for i in \$(seq $fetches); do timeout 20 wget -q -O /dev/null http://$web_ip/big.bin; done" || true
sleep 2
