package debian

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMirrorReadsAptDir(t *testing.T) {
	defer func(d string) { AptDir = d }(AptDir)
	AptDir = t.TempDir()
	d := filepath.Join(AptDir, "sources.list.d")
	// Files apt ignores, and a security-only list, come first.
	writeFile(t, filepath.Join(d, "a.list.disabled-by-farm"), "deb http://wrong.example/debian bookworm main\n")
	writeFile(t, filepath.Join(d, "b.list"), "deb http://m.example/debian-security bookworm-security main\n")
	if _, err := Mirror(); err == nil || !strings.Contains(err.Error(), "b.list") || strings.Contains(err.Error(), "disabled") {
		t.Fatalf("want an error naming b.list only, got %v", err)
	}
	writeFile(t, filepath.Join(d, "debian.sources"), "Types: deb\nURIs: http://m.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n")
	if m, err := Mirror(); err != nil || m != "http://m.example/debian" {
		t.Fatalf("Mirror() = %q, %v", m, err)
	}
	// sources.list is read first; its release line wins over the .sources.
	writeFile(t, filepath.Join(AptDir, "sources.list"), "deb http://first.example/debian trixie main\n")
	if m, err := Mirror(); err != nil || m != "http://first.example/debian" {
		t.Fatalf("Mirror() = %q, %v", m, err)
	}
}

func TestControlAndDepends(t *testing.T) {
	show := `Package: linux-image-7.3.4+deb13-amd64
Source: linux-signed-amd64 (7.3.4+1~bpo13+1)
Version: 7.3.4-1~bpo13+1
Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)
Description: Linux 7.3.4 for 64-bit PCs (signed)
 The Linux kernel 7.3.4 and modules.

Package: linux-image-7.3.4+deb13-amd64
Version: 7.3.3-1~bpo13+1
`
	f := control(show)
	if f["version"] != "7.3.4-1~bpo13+1" || !strings.Contains(f["description"], "and modules.") {
		t.Errorf("control: %q", f)
	}
	want := map[string]string{
		"dracut": "", "initramfs-tools": "", "linux-initramfs-tool": "",
		"linux-base-7.3.4+deb13-amd64":    "7.3.4-1~bpo13+1",
		"linux-binary-7.3.4+deb13-amd64":  "7.3.4-1~bpo13+1",
		"linux-modules-7.3.4+deb13-amd64": "7.3.4-1~bpo13+1",
	}
	if got := depends(f["depends"]); !reflect.DeepEqual(got, want) {
		t.Errorf("depends:\ngot  %q\nwant %q", got, want)
	}
}

func TestReadyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "root/usr/lib/modules/7.3.4+deb13-amd64")
	writeFile(t, filepath.Join(mods, "vmlinuz"), "x")
	k := &Kernel{Suite: "trixie-backports", Arch: "amd64", Version: "7.3.4+deb13-amd64",
		Package: "linux-binary-7.3.4+deb13-amd64=7.3.4-1~bpo13+1", Vmlinuz: filepath.Join(mods, "vmlinuz"), Modules: mods, Dir: dir}
	if err := writeReady(k, true, true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ready"))
	if !strings.HasPrefix(string(b), "version=7.3.4+deb13-amd64\n") || strings.Contains(string(b), dir) {
		t.Errorf("ready marker (shell-readable, relative paths): %q", b)
	}
	// No modules.dep yet: the kernel is there, its modules are not.
	got, haveMods, split, err := readReady(dir, "trixie-backports", "amd64")
	if err != nil || haveMods || !split || got.Vmlinuz != k.Vmlinuz || got.Version != k.Version || got.Package != k.Package {
		t.Fatalf("readReady = %+v, %v, %v", got, haveMods, err)
	}
	writeFile(t, filepath.Join(mods, "modules.dep"), "")
	if got, haveMods, _, err = readReady(dir, "trixie-backports", "amd64"); err != nil || !haveMods || got.Modules != mods {
		t.Fatalf("with modules.dep: %+v, %v, %v", got, haveMods, err)
	}
	// An interrupted fetch leaves no marker, or one whose image is gone.
	if err := writeReady(k, false, false); err != nil {
		t.Fatal(err)
	}
	if _, haveMods, split, err := readReady(dir, "trixie-backports", "amd64"); err != nil || haveMods || split {
		t.Errorf("classic, modules not asked: %v %v %v", haveMods, split, err)
	}
	os.Remove(k.Vmlinuz)
	if _, _, _, err := readReady(dir, "trixie-backports", "amd64"); err == nil {
		t.Errorf("a marker whose vmlinuz is gone was accepted")
	}
}

func TestFetchRejectsBadArguments(t *testing.T) {
	for _, c := range [][2]string{{"trixie", "i386"}, {"", "amd64"}, {"../x", "amd64"}} {
		if _, err := Fetch(t.TempDir(), c[0], c[1], false); err == nil {
			t.Errorf("Fetch(%q, %q) accepted", c[0], c[1])
		}
	}
}

func TestSuitesOldestFirst(t *testing.T) {
	if Suites[0] != "bullseye" || Suites[len(Suites)-1] != "experimental" || len(Suites) != 7 {
		t.Errorf("Suites = %q", Suites)
	}
}
