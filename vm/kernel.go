package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"trace_tcpretrans/vm/debian"
)

type kernel struct {
	name  string // what users pass to -kernel
	suite string // Debian suite that ships it
}

// kernels are fetched for amd64 from the suite's newest kernel; "7.3" is
// the newest Debian ships (trixie-backports).
var kernels = map[string]kernel{
	"5.10": {"5.10", "bullseye"},
	"6.1":  {"6.1", "bookworm"},
	"6.12": {"6.12", "trixie"},
	"7.3":  {"7.3", "trixie-backports"},
}

func kernelNames() []string {
	var n []string
	for k := range kernels {
		n = append(n, k)
	}
	sort.Slice(n, func(i, j int) bool { return debian.CompareVersions(n[i], n[j]) < 0 })
	return n
}

// kernelImage is a prepared kernel: its image, module tree and initramfs.
type kernelImage struct {
	version string
	vmlinuz string
	modules string
	initrd  string
}

// initrdModules are loaded by the initramfs, in this order after their
// dependencies; some are built in or absent on some kernels (virtio is
// built in from 6.12, fscache on 7.x, netfs absent on 5.10).
var initrdModules = []string{
	"virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay",
}

// prepareKernel fetches the kernel (once, see package debian) and builds its
// initramfs next to it (once per kernel version and init recipe).
func prepareKernel(cache string, k kernel) (*kernelImage, error) {
	migrateCache(cache, k.suite)
	debian.Logf = logf
	dk, err := debian.Fetch(cache, k.suite, "amd64", true)
	if err != nil {
		return nil, err
	}
	if v := strings.TrimSuffix(dk.Version, "-amd64"); v != k.name && !strings.HasPrefix(v, k.name+".") && !strings.HasPrefix(v, k.name+"-") {
		logf("note: Debian %s now serves Linux %s for -kernel %s", k.suite, dk.Version, k.name)
	}
	img := &kernelImage{
		version: dk.Version,
		vmlinuz: dk.Vmlinuz,
		modules: dk.Modules,
		// Named after the kernel and the recipe, so that a changed init
		// or a newer kernel gets its own.
		initrd: filepath.Join(dk.Dir, initrdName(dk.Version)),
	}
	if _, err := os.Stat(img.initrd); err != nil {
		logf("building initramfs for %s", img.version)
		if err := buildInitrd(img); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// headers returns the directory of the merged headers of the kernel that
// "vm -kernel o.kernel" boots: the kernel is that of the cache (fetched
// without its modules if not there yet, as booting would fetch it), the
// headers are those of its version (see debian.Headers).
func headers(o options) (string, error) {
	k, ok := kernels[o.kernel]
	if !ok {
		return "", fmt.Errorf("unknown -kernel %q: use one of %s", o.kernel, strings.Join(kernelNames(), ", "))
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not found: run 'make deps'", tool)
		}
	}
	migrateCache(o.cache, k.suite)
	debian.Logf = logf
	dk, err := debian.Fetch(o.cache, k.suite, "amd64", false)
	if err != nil {
		return "", err
	}
	return debian.Headers(dk)
}

// migrateCache removes what vm kept for suite before package debian did the
// fetching (cache/<suite>/, amd64 only; now cache/<suite>-amd64/).
func migrateCache(cache, suite string) {
	old := filepath.Join(cache, suite)
	if _, err := os.Stat(filepath.Join(old, "ready")); err != nil {
		if _, err := os.Stat(filepath.Join(old, "sources.list")); err != nil {
			return
		}
	}
	logf("removing %s (the old cache layout; kernels are now under %s-amd64)", old, old)
	if err := os.RemoveAll(old); err != nil {
		logf("%v", err)
	}
}

func initrdName(version string) string {
	sum := sha256.Sum256([]byte(initScript + strings.Join(initrdModules, " ")))
	return fmt.Sprintf("initrd-%s-%x.gz", version, sum[:6])
}

func runCmd(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// moduleOrder resolves the wanted modules and their dependencies from a
// modules.dep file, dependencies first; absent modules are skipped.
func moduleOrder(modulesDep string, wanted []string) []string {
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(modulesDep, "\n") {
		path, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		byName[moduleName(path)] = path
		deps[path] = strings.Fields(rest)
	}
	var order []string
	seen := map[string]bool{}
	var visit func(p string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		// modules.dep lists the whole closure, the deepest dependency last.
		d := deps[p]
		for i := len(d) - 1; i >= 0; i-- {
			visit(d[i])
		}
		order = append(order, p)
	}
	for _, w := range wanted {
		if p, ok := byName[w]; ok {
			visit(p)
		}
	}
	return order
}

// moduleName turns kernel/fs/9p/9p.ko.xz into 9p (dashes as underscores).
func moduleName(path string) string {
	base := filepath.Base(path)
	base, _, _ = strings.Cut(base, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

// The host's root and modules are mounted with cache=loose: without a page
// cache every exec of a host binary reads it again through 9p (ig, 112 MB,
// took 9-17 s to print its version in the 6.1 guest, 2 s with the cache),
// and nothing the guest reads from them changes while it runs.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /mnt/lower /mnt/upper /mnt/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
fail() { echo "vm-init: $*"; echo o > /proc/sysrq-trigger; sleep 5; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /mnt/lower || fail "mounting the host root"
mount -t tmpfs tmpfs /mnt/upper
mkdir -p /mnt/upper/u /mnt/upper/w
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/upper/u,workdir=/mnt/upper/w /mnt/root || fail "mounting the overlay"
KVER=$(uname -r)
mkdir -p /mnt/root/lib/modules/$KVER /mnt/root/vmrun
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 modules /mnt/root/lib/modules/$KVER
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 vmrun /mnt/root/vmrun || fail "mounting the run share"
mount -o move /proc /mnt/root/proc
mount -o move /sys /mnt/root/sys
mount -o move /dev /mnt/root/dev
# switch_root, not chroot: the kernel's usermode helpers (modprobe for
# module autoloading) run in the root of PID 1.
exec switch_root /mnt/root /bin/sh /vmrun/stage2.sh
`

// buildInitrd writes a gzip'd cpio with busybox, the init script and the
// modules needed to mount 9p and overlay, uncompressed for busybox insmod.
func buildInitrd(img *kernelImage) error {
	work, err := os.MkdirTemp(filepath.Dir(img.initrd), "initrd-build.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, d := range []string{"bin", "modules"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return err
		}
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return err
	}
	if err := runCmd("", "cp", bb, filepath.Join(work, "bin/busybox")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "init"), []byte(initScript), 0o755); err != nil {
		return err
	}
	dep, err := os.ReadFile(filepath.Join(img.modules, "modules.dep"))
	if err != nil {
		return err
	}
	for i, rel := range moduleOrder(string(dep), initrdModules) {
		dst := filepath.Join(work, "modules", fmt.Sprintf("%02d-%s.ko", i, moduleName(rel)))
		if err := decompress(filepath.Join(img.modules, rel), dst); err != nil {
			return err
		}
	}
	tmp := fmt.Sprintf("%s.%d.tmp", img.initrd, os.Getpid())
	script := fmt.Sprintf("cd %q && find . | cpio -o -H newc --quiet | gzip -1 > %q", work, tmp)
	if err := runCmd("", "sh", "-c", script); err != nil {
		return err
	}
	return os.Rename(tmp, img.initrd)
}

func decompress(src, dst string) error {
	var tool string
	switch {
	case strings.HasSuffix(src, ".xz"):
		tool = "xz"
	case strings.HasSuffix(src, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(src, ".gz"):
		tool = "gzip"
	default:
		return runCmd("", "cp", src, dst)
	}
	if _, err := exec.LookPath(tool); err != nil {
		return errors.New(tool + " is needed to unpack kernel modules: run 'make deps'")
	}
	return runCmd("", "sh", "-c", fmt.Sprintf("%s -dc %q > %q", tool, src, dst))
}
