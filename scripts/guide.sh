# The guide's scenario (IG's trace_tcpretrans page), without internet: a web
# server container and client containers whose interface drops packets.
# One fixture for `make run`'s demo (scripts/demo.sh) and the integration
# tests (test/integration), which source this file. Runs as root on a host
# or VM with docker and bpftool.

# Names of the fixture: the busybox image, the web server container.
GUIDE_IMAGE=trtest/busybox
GUIDE_WEB=tr-web

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local end=$(($(date +%s) + secs))
	until "$@"; do
		if [ "$(date +%s)" -ge "$end" ]; then
			echo "timed out after ${secs}s waiting for $what" >&2
			return 1
		fi
		sleep 0.5
	done
}

# gadget_attached [PROGRAM]: the gadget's programs are loaded (ig loads them
# all and attaches them right after): its retransmission program
# (go/contract.ProgRetransmit, or PROGRAM for another image) is in the kernel.
gadget_attached() {
	bpftool prog show 2>/dev/null | grep -q "name ${1:-ig_tcpretrans}\b"
}

# start_dockerd WORKDIR: dockerd with its state under WORKDIR, unless one
# runs already. dockerd gives the containerd it starts a fixed time to
# answer, which a guest on a loaded host can exceed ("failed to start
# containerd: timeout waiting for containerd to start"); dockerd then exits,
# and is started again (three times at most), finding that containerd
# running.
start_dockerd() {
	local work=$1 attempt pid
	if docker info >/dev/null 2>&1; then
		return 0
	fi
	for attempt in 1 2 3; do
		dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" \
			--storage-driver=overlay2 >>"$work/dockerd.log" 2>&1 &
		pid=$!
		wait_for dockerd 60 dockerd_settled "$pid" || break
		kill -0 "$pid" 2>/dev/null && return 0
		echo "dockerd exited (attempt $attempt of 3): $(tail -n 1 "$work/dockerd.log")" >&2
	done
	echo "dockerd did not start; its log:" >&2
	cat "$work/dockerd.log" >&2
	return 1
}

# dockerd_settled PID: docker answers, or the dockerd of PID has exited.
dockerd_settled() {
	docker info >/dev/null 2>&1 || ! kill -0 "$1" 2>/dev/null
}

# import_busybox_image WORKDIR: an image with busybox applets as commands
# (so that processes are named wget, httpd, ...) and files to serve.
import_busybox_image() {
	local work=$1 root=$1/rootfs
	docker image inspect "$GUIDE_IMAGE" >/dev/null 2>&1 && return 0
	mkdir -p "$root/bin" "$root/www" "$root/tmp"
	cp /bin/busybox "$root/bin/busybox"
	"$root/bin/busybox" --install -s "$root/bin"
	# busybox --install links to the absolute path it was started from.
	for l in "$root"/bin/*; do
		[ -L "$l" ] && ln -sf busybox "$l"
	done
	echo hello >"$root/www/index.html"
	head -c 2000000 /dev/urandom >"$root/www/big.bin"
	tar -C "$root" -c . | docker import - "$GUIDE_IMAGE" >/dev/null
}

# guide_up WORKDIR: dockerd, the image and the web server; prints the
# server's address on stdout.
guide_up() {
	local work=$1
	start_dockerd "$work" && import_busybox_image "$work" || return 1
	docker rm -f "$GUIDE_WEB" >/dev/null 2>&1
	docker run -d --name "$GUIDE_WEB" "$GUIDE_IMAGE" /bin/httpd -f -p 80 -h /www >/dev/null || return 1
	docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$GUIDE_WEB"
}

# lossy_client NAME PERCENT: a client container whose eth0 drops PERCENT%
# of its packets.
lossy_client() {
	local name=$1 pct=$2
	docker rm -f "$name" >/dev/null 2>&1
	docker run -d --cap-add NET_ADMIN --name "$name" "$GUIDE_IMAGE" /bin/sleep 3600 >/dev/null || return 1
	nsenter -t "$(docker inspect -f '{{.State.Pid}}' "$name")" -n tc qdisc add dev eth0 root netem drop "$pct%"
}

# fetch CONTAINER N: N downloads of the web server's big file, each bounded
# to 20 s; failures are expected on a lossy link and ignored.
fetch() {
	local name=$1 n=$2 ip
	ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$GUIDE_WEB")
	docker exec "$name" /bin/sh -c \
		"for i in \$(seq $n); do timeout 20 wget -q -O /dev/null http://$ip/big.bin; done" || true
}
