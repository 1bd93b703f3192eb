package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"trace_tcpretrans/vm/debian"
)

func TestParseStatus(t *testing.T) {
	for line, want := range map[string]int{"VMRUNNER-EXIT-STATUS=3": 3, "\x1b[0mVMRUNNER-EXIT-STATUS=0\r": 0} {
		got, ok := parseStatus(strings.TrimRight(line, "\r"))
		if !ok || got != want {
			t.Errorf("parseStatus(%q) = %d, %v; want %d", line, got, ok, want)
		}
	}
	if _, ok := parseStatus("echo \"VMRUNNER-EXIT-STATUS=$?\""); ok {
		t.Errorf("the script's own text is not a status")
	}
}

func TestScanConsoleStatusAndLockup(t *testing.T) {
	var out bytes.Buffer
	st, err := scanConsole(strings.NewReader("hello\nVMRUNNER-EXIT-STATUS=7\n"), &out, false, func() {})
	if err != nil || st != 7 || out.String() != "hello\n" {
		t.Fatalf("got %d %v %q", st, err, out.String())
	}
	stopped := false
	_, err = scanConsole(strings.NewReader("[ 12.3] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [ig:300]\nmore\n"), &out, false, func() { stopped = true })
	if !errors.Is(err, errLockup) || !stopped {
		t.Fatalf("lockup not detected: %v %v", err, stopped)
	}
	stopped = false
	oops := "[  143.320307] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\nmore\n"
	_, err = scanConsole(strings.NewReader(oops), &out, true, func() { stopped = true })
	if !errors.Is(err, errOops) || !stopped || !isTCGFault(err) {
		t.Fatalf("Oops under multi-threaded TCG not detected: %v %v", err, stopped)
	}
	stopped = false
	if _, err = scanConsole(strings.NewReader(oops), &out, false, func() { stopped = true }); err != nil || stopped {
		t.Fatalf("an Oops of a single-threaded guest is the kernel's, not the emulation's: %v %v", err, stopped)
	}
	if !isTCGFault(errSilentStop) {
		t.Fatalf("a silent stop under multi-threaded TCG is not booted again")
	}
	if isTCGFault(errors.New("guest stopped without the command's status")) {
		t.Fatalf("another failure taken for a fault of the emulation")
	}
}

func TestScanConsolePanic(t *testing.T) {
	var out bytes.Buffer
	panicLine := "[  314.347811] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00007e00\n"
	_, err := scanConsole(strings.NewReader("PASS\n"+panicLine+"[  314.361634] Rebooting in 10 seconds..\n"), &out, true, func() {})
	if !errors.Is(err, errPanic) || isTCGFault(err) || !strings.Contains(err.Error(), "Attempted to kill init") {
		t.Fatalf("a panic before the status: got %v", err)
	}
	st, err := scanConsole(strings.NewReader("PASS\nVMRUNNER-EXIT-STATUS=0\n"+panicLine), &out, true, func() {})
	if err != nil || st != 0 {
		t.Fatalf("a panic after the status is the power-off's business: got %d %v", st, err)
	}
	// The status through the kernel's log, and a tty line split by it.
	st, err = scanConsole(strings.NewReader("VMRUNNER-EXIT-[  9.1] sysrq: Power Off\nSTATUS=3\n[    9.2] VMRUNNER-EXIT-STATUS=3\n"), &out, true, func() {})
	if err != nil || st != 3 {
		t.Fatalf("the status from the kernel's log: got %d %v", st, err)
	}
}

