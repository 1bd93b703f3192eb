#!/usr/bin/env bash
# Publishing the gadget image: make keys, make push, make sign. The tests in
# test/publish sign with the same function.
#
#   scripts/publish.sh keys COSIGN KEY PUB
#   scripts/publish.sh push IG IMAGE [INSECURE_REGISTRY]
#   scripts/publish.sh digest IG IMAGE
#   scripts/publish.sh sign IG COSIGN IMAGE KEY [INSECURE_REGISTRY]
#
# KEY is a file or env://VAR (cosign's forms); COSIGN_PASSWORD is the key's
# password (empty for keys made by `make keys`). INSECURE_REGISTRY
# (host:port) is a registry reached over plain HTTP, such as one on loopback.
set -euo pipefail

die() {
	echo "publish: $*" >&2
	exit 1
}

# keys COSIGN KEY PUB: a key pair for local use, unless KEY exists.
keys() {
	local cosign=$1 key=$2 pub=$3
	if [ -e "$key" ]; then
		echo "publish: $key exists; remove it to make a new pair" >&2
		return 0
	fi
	[ "${key%.key}" != "$key" ] && [ "${pub%.pub}" = "${key%.key}" ] ||
		die "KEY must end in .key and PUB be the same path ending in .pub (cosign names them so)"
	mkdir -p "$(dirname "$key")"
	COSIGN_PASSWORD=${COSIGN_PASSWORD-} "$cosign" generate-key-pair --output-key-prefix "${key%.key}" >/dev/null
	chmod 600 "$key"
	echo "publish: wrote $key (private, keep it) and $pub (give it to users: ig run ... --public-keys=\"\$(cat $pub)\")" >&2
}

# insecure_flags REGISTRY FLAG...: FLAG... when REGISTRY is set.
insecure_flags() {
	[ -n "$1" ] || return 0
	shift
	printf '%s\n' "$@"
}

# push IG IMAGE [REGISTRY]
push() {
	local ig=$1 image=$2 insecure=${3:-}
	case $image in */*) ;; *) die "$image has no registry: ig would push it as ghcr.io/inspektor-gadget/gadget/$image; set REGISTRY" ;; esac
	mapfile -t flags < <(insecure_flags "$insecure" --insecure-registries "$insecure")
	"$ig" image push "${flags[@]}" "$image"
}

# digest IG IMAGE: the digest of IMAGE's index in ig's local store, which
# is the digest that ig verifies.
digest() {
	local ig=$1 image=$2 repo tag json re
	repo=${image%:*} tag=${image##*:}
	[ "$repo" != "$image" ] && [ "${tag#*/}" = "$tag" ] || die "$image has no tag"
	json=$("$ig" image list -o json)
	re="\"Repository\":\"${repo//./\\.}\",\"Tag\":\"${tag//./\\.}\",\"Digest\":\"(sha256:[0-9a-f]{64})\""
	[[ $json =~ $re ]] || die "$image is not in ig's local store (make build, or ig image pull)"
	echo "${BASH_REMATCH[1]}"
}

# sign IG COSIGN IMAGE KEY [REGISTRY]: a cosign signature of IMAGE's digest
# in the registry, in the format ig v0.50.1 verifies (a sha256-<digest>.sig
# tag), without a transparency log (ig does not read it). IMAGE is a tag in
# ig's local store, or REPOSITORY@sha256:... already.
sign() {
	local ig=$1 cosign=$2 image=$3 key=$4 insecure=${5:-} ref
	case $key in env://*) ;; *) [ -r "$key" ] || die "no signing key $key: make keys, or set COSIGN_KEY" ;; esac
	case $image in
	*@sha256:*) ref=$image ;;
	*) ref="${image%:*}@$(digest "$ig" "$image")" ;;
	esac
	mapfile -t flags < <(insecure_flags "$insecure" --allow-insecure-registry --allow-http-registry)
	COSIGN_PASSWORD=${COSIGN_PASSWORD-} "$cosign" sign --yes --key "$key" --tlog-upload=false \
		"${flags[@]}" "$ref"
	echo "publish: signed $ref" >&2
}

cmd=${1:-}
shift || true
case $cmd in
keys | push | digest | sign) "$cmd" "$@" ;;
*) die "usage: scripts/publish.sh keys|push|digest|sign ..." ;;
esac
