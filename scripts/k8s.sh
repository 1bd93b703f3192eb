#!/usr/bin/env bash
# make k8s: the parts of make test-k8s's single-node cluster, built here
# from pinned sources (nothing can be pulled) and kept in
# $K8S_CACHE/<kubernetes version>-<key>, where the key hashes everything
# that decides them; a second run finds them and only prints the directory.
#
#   scripts/k8s.sh      (K8S_CACHE, IG_VERSION, CLANG from make; prints the directory)
#
# bin/:    kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
#          kube-proxy, kubectl (tools/k8s: k8s.io/kubernetes), etcd
#          (tools/etcd), kubectl-gadget, gadgettracermanager, cleanup
#          (tools/ig: Inspektor Gadget at IG_VERSION), pause (Kubernetes'
#          pause.c, static)
# images/: docker-save archives for `ctr images import`: the pause image,
#          Inspektor Gadget's DaemonSet image, the busybox test image
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
cache=${K8S_CACHE:?set by make k8s}
ig_version=${IG_VERSION:?set by make k8s}
clang=${CLANG:?set by make k8s}
# Static, without paths or symbol tables: smaller binaries page in faster
# over the guest's 9p root.
export CGO_ENABLED=0 GOFLAGS=-trimpath

mod_version() { # mod_version DIR MODULE: the version DIR's go.mod requires
	sed -n "s|^[[:space:]]*\(require \)\{0,1\}$2 \(v[^ ]*\).*|\2|p" "$1/go.mod" | head -1
}
k8s_version=$(mod_version tools/k8s k8s.io/kubernetes)
etcd_version=$(mod_version tools/etcd go.etcd.io/etcd/server/v3)
key=$(cat tools/k8s/go.mod tools/k8s/go.sum tools/etcd/go.mod tools/etcd/go.sum tools/etcd/main.go \
	tools/ig/go.mod tools/ig/go.sum scripts/k8s.sh test/k8s/mkimage/main.go /bin/busybox |
	{ sha256sum; echo "$ig_version $clang"; } | sha256sum | cut -c1-12)
dir=$cache/$k8s_version-$key
if [ -f "$dir/ready" ]; then
	touch "$dir/ready" # in use: see the pruning below
	echo "$dir"
	exit 0
fi

log() { echo "k8s: $*" >&2; }
start=$(date +%s)
log "building the cluster's parts into $dir (about 15 minutes the first time on 2 cores)"
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/images"

v=$k8s_version
minor=${v#v1.}
minor=${minor%%.*}
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1
	-X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean
	-X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1
	-X k8s.io/client-go/pkg/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitTreeState=clean"
for cmd in kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl; do
	log "building $cmd $v"
	(cd tools/k8s && go build -o "$tmp/bin/$cmd" -ldflags "$k8s_ldflags" "k8s.io/kubernetes/cmd/$cmd")
done
log "building etcd $etcd_version"
(cd tools/etcd && go build -o "$tmp/bin/etcd" -ldflags "-s -w" .)

ig_pkg=github.com/inspektor-gadget/inspektor-gadget
ig_image=localhost/trace-tcpretrans-test/inspektor-gadget:$ig_version
log "building kubectl-gadget, gadgettracermanager and cleanup $ig_version"
(cd tools/ig &&
	go build -o "$tmp/bin/kubectl-gadget" \
		-ldflags "-s -w -X $ig_pkg/internal/version.version=$ig_version -X main.gadgetimage=$ig_image" \
		"$ig_pkg/cmd/kubectl-gadget" &&
	go build -o "$tmp/bin/gadgettracermanager" -ldflags "-s -w -X $ig_pkg/internal/version.version=$ig_version" \
		"$ig_pkg/gadget-container/gadgettracermanager" &&
	go build -o "$tmp/bin/cleanup" -ldflags "-s -w" "$ig_pkg/gadget-container/cleanup")

log "building pause from Kubernetes $v"
k8s_dir=$(cd tools/k8s && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
"$clang" -static -O2 -Wall -DVERSION="$v" -o "$tmp/bin/pause" "$k8s_dir/build/pause/linux/pause.c"

log "writing the images"
(cd test && go build -o "$tmp/mkimage" ./k8s/mkimage/)
"$tmp/mkimage" -o "$tmp/images/pause.tar" -tag localhost/trace-tcpretrans-test/pause:3.10 \
	-entrypoint /pause "/pause=$tmp/bin/pause"
# What IG's gadget.Dockerfile puts in its image that a containerd node uses:
# gadgettracermanager (the daemon and its probes) and cleanup (preStop).
"$tmp/mkimage" -o "$tmp/images/inspektor-gadget.tar" -tag "$ig_image" -dir /tmp -dir /var/lib/ig \
	"/bin/gadgettracermanager=$tmp/bin/gadgettracermanager" "/cleanup=$tmp/bin/cleanup"
# busybox applets as commands (processes named wget, httpd) and files to
# serve, as scripts/guide.sh's docker image.
links=()
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || links+=(-link "/bin/$a=busybox")
done
"$tmp/mkimage" -o "$tmp/images/busybox.tar" -tag localhost/trace-tcpretrans-test/busybox:1 -dir /tmp \
	"${links[@]}" /bin/busybox=/bin/busybox /www/index.html=text:hello /www/big.bin=random:2000000
rm "$tmp/mkimage"

touch "$tmp/ready"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
# Sets of parts no run has used for a week (other pins) go; a set in use
# by another checkout's guest right now is never that old.
find "$cache" -mindepth 2 -maxdepth 2 -name ready -mtime +7 -printf '%h\n' | xargs -r rm -rf
log "built in $(($(date +%s) - start)) s: $(du -sh "$dir" | cut -f1)"
echo "$dir"
