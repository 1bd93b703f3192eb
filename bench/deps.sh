#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make deps`, idempotently:
#  - Debian packages: bpfcc-tools (BCC's tcpretrans), bpftrace (tcpretrans.bt),
#    gnuplot-nox (the chart);
#  - the kernel headers of the Debian kernel the VM boots (BENCH_KERNEL, 6.1
#    by default), for BCC, from its Debian suite, with a private apt state
#    (the system's apt configuration is left alone), unpacked with dpkg -x
#    into a cache. The mirror is the Debian archive of this machine's apt
#    sources and the suite the one bin/vm boots BENCH_KERNEL from (both as
#    bin/vm -print tells).
# Prints the BCC_KERNEL_SOURCE directory on its last line.
set -euo pipefail

VM=${VM:-$(cd "$(dirname "$0")/.." && pwd)/bin/vm}
VM_CACHE=${VM_CACHE:-/var/cache/trace_tcpretrans/vm}
CACHE=${BENCH_CACHE:-/var/cache/trace_tcpretrans/bench}
BENCH_KERNEL=${BENCH_KERNEL:-6.1}

[ -x "$VM" ] || { echo "bench/deps.sh: $VM not found: run 'make vm'" >&2; exit 1; }
MIRROR=$("$VM" -print mirror)
SUITE=$("$VM" -kernel "$BENCH_KERNEL" -print suite)

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

mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/archives/partial" "$CACHE/apt/cache"
apt_opts=(-o Dir::Etc::sourcelist="$CACHE/apt/sources.list" -o Dir::Etc::sourceparts=-
	-o Dir::State::Lists="$CACHE/apt/lists" -o Dir::Cache="$CACHE/apt/cache"
	-o Dir::Cache::archives="$CACHE/apt/archives" -o Dir::State::status=/dev/null
	-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Retries=3)
apt_private() {
	apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root "$@"
}
apt_cache_private() {
	apt-cache "${apt_opts[@]}" "$@"
}
updated=
update_lists() {
	[ -n "$updated" ] && return
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" >"$CACHE/apt/sources.list"
	echo "bench/deps.sh: updating Debian $SUITE package lists (private state)" >&2
	apt_private update -qq
	updated=1
}

# The version the VM boots: vm/ (package debian) records it in its ready
# marker (version=...) once it has fetched the kernel; before that, the
# version the suite's linux-image-amd64 points to, which is what vm/ will
# fetch.
ready="$VM_CACHE/$SUITE-amd64/ready"
if [ -s "$ready" ]; then
	ver=$(sed -n 's/^version=//p' "$ready")
else
	update_lists
	ver=$(apt_cache_private depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -1)
	ver=${ver%-unsigned}
fi
[ -n "$ver" ] || { echo "bench/deps.sh: cannot tell the VM's kernel version" >&2; exit 1; }
base=${ver%-amd64}

dest="$CACHE/headers/$ver"
if [ ! -f "$dest/.ready" ]; then
	update_lists
	rm -rf "$dest" && mkdir -p "$dest"
	echo "bench/deps.sh: downloading linux-headers-$ver and linux-headers-$base-common" >&2
	(cd "$CACHE/apt/archives" && apt_private download "linux-headers-$ver" "linux-headers-$base-common" >/dev/null)
	for deb in "$CACHE/apt/archives/linux-headers-${ver}_"*.deb "$CACHE/apt/archives/linux-headers-${base}-common_"*.deb; do
		dpkg -x "$deb" "$dest"
	done
	rm -f "$CACHE/apt/archives/"linux-headers-*.deb
	# Debian splits the tree: -common holds the headers, -amd64 the
	# generated ones and the config. BCC_KERNEL_SOURCE takes one directory,
	# so merge them (the -amd64 files on top).
	mkdir -p "$dest/merged"
	cp -a "$dest/usr/src/linux-headers-$base-common/." "$dest/merged/"
	cp -a "$dest/usr/src/linux-headers-$ver/." "$dest/merged/"
	touch "$dest/.ready"
fi
echo "$dest/merged"
