package debian

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestHeaderPackages(t *testing.T) {
	for _, c := range []struct {
		name, version, pkg, debVersion, depends string
		want                                    []string
	}{{
		// bookworm, classic packaging (apt-cache show, 2026-11-30).
		name: "6.1", version: "6.1.0-50-amd64", pkg: "linux-headers-6.1.0-50-amd64", debVersion: "6.1.176-1",
		depends: "linux-headers-6.1.0-50-common (= 6.1.176-1), linux-kbuild-6.1 (>= 6.1.176-1), linux-compiler-gcc-12-x86",
		want:    []string{"linux-headers-6.1.0-50-amd64=6.1.176-1", "linux-headers-6.1.0-50-common=6.1.176-1"},
	}, {
		// trixie-backports, split packaging: the headers are named alike.
		name: "7.3", version: "7.3.4+deb13-amd64", pkg: "linux-headers-7.3.4+deb13-amd64", debVersion: "7.3.4-1~bpo13+1",
		depends: "gcc-14-for-host, linux-base (>= 4.12~), linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-headers-7.3.4+deb13-common (= 7.3.4-1~bpo13+1), linux-kbuild-7.3.4+deb13",
		want:    []string{"linux-headers-7.3.4+deb13-amd64=7.3.4-1~bpo13+1", "linux-headers-7.3.4+deb13-common=7.3.4-1~bpo13+1"},
	}, {
		// The realtime flavour's -common-rt is not the one.
		name: "rt beside", version: "6.1.0-50-amd64", pkg: "linux-headers-6.1.0-50-amd64", debVersion: "6.1.176-1",
		depends: "linux-headers-6.1.0-50-common-rt (= 6.1.176-1) | linux-headers-6.1.0-50-common (= 6.1.176-1)",
		want:    []string{"linux-headers-6.1.0-50-amd64=6.1.176-1", "linux-headers-6.1.0-50-common=6.1.176-1"},
	}, {
		// No -common in Depends: Debian's name, version left to the index.
		name: "unnamed common", version: "6.12.117+deb13-arm64", pkg: "linux-headers-6.12.117+deb13-arm64", debVersion: "6.12.117-1",
		depends: "linux-kbuild-6.12.117+deb13",
		want:    []string{"linux-headers-6.12.117+deb13-arm64=6.12.117-1", "linux-headers-6.12.117+deb13-common="},
	}, {
		name: "common, any version", version: "5.10.0-32-amd64", pkg: "linux-headers-5.10.0-32-amd64", debVersion: "5.10.223-1",
		depends: "linux-headers-5.10.0-32-common (>= 5.10.223-1)",
		want:    []string{"linux-headers-5.10.0-32-amd64=5.10.223-1", "linux-headers-5.10.0-32-common="},
	}} {
		got, err := HeaderPackages(c.version, c.version[strings.LastIndex(c.version, "-")+1:], c.pkg, c.debVersion, c.depends)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for name, args := range map[string][5]string{
		"another package": {"6.1.0-50-amd64", "amd64", "linux-headers-6.1.0-50-cloud-amd64", "6.1.176-1", ""},
		"not in index":    {"6.1.0-50-amd64", "amd64", "", "", ""},
		"two commons": {"6.1.0-50-amd64", "amd64", "linux-headers-6.1.0-50-amd64", "6.1.176-1",
			"linux-headers-6.1.0-50-common (= 6.1.176-1), linux-headers-6.1.0-49-common (= 6.1.170-1)"},
	} {
		if got, err := HeaderPackages(args[0], args[1], args[2], args[3], args[4]); err == nil {
			t.Errorf("%s: accepted: %q", name, got)
		}
	}
}

func TestDebianVersion(t *testing.T) {
	for in, want := range map[string]string{
		"linux-image-6.1.0-50-amd64-unsigned=6.1.176-1":                                               "6.1.176-1",
		"linux-base-7.3.4+deb13-amd64=7.3.4-1~bpo13+1 linux-binary-7.3.4+deb13-amd64=7.3.4-1~bpo13+1": "7.3.4-1~bpo13+1",
		"": "",
	} {
		if got := debianVersion(in); got != want {
			t.Errorf("debianVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// tree lists dir: path -> "dir", "link:<target>" or the file's text.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "link:" + target
			return err
		case info.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			out[rel] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMergeTree(t *testing.T) {
	root := t.TempDir()
	common := filepath.Join(root, "usr/src/linux-headers-6.1.0-50-common")
	flavour := filepath.Join(root, "usr/src/linux-headers-6.1.0-50-amd64")
	writeFile(t, filepath.Join(common, "Makefile"), "the kernel's Makefile")
	writeFile(t, filepath.Join(common, "include/linux/tcp.h"), "tcp")
	writeFile(t, filepath.Join(common, "arch/x86/include/asm/ptrace.h"), "ptrace")
	writeFile(t, filepath.Join(common, "was-a-file"), "file")
	writeFile(t, filepath.Join(common, "was-a-dir/x"), "x")
	writeFile(t, filepath.Join(flavour, "Makefile"), "include /usr/src/linux-headers-6.1.0-50-common/Makefile")
	writeFile(t, filepath.Join(flavour, ".config"), "CONFIG_BPF=y")
	writeFile(t, filepath.Join(flavour, "include/generated/autoconf.h"), "autoconf")
	writeFile(t, filepath.Join(flavour, "arch/x86/include/generated/asm/orc_hash.h"), "orc")
	writeFile(t, filepath.Join(flavour, "was-a-file/y"), "y")
	writeFile(t, filepath.Join(flavour, "was-a-dir"), "now a file")
	for _, d := range []string{common, flavour} {
		// Dangling links (into linux-kbuild) are kept as they are.
		if err := os.Symlink("../../lib/linux-kbuild-6.1/scripts", filepath.Join(d, "scripts")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(flavour, "include/linux"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tcp.h", filepath.Join(flavour, "include/linux/alias.h")); err != nil {
		t.Fatal(err)
	}
	if headersComplete(common) {
		t.Errorf("-common alone taken for complete headers")
	}

	if err := MergeTree(flavour, common); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Makefile":                       "include /usr/src/linux-headers-6.1.0-50-common/Makefile",
		".config":                        "CONFIG_BPF=y",
		"include":                        "dir",
		"include/linux":                  "dir",
		"include/linux/tcp.h":            "tcp",
		"include/linux/alias.h":          "link:tcp.h",
		"include/generated":              "dir",
		"include/generated/autoconf.h":   "autoconf",
		"arch":                           "dir",
		"arch/x86":                       "dir",
		"arch/x86/include":               "dir",
		"arch/x86/include/asm":           "dir",
		"arch/x86/include/asm/ptrace.h":  "ptrace",
		"arch/x86/include/generated":     "dir",
		"arch/x86/include/generated/asm": "dir",
		"arch/x86/include/generated/asm/orc_hash.h": "orc",
		"scripts":      "link:../../lib/linux-kbuild-6.1/scripts",
		"was-a-file":   "dir",
		"was-a-file/y": "y",
		"was-a-dir":    "now a file",
	}
	if got := tree(t, common); !reflect.DeepEqual(got, want) {
		t.Errorf("merged tree:\ngot  %q\nwant %q", got, want)
	}
	if _, err := os.Lstat(flavour); !os.IsNotExist(err) {
		t.Errorf("the merged-in tree is still there: %v", err)
	}
	if !headersComplete(common) {
		t.Errorf("merged headers not taken for complete")
	}

	// Into a directory not there yet; from something not a directory.
	src := filepath.Join(root, "src")
	writeFile(t, filepath.Join(src, "a/b"), "b")
	if err := MergeTree(src, filepath.Join(root, "new")); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, filepath.Join(root, "new")); !reflect.DeepEqual(got, map[string]string{"a": "dir", "a/b": "b"}) {
		t.Errorf("into a new directory: %q", got)
	}
	if err := MergeTree(filepath.Join(root, ".config-missing"), common); err == nil {
		t.Errorf("a missing source accepted")
	}
}

// Headers returns cached headers without apt (no network).
func TestHeadersCached(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bookworm-amd64")
	k := &Kernel{Suite: "bookworm", Arch: "amd64", Version: "6.1.0-50-amd64", Package: "linux-image-6.1.0-50-amd64-unsigned=6.1.176-1", Dir: dir}
	h := filepath.Join(dir, "headers", k.Version)
	for _, p := range []string{"include/linux/tcp.h", "include/generated/autoconf.h", ".config"} {
		writeFile(t, filepath.Join(h, p), "x")
	}
	defer func(k string) { Keyring = k }(Keyring)
	Keyring = filepath.Join(dir, "no-keyring") // apt would fail at once
	got, err := Headers(k)
	if err != nil || got != h {
		t.Fatalf("Headers = %q, %v; want %q", got, err, h)
	}
	for _, bad := range []*Kernel{nil, {Dir: dir}, {Dir: dir, Version: "../x"}} {
		if _, err := Headers(bad); err == nil {
			t.Errorf("Headers(%+v) accepted", bad)
		}
	}
}