func TestModuleOrder(t *testing.T) {
	dep := `kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet.ko.xz:
kernel/fs/netfs/netfs.ko.xz:
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio_ring.ko.xz:
`
	got := moduleOrder(dep, []string{"9pnet_virtio", "9p", "fscache"})
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko.xz", "kernel/net/9p/9pnet.ko.xz", "kernel/net/9p/9pnet_virtio.ko.xz",
		"kernel/fs/netfs/netfs.ko.xz", "kernel/fs/9p/9p.ko.xz",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestKernels(t *testing.T) {
	if got := strings.Join(kernelNames(), " "); got != "5.10 6.1 6.12 7.3" {
		t.Errorf("kernelNames() = %q, want oldest first", got)
	}
	if k := kernels["7.3"]; k.suite != "trixie-backports" {
		t.Errorf("7.3 comes from %q, want trixie-backports", k.suite)
	}
	a, b := initrdName("6.1.0-41-amd64"), initrdName("6.1.0-42-amd64")
	if a == b || !strings.HasPrefix(a, "initrd-6.1.0-41-amd64-") {
		t.Errorf("initrd names %q, %q: want one per kernel version", a, b)
	}
}

// The one-line format, as /etc/apt/sources.list holds it.
const sourcesList = `# deb http://old.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian/ bookworm main contrib # comment
deb [ trusted=yes ] http://other.example/debian bookworm-updates main
deb http://security.example/debian-security bookworm-security main
`

func TestParseSourcesList(t *testing.T) {
	got := debian.ParseSourcesList("sources.list", sourcesList)
	if len(got) != 4 {
		t.Fatalf("got %d entries, want 4 (comments skipped): %+v", len(got), got)
	}
	want := debian.Source{
		File: "sources.list", Types: []string{"deb"}, URIs: []string{"http://mirror.example/debian/"},
		Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}, Enabled: true,
	}
	if !reflect.DeepEqual(got[1], want) {
		t.Errorf("options in brackets:\ngot  %+v\nwant %+v", got[1], want)
	}
	if got[2].URIs[0] != "http://other.example/debian" || got[2].Suites[0] != "bookworm-updates" {
		t.Errorf("spaced options: %+v", got[2])
	}
	m, ok := debian.PickMirror(got)
	if !ok || m != "http://mirror.example/debian" {
		t.Errorf("PickMirror = %q, %v; want the release's deb line, without the trailing slash", m, ok)
	}
}

