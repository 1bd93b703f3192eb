#!/usr/bin/env bash
# Installs what building and testing the gadget needs. Safe to run again:
# it only installs what is missing.
set -euo pipefail

IG_VERSION=${IG_VERSION:?IG_VERSION must be set}

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: installing packages needs root; run 'sudo make deps'" >&2
	exit 1
fi

need_pkgs=()
check() { # check COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}
check clang-19 clang-19
check llvm-strip-19 llvm-19
check bpftool bpftool
check ip iproute2
check nft nftables
check tc iproute2
check qemu-system-x86_64 qemu-system-x86
check busybox busybox-static
check dockerd docker.io
check cpio cpio
check depmod kmod
check xz xz-utils
check zstd zstd
check lz4 lz4
check nsenter util-linux
check iptables iptables
# make test-k8s: the node's container runtime and its network.
check containerd containerd
check runc runc
check conntrack conntrack
[ -x /usr/lib/cni/bridge ] || need_pkgs+=(containernetworking-plugins)
[ -f /usr/include/bpf/bpf_helpers.h ] || need_pkgs+=(libbpf-dev)

if [ ${#need_pkgs[@]} -gt 0 ]; then
	echo "deps: installing ${need_pkgs[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${need_pkgs[@]}" >/dev/null
fi

# ig v0.50.1 compiles with $CLANG and $LLVM_STRIP (the Makefile passes
# clang-19 and llvm-strip-19); later ig versions run plain `clang` and
# `llvm-strip` from PATH and ignore those variables. Debian installs only the
# versioned names, so give the plain ones where nothing else provides them.
for tool in clang llvm-strip; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "deps: linking /usr/local/bin/$tool to $tool-19 (for ig versions that run plain $tool)"
		ln -s "$(command -v "$tool-19")" "/usr/local/bin/$tool"
	fi
done

# IG's gadget headers (gadget/*.h and gadget/<arch>/vmlinux.h) ship in the IG
# Go module; `ig image build --local` looks for them under /usr/include.
mod_dir=$(go mod download -json "github.com/inspektor-gadget/inspektor-gadget@${IG_VERSION}" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
src="$mod_dir/include/gadget"
if [ ! -d "$src" ]; then
	echo "deps: gadget headers not found in $mod_dir" >&2
	exit 1
fi
if ! diff -qr "$src" /usr/include/gadget >/dev/null 2>&1; then
	echo "deps: installing IG ${IG_VERSION} gadget headers into /usr/include/gadget"
	rm -rf /usr/include/gadget
	cp -r "$src" /usr/include/gadget
	chmod -R u+w /usr/include/gadget
fi
