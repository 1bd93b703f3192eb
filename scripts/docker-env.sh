# Helpers to run dockerd and a busybox image without a registry; sourced by
# scripts/demo.sh and the integration tests' guest scripts.

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local end=$(( $(date +%s) + secs ))
	until "$@"; do
		if [ "$(date +%s)" -ge "$end" ]; then
			echo "timed out after ${secs}s waiting for $what" >&2
			return 1
		fi
		sleep 0.5
	done
}

gadget_attached() {
	bpftool prog show 2>/dev/null | grep -q 'name ig_tcpretrans'
}

# start_dockerd WORKDIR: dockerd with its state on tmpfs.
start_dockerd() {
	local work=$1
	if docker info >/dev/null 2>&1; then
		return 0
	fi
	dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" \
		--storage-driver=overlay2 >"$work/dockerd.log" 2>&1 &
	wait_for dockerd 60 docker info >/dev/null 2>&1 || {
		cat "$work/dockerd.log" >&2
		return 1
	}
}

# import_busybox_image NAME WORKDIR: an image with busybox applets as
# commands (so that processes are named wget, httpd, ...) and files to serve.
import_busybox_image() {
	local name=$1 work=$2 root=$2/rootfs
	docker image inspect "$name" >/dev/null 2>&1 && return 0
	mkdir -p "$root/bin" "$root/www" "$root/tmp"
	cp /bin/busybox "$root/bin/busybox"
	"$root/bin/busybox" --install -s "$root/bin"
	# busybox --install links to the absolute path it was started from.
	for l in "$root"/bin/*; do
		[ -L "$l" ] && ln -sf busybox "$l"
	done
	echo hello >"$root/www/index.html"
	head -c 2000000 /dev/urandom >"$root/www/big.bin"
	tar -C "$root" -c . | docker import - "$name" >/dev/null
}
