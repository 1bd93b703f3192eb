#!/usr/bin/env bash
# make test-unit: gofmt, go vet and staticcheck over every Go module of the
# repository (each go.mod outside tools/, .build/ and bin/).
#
#   scripts/lint.sh [STATICCHECK]     (default: bin/staticcheck, built by
#                                      make test-unit from tools/staticcheck)
#
# Each module is checked natively; in addition:
#   - a package with a //go:wasmexport function is the wasm module: it and the
#     packages of its module that it imports are checked with
#     GOOS=wasip1 GOARCH=wasm (and the package itself only that way);
#   - a package with files behind a build tag (//go:build integration) is
#     checked once more with -tags TAG.
# Findings are printed with paths from the repository's root, then one FAIL
# line per area (tool, module, pass); the exit status is 1 on any finding.
# It needs no root: the Go build cache and staticcheck's cache are the user's
# own, which makes a second run take seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

staticcheck=${1:-${STATICCHECK:-$root/bin/staticcheck}}
case $staticcheck in /*) ;; *) staticcheck=$root/$staticcheck ;; esac
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH=/usr/local/go/bin:$PATH
fi
if [ ! -x "$staticcheck" ]; then
	echo "lint: no staticcheck at $staticcheck: build it with 'make test-unit' or: cd tools/staticcheck && go build -o ../../bin/staticcheck honnef.co/go/tools/cmd/staticcheck" >&2
	exit 2
fi
# Each module on its own, whatever go.work says.
export GOWORK=off

# Tags that select a platform, a compiler or a Go version, and tags that mark
# files no build uses (tools.go), are not passes of their own.
skip_tags=" $(go tool dist list | tr '/' '\n' | sort -u | tr '\n' ' ') unix cgo gc gccgo ignore tools "

# Directories of Go files that belong to module $1 (nested modules, testdata,
# vendor, hidden and _ directories left out).
module_files() {
	find "$1" -mindepth 1 \( -type d \( -name testdata -o -name vendor -o -name '.*' -o -name '_*' \
		-o -exec test -e '{}/go.mod' ';' \) -prune \) -o -type f -name '*.go' -print
}

modules=$(find . \( -path ./.build -o -path ./bin -o -path ./tools -o -name '.?*' -o -name testdata \
	-o -name vendor -o -name node_modules \) -prune -o -name go.mod -print | sed 's|^\./||; s|/\?go.mod$||' | sort)
[ -n "$modules" ] || { echo "lint: no Go module found" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=()

# Paths in the tools' output are relative to the module's directory, or
# absolute: make them relative to the repository's root, drop go vet's
# "# package" headers.
relpaths() {
	local mod=$1
	sed -e '/^#/d' -e 's|^vet: ||' -e "s|^$root/||" -e 's|^\./||' -e "s|^\([^ /:.-][^ :]*\.go:\)|$mod/\1|"
}

# run AREA MODULE CMD...: runs CMD in MODULE, prints its findings, records a failure.
run() {
	local area=$1 mod=$2
	shift 2
	if (cd "$mod" && "$@") >"$tmp/out" 2>&1; then
		return
	fi
	local n
	relpaths "$mod" <"$tmp/out" >"$tmp/findings"
	cat "$tmp/findings"
	n=$(grep -c . "$tmp/findings")
	[ "$n" -gt 0 ] || echo "$mod: $* failed with no output"
	failures+=("FAIL $area ($n line(s))")
}

for mod in $modules; do
	files=$(module_files "$mod")
	[ -n "$files" ] || continue

	# gofmt (a file it cannot parse is a finding too)
	unformatted=$(printf '%s\n' "$files" | xargs gofmt -l 2>"$tmp/gofmt" | sed 's|^\./||')
	if [ -n "$unformatted" ] || [ -s "$tmp/gofmt" ]; then
		sed 's|^\./||' "$tmp/gofmt"
		[ -z "$unformatted" ] || printf '%s: not gofmt-formatted (run gofmt -w)\n' $unformatted
		failures+=("FAIL gofmt $mod/: $(echo $unformatted $(sed 's/:.*//' "$tmp/gofmt" | sort -u))")
	fi

	modpath=$(cd "$mod" && go list -m -f '{{.Path}}')

	# The wasm operator's packages, as directories relative to the module.
	wasm_dirs=$(grep -l '^//go:wasmexport' $(printf '%s\n' "$files" | grep -v '_test\.go$') 2>/dev/null |
		xargs -r -n1 dirname | sort -u | sed "s|^$mod\$|.|; s|^$mod/|./|")

	# Native pass: every package but the wasm ones.
	native=$(cd "$mod" && go list -e -f '{{.Dir}}' ./... 2>/dev/null | sed "s|^$root/$mod\$|.|; s|^$root/$mod/|./|")
	for d in $wasm_dirs; do native=$(printf '%s\n' "$native" | grep -vx -- "$d"); done
	if [ -z "$native$wasm_dirs" ]; then
		# go list found nothing (broken go.mod?): let the tools say why.
		native=./...
	fi
	if [ -n "$native" ]; then
		run "go vet $mod/" "$mod" go vet $native
		run "staticcheck $mod/" "$mod" "$staticcheck" $native
	fi

	# wasm pass: the wasm packages and the packages of this module they import.
	if [ -n "$wasm_dirs" ]; then
		wasm=$(cd "$mod" && GOOS=wasip1 GOARCH=wasm go list -e -deps \
			-f "{{if .Module}}{{if eq .Module.Path \"$modpath\"}}{{.Dir}}{{end}}{{end}}" $wasm_dirs 2>/dev/null |
			sed "s|^$root/$mod\$|.|; s|^$root/$mod/|./|")
		[ -n "$wasm" ] || wasm=$wasm_dirs
		run "go vet $mod/ GOOS=wasip1 GOARCH=wasm" "$mod" env GOOS=wasip1 GOARCH=wasm go vet $wasm
		run "staticcheck $mod/ GOOS=wasip1 GOARCH=wasm" "$mod" env GOOS=wasip1 GOARCH=wasm "$staticcheck" $wasm
	fi

	# A pass per build tag, over the packages whose files use it.
	tags=$(printf '%s\n' "$files" | xargs grep -h '^//go:build' 2>/dev/null | sed 's|^//go:build||' |
		grep -o '[A-Za-z_][A-Za-z0-9_.]*' | sort -u)
	for tag in $tags; do
		case $skip_tags in *" $tag "*) continue ;; esac
		case $tag in go1.*) continue ;; esac
		dirs=$(printf '%s\n' "$files" | xargs grep -l -E "^//go:build.*\\b$tag\\b" 2>/dev/null |
			xargs -r -n1 dirname | sort -u | sed "s|^$mod\$|.|; s|^$mod/|./|")
		run "go vet $mod/ -tags $tag" "$mod" go vet -tags "$tag" $dirs
		run "staticcheck $mod/ -tags $tag" "$mod" "$staticcheck" -tags "$tag" $dirs
	done
done

if [ ${#failures[@]} -gt 0 ]; then
	printf '%s\n' "${failures[@]}"
	exit 1
fi
echo "lint: gofmt, go vet and staticcheck clean in $(echo $modules)"