// A deb822 file like this machine's /etc/apt/sources.list.d/debian.sources,
// with a disabled entry and a continuation line.
const debianSources = `Types: deb
URIs: http://disabled.example/debian
Suites: trixie
Components: main
Enabled: no

# a comment
types: deb deb-src
uris: http://sec.example/debian-security
suites: bookworm-security
components: main

Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm
 bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

func TestParseDeb822(t *testing.T) {
	got := debian.ParseSources("debian.sources", debianSources)
	if len(got) != 3 {
		t.Fatalf("got %d paragraphs, want 3: %+v", len(got), got)
	}
	if got[0].Enabled || !got[1].Enabled || !got[2].Enabled {
		t.Errorf("Enabled: %v %v %v, want false true true", got[0].Enabled, got[1].Enabled, got[2].Enabled)
	}
	if !reflect.DeepEqual(got[1].Types, []string{"deb", "deb-src"}) {
		t.Errorf("lower-case field names: %+v", got[1])
	}
	if !reflect.DeepEqual(got[2].Suites, []string{"bookworm", "bookworm-updates"}) {
		t.Errorf("continuation line: suites %q", got[2].Suites)
	}
	if m, ok := debian.PickMirror(got); !ok || m != "http://mirror.example/debian" {
		t.Errorf("PickMirror = %q, %v; want the enabled, non-security archive", m, ok)
	}
}

func TestPickMirrorRejects(t *testing.T) {
	for name, text := range map[string]string{
		"only security":  "deb http://m.example/debian-security bookworm-security main\ndeb http://m.example/debian bullseye/updates main\n",
		"security suite": "deb http://sec.example/ bookworm-security main\n",
		"not Debian":     "deb https://packages.example/apt cloud-sdk-bookworm main\ndeb https://deb.example/node_20.x nodistro main\n",
		"no main":        "deb http://m.example/debian bookworm contrib non-free\n",
		"only sources":   "deb-src http://m.example/debian bookworm main\n",
		"commented only": "#deb http://m.example/debian bookworm main\n",
	} {
		if m, ok := debian.PickMirror(debian.ParseSourcesList("x.list", text)); ok {
			t.Errorf("%s: PickMirror = %q, want none", name, m)
		}
	}
	// A -updates line alone still names the archive.
	m, ok := debian.PickMirror(debian.ParseSourcesList("x.list", "deb http://m.example/debian trixie-updates main\n"))
	if !ok || m != "http://m.example/debian" {
		t.Errorf("-updates only: %q %v", m, ok)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"7.3.4+deb13", "7.2.12+deb13", 1},
		{"6.1.0-50", "6.1.0-9", 1},
		{"6.12.9+deb13", "6.12.117+deb13", -1},
		{"7.3~rc7-1~exp1", "7.3-1", -1},
		{"7.3.4-1~bpo13+1", "7.3.4-1", -1},
		{"1:5.0", "6.1", 1},
		{"6.1.0-50", "6.1.0-50", 0},
	} {
		if got := debian.CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := debian.CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestPickVersion(t *testing.T) {
	// apt-cache pkgnames linux-image- of a suite with several kernels and
	// flavours (as trixie-backports, amd64).
	names := strings.Join([]string{
		"linux-image-amd64", "linux-image-cloud-amd64", "linux-image-7.2.12+deb13-amd64",
		"linux-image-7.3.4+deb13-cloud-amd64", "linux-image-7.3.4+deb13-rt-amd64", "linux-image-7.3.4+deb13-amd64-dbg",
		"linux-image-7.3.4+deb13-amd64", "linux-image-7.10.1+deb13-arm64", "linux-image-7.3.10+deb13-amd64-unsigned",
	}, "\n")
	for _, c := range []struct{ name, meta, names, want string }{
		{"metapackage wins", "linux-base-amd64, linux-image-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)", names, "7.3.4+deb13-amd64"},
		{"classic metapackage", "linux-image-6.1.0-50-amd64", "", "6.1.0-50-amd64"},
		{"rc in experimental", "linux-base-amd64, linux-image-7.3-amd64", "", "7.3-amd64"},
		{"no metapackage: newest, default flavour, this arch", "", names, "7.3.10+deb13-amd64"},
		{"metapackage naming another flavour only", "linux-image-7.3.4+deb13-cloud-amd64", "linux-image-6.1.0-9-amd64\nlinux-image-6.1.0-10-amd64", "6.1.0-10-amd64"},
	} {
		got, err := debian.PickVersion("amd64", c.meta, c.names)
		if err != nil || got != c.want {
			t.Errorf("%s: PickVersion = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if v, err := debian.PickVersion("arm64", "", "linux-image-amd64\nlinux-image-6.1.0-50-amd64"); err == nil {
		t.Errorf("no arm64 kernel: got %q, want an error", v)
	}
}

func TestMigrateCache(t *testing.T) {
	cache := t.TempDir()
	old := filepath.Join(cache, "bookworm")
	if err := os.MkdirAll(filepath.Join(old, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(old, "ready"), []byte("6.1.0-41-amd64\n"), 0o644)
	kept := filepath.Join(cache, "trixie-backports-amd64")
	os.MkdirAll(kept, 0o755)
	os.WriteFile(filepath.Join(kept, "ready"), []byte("version=7.3.4+deb13-amd64\n"), 0o644)
	migrateCache(cache, "bookworm")
	migrateCache(cache, "trixie")
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the old layout's %s is still there: %v", old, err)
	}
	if _, err := os.Stat(filepath.Join(kept, "ready")); err != nil {
		t.Errorf("the new layout was touched: %v", err)
	}
}

func TestHeadersUnknownKernel(t *testing.T) {
	if _, err := headers(options{kernel: "4.19", cache: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "6.1") {
		t.Errorf("headers for an unknown -kernel: %v", err)
	}
}
