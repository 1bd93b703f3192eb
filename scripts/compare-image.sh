#!/usr/bin/env bash
# make compare-image: IG's own trace_tcpretrans gadget at IG_VERSION, built
# from IG's Go module with bin/ig into an image name of its own, for make
# bench to compare with. Does nothing when the image is in ig's local store.
#
#   scripts/compare-image.sh IG IMAGE WORKDIR
#
# IG_VERSION, CLANG and LLVM_STRIP come from the Makefile. IMAGE must be a
# full reference (registry included) that is neither this gadget's nor IG's
# published one (ghcr.io/inspektor-gadget/gadget/...): a local build shadows
# the registry's image of the same name.
set -euo pipefail

die() {
	echo "compare-image: $*" >&2
	exit 1
}

[ $# -eq 3 ] || die "usage: $0 IG IMAGE WORKDIR"
ig=$1 image=$2 work=$3
IG_VERSION=${IG_VERSION:?IG_VERSION must be set}
CLANG=${CLANG:?CLANG must be set}
LLVM_STRIP=${LLVM_STRIP:?LLVM_STRIP must be set}

# The name's first component must be a registry (a dot, a port or
# localhost), else ig completes it to IG's own namespace.
first=${image%%/*}
[ "$first" != "$image" ] || first=
case $first in
*.* | *:* | localhost) ;;
*) die "$image has no registry: ig would take it for ghcr.io/inspektor-gadget/gadget/$image" ;;
esac
case $image in
ghcr.io/inspektor-gadget/*) die "$image is IG's published name: building it would shadow IG's image" ;;
esac
repo=${image%:*} tag=${image##*:}
[ "$repo" != "$image" ] && [ "${tag#*/}" = "$tag" ] || die "$image has no tag"

# `ig image list` prints REPOSITORY TAG DIGEST CREATED.
if "$ig" image list | awk -v r="$repo" -v t="$tag" '$1 == r && $2 == t { found = 1 } END { exit !found }'; then
	echo "compare-image: $image is in ig's local store"
	exit 0
fi

module=github.com/inspektor-gadget/inspektor-gadget@$IG_VERSION
mod_dir=$(go env GOMODCACHE)/$module
if [ ! -f "$mod_dir/gadgets/trace_tcpretrans/program.bpf.c" ]; then
	echo "compare-image: downloading $module"
	GOFLAGS=-mod=mod GOSUMDB=off go mod download "$module"
fi
src=$mod_dir/gadgets/trace_tcpretrans
[ -f "$src/program.bpf.c" ] && [ -f "$src/gadget.yaml" ] || die "no trace_tcpretrans gadget in $mod_dir"

# The module cache is read-only, and ig builds in the gadget's directory:
# build a copy. IG's gadget has no build.yaml (ig's defaults, program.bpf.c
# and gadget.yaml, apply); its headers are IG's, in /usr/include/gadget
# (make deps installs those of IG_VERSION), as for this gadget.
rm -rf "$work"
mkdir -p "$work/out"
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
echo "compare-image: building IG's trace_tcpretrans $IG_VERSION as $image"
CLANG=$CLANG LLVM_STRIP=$LLVM_STRIP "$ig" image build --local -o "$work/out" -t "$image" "$work/src"
