package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

type kernel struct {
	name  string // what users pass to -kernel
	suite string // Debian release that ships it
}

var kernels = map[string]kernel{
	"5.10": {"5.10", "bullseye"},
	"6.1":  {"6.1", "bookworm"},
	"6.12": {"6.12", "trixie"},
}

func kernelNames() []string {
	var n []string
	for k := range kernels {
		n = append(n, k)
	}
	sort.Strings(n)
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
// dependencies; some are built in or absent on some kernels.
var initrdModules = []string{
	"virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay",
}

func prepareKernel(cache string, k kernel) (*kernelImage, error) {
	dir := filepath.Join(cache, k.suite)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ready := filepath.Join(dir, "ready")
	if b, err := os.ReadFile(ready); err == nil {
		img, err := imageAt(dir, strings.TrimSpace(string(b)))
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(img.initrd); err != nil {
			logf("building initramfs for %s", img.version)
			if err := buildInitrd(img, filepath.Join(dir, "initrd-build")); err != nil {
				return nil, err
			}
		}
		return img, nil
	}

	apt, err := aptFor(dir, k.suite)
	if err != nil {
		return nil, err
	}
	out, err := apt("apt-cache", "depends", "linux-image-amd64")
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`Depends: linux-image-(\S+)-amd64\b`).FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no kernel found in %s's linux-image-amd64: %s", k.suite, out)
	}
	version := m[1] + "-amd64"
	pkg := "linux-image-" + version + "-unsigned"
	logf("downloading %s (%s)", pkg, k.suite)
	if _, err := apt("apt-get", "download", pkg); err != nil {
		return nil, err
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) == 0 {
		return nil, fmt.Errorf("%s was not downloaded", pkg)
	}
	root := filepath.Join(dir, "root")
	if err := runCmd("", "dpkg", "-x", debs[0], root); err != nil {
		return nil, err
	}
	// depmod -b looks under lib/modules; trixie ships usr/lib/modules.
	if _, err := os.Stat(filepath.Join(root, "lib/modules", version)); err != nil {
		if err := os.MkdirAll(filepath.Join(root, "lib"), 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink("../usr/lib/modules", filepath.Join(root, "lib/modules")); err != nil {
			return nil, err
		}
	}
	if err := runCmd("", "depmod", "-b", root, version); err != nil {
		return nil, err
	}
	img, err := imageAt(dir, version)
	if err != nil {
		return nil, err
	}
	logf("building initramfs for %s", version)
	if err := buildInitrd(img, filepath.Join(dir, "initrd-build")); err != nil {
		return nil, err
	}
	for _, d := range debs {
		os.Remove(d)
	}
	return img, os.WriteFile(ready, []byte(version+"\n"), 0o644)
}

func imageAt(dir, version string) (*kernelImage, error) {
	mods, err := filepath.EvalSymlinks(filepath.Join(dir, "root/lib/modules", version))
	if err != nil {
		return nil, err
	}
	return &kernelImage{
		version: version,
		vmlinuz: filepath.Join(dir, "root/boot/vmlinuz-"+version),
		modules: mods,
		// Named after its contents, so that a changed init is rebuilt.
		initrd: filepath.Join(dir, initrdName()),
	}, nil
}

func initrdName() string {
	sum := sha256.Sum256([]byte(initScript + strings.Join(initrdModules, " ")))
	return fmt.Sprintf("initrd-%x.gz", sum[:6])
}

// aptFor returns a runner of apt commands on a private state for suite, so
// that the system's apt configuration is left alone.
func aptFor(dir, suite string) (func(name string, args ...string) (string, error), error) {
	src := filepath.Join(dir, "sources.list")
	line := fmt.Sprintf("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n", suite)
	if err := os.WriteFile(src, []byte(line), 0o644); err != nil {
		return nil, err
	}
	for _, d := range []string{"lists/partial", "archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	opts := []string{
		"-o", "Dir::Etc::sourcelist=" + src, "-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache::archives=" + filepath.Join(dir, "archives"),
		"-o", "Dir::State::status=/dev/null", "-o", "APT::Sandbox::User=root",
	}
	run := func(name string, args ...string) (string, error) {
		cmd := exec.Command(name, append(append([]string{}, opts...), args...)...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
		return out.String(), nil
	}
	logf("updating Debian %s package lists", suite)
	if _, err := run("apt-get", "update", "-qq"); err != nil {
		return nil, err
	}
	return run, nil
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

const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /mnt/lower /mnt/upper /mnt/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
fail() { echo "vm-init: $*"; echo o > /proc/sysrq-trigger; sleep 5; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /mnt/lower || fail "mounting the host root"
mount -t tmpfs tmpfs /mnt/upper
mkdir -p /mnt/upper/u /mnt/upper/w
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/upper/u,workdir=/mnt/upper/w /mnt/root || fail "mounting the overlay"
KVER=$(uname -r)
mkdir -p /mnt/root/lib/modules/$KVER /mnt/root/vmrun
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 modules /mnt/root/lib/modules/$KVER
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
func buildInitrd(img *kernelImage, work string) error {
	os.RemoveAll(work)
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
	script := fmt.Sprintf("cd %q && find . | cpio -o -H newc --quiet | gzip -1 > %q", work, img.initrd)
	return runCmd("", "sh", "-c", script)
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
