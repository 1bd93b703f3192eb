package debian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Suites lists the suites the project knows, oldest first: bullseye, bookworm, bookworm-backports (if it
// serves a kernel), trixie, trixie-backports, sid, experimental (include only those that really serve a kernel).
//
// As seen on 2026-11-30, for amd64 and arm64 alike: bullseye 5.10.0-32,
// bookworm 6.1.0-50, bookworm-backports 6.12.95+deb12, trixie 6.12.117+deb13,
// trixie-backports 7.3.4+deb13, sid 7.2.13+deb14, experimental 7.3 (7.3~rc7).
var Suites = []string{"bullseye", "bookworm", "bookworm-backports", "trixie", "trixie-backports", "sid", "experimental"}

// Kernel is an unpacked Debian kernel.
type Kernel struct {
	Suite   string // e.g. "trixie-backports"
	Arch    string // "amd64" or "arm64"
	Version string // uname -r, e.g. "7.3.4+deb13-amd64" or "6.1.0-41-amd64"
	Package string // package name(s) and Debian version downloaded
	Vmlinuz string // path of the vmlinuz file
	Modules string // path of lib/modules/<Version> (with modules.dep, depmod run) or "" if not asked
	Config  string // path of the kernel's config file, "" if the packages hold none
	Dir     string // cache/<suite>-<arch>, where it is unpacked
}

// Keyring verifies the suites' Release files.
var Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Logf reports progress (downloads); nil for silence.
var Logf = func(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "debian: "+format+"\n", args...)
}

func logf(format string, args ...any) {
	if Logf != nil {
		Logf(format, args...)
	}
}

// Time limits of one apt command; apt itself retries a failed download
// (Acquire::Retries) a few times, and nothing here loops.
const (
	updateTimeout   = 10 * time.Minute
	downloadTimeout = 30 * time.Minute
	queryTimeout    = 2 * time.Minute
)

// Fetch returns the newest kernel Debian's suite serves for arch, downloading and unpacking it under
// cache/<suite>-<arch>/ the first time and reusing it afterwards (a "ready" marker written last, so an
// interrupted download is redone). withModules=false may skip downloading the modules package where the
// packaging allows (7.x splits them), to save bandwidth.
//
// Concurrent calls for the same suite and arch (in one process or several)
// are serialized with a lock file next to the directory.
func Fetch(cache, suite, arch string, withModules bool) (*Kernel, error) {
	if suite == "" || strings.ContainsAny(suite, "/ ") || (arch != "amd64" && arch != "arm64") {
		return nil, fmt.Errorf("debian.Fetch: bad suite %q or arch %q (amd64, arm64)", suite, arch)
	}
	dir := filepath.Join(cache, suite+"-"+arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()

	k, haveModules, split, err := readReady(dir, suite, arch)
	if err == nil && (haveModules || !withModules) {
		if !withModules {
			k.Modules = ""
		}
		return k, nil
	}
	if err == nil {
		// Unpacked without modules.dep: the classic package has the
		// modules already; for the split one (7.x) add them, same version.
		if !split {
			err = depmod(k)
			if err == nil {
				err = writeReady(k, true, false)
			}
		} else {
			err = addModules(dir, k)
		}
		if err == nil {
			return k, nil
		}
		logf("adding the modules of %s failed, fetching %s afresh: %v", k.Version, suite, err)
	}
	return fetchFresh(dir, suite, arch, withModules)
}

// fetchFresh downloads and unpacks the newest kernel into dir.
func fetchFresh(dir, suite, arch string, withModules bool) (*Kernel, error) {
	os.Remove(filepath.Join(dir, "ready"))
	for _, d := range []string{"root", "debs"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return nil, err
		}
	}
	apt, err := newApt(dir, suite, arch)
	if err != nil {
		return nil, err
	}
	if err := apt.update(); err != nil {
		return nil, err
	}
	meta, _ := apt.show("linux-image-" + arch) // absent in some suites
	names, err := apt.run(queryTimeout, "apt-cache", "pkgnames", "linux-image-")
	if err != nil {
		return nil, err
	}
	version, err := PickVersion(arch, meta["depends"], names)
	if err != nil {
		return nil, fmt.Errorf("debian %s (%s): %w", suite, arch, err)
	}
	pkgs, split, err := apt.packages(version, withModules)
	if err != nil {
		return nil, fmt.Errorf("debian %s (%s): %w", suite, arch, err)
	}
	k := &Kernel{Suite: suite, Arch: arch, Version: version, Package: strings.Join(pkgs, " "), Dir: dir}
	if err := apt.downloadAndUnpack(pkgs, filepath.Join(dir, "root")); err != nil {
		return nil, err
	}
	if err := locate(k); err != nil {
		return nil, err
	}
	// depmod takes about 10 s: only when the modules are asked for.
	if withModules {
		if err := depmod(k); err != nil {
			return nil, err
		}
	}
	if err := writeReady(k, withModules, split); err != nil {
		return nil, err
	}
	return k, nil
}

// addModules downloads the modules package of an unpacked split kernel.
func addModules(dir string, k *Kernel) error {
	apt, err := newApt(dir, k.Suite, k.Arch)
	if err != nil {
		return err
	}
	if err := apt.update(); err != nil {
		return err
	}
	// The modules package of the same Debian version as the image.
	pkg := "linux-modules-" + k.Version + "=" + debianVersion(k.Package)
	if err := apt.downloadAndUnpack([]string{pkg}, filepath.Join(dir, "root")); err != nil {
		return err
	}
	if err := depmod(k); err != nil {
		return err
	}
	k.Package += " " + pkg
	return writeReady(k, true, true)
}

// apt runs apt-get and apt-cache on a private state under dir/apt.
type apt struct {
	dir, suite, arch string
	opts             []string
}

func newApt(dir, suite, arch string) (*apt, error) {
	if _, err := os.Stat(Keyring); err != nil {
		return nil, fmt.Errorf("the Debian archive keyring %s is missing (apt-get install debian-archive-keyring)", Keyring)
	}
	mirror, err := Mirror()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "apt")
	for _, d := range []string{"lists/partial", "cache/archives/partial", "etc/preferences.d"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o755); err != nil {
			return nil, err
		}
	}
	src := filepath.Join(state, "sources.list")
	line := fmt.Sprintf("deb [signed-by=%s] %s %s main\n", Keyring, mirror, suite)
	if err := os.WriteFile(src, []byte(line), 0o644); err != nil {
		return nil, err
	}
	return &apt{dir: dir, suite: suite, arch: arch, opts: []string{
		"-o", "Dir::Etc::sourcelist=" + src,
		"-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::Etc::preferences=" + filepath.Join(state, "etc/preferences"),
		"-o", "Dir::Etc::preferencesparts=" + filepath.Join(state, "etc/preferences.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(state, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(state, "cache"),
		"-o", "Dir::State::status=/dev/null",
		"-o", "APT::Architecture=" + arch, "-o", "APT::Architectures=" + arch,
		"-o", "APT::Default-Release=",
		"-o", "APT::Sandbox::User=root",
		"-o", "Acquire::Retries=3",
		"-o", "Acquire::http::Timeout=60",
		"-o", "Acquire::Languages=none",
	}}, nil
}

func (a *apt) run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, append(append([]string{}, a.opts...), args...)...)
	cmd.Dir = filepath.Join(a.dir, "debs")
	if err := os.MkdirAll(cmd.Dir, 0o755); err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", timeout)
		}
		return "", fmt.Errorf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

func (a *apt) update() error {
	logf("updating the package lists of Debian %s (%s)", a.suite, a.arch)
	_, err := a.run(updateTimeout, "apt-get", "update", "-qq")
	return err
}

// show returns the fields of the candidate version of pkg.
func (a *apt) show(pkg string) (map[string]string, error) {
	out, err := a.run(queryTimeout, "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil {
		return nil, err
	}
	f := control(out)
	if f["package"] == "" {
		return nil, fmt.Errorf("no package %s", pkg)
	}
	return f, nil
}

// packages returns what to download for kernel version as name=version, and
// whether the packaging is split (7.x: linux-image-* depends on
// linux-binary-* and linux-modules-*, modules optional) or classic (one
// linux-image-*-unsigned, or failing that the signed linux-image-*, with the
// image and the modules).
func (a *apt) packages(version string, withModules bool) ([]string, bool, error) {
	img, err := a.show("linux-image-" + version)
	if err != nil {
		return nil, false, err
	}
	deps := depends(img["depends"])
	binary := "linux-binary-" + version
	if _, ok := deps[binary]; ok {
		want := []string{"linux-base-" + version, binary}
		if withModules {
			want = append(want, "linux-modules-"+version)
		}
		var pkgs []string
		for _, p := range want {
			v, ok := deps[p]
			if !ok && strings.HasPrefix(p, "linux-base-") {
				continue // config and System.map only
			}
			if v == "" {
				f, err := a.show(p)
				if err != nil {
					return nil, false, err
				}
				v = f["version"]
			}
			pkgs = append(pkgs, p+"="+v)
		}
		return pkgs, true, nil
	}
	if f, err := a.show("linux-image-" + version + "-unsigned"); err == nil {
		return []string{f["package"] + "=" + f["version"]}, false, nil
	}
	return []string{img["package"] + "=" + img["version"]}, false, nil
}

// debianVersion returns the Debian version of a kernel's packages from
// Kernel.Package ("name=version ..."; the last one named), "" if none.
func debianVersion(packages string) string {
	v := ""
	for _, p := range strings.Fields(packages) {
		if _, pv, ok := strings.Cut(p, "="); ok {
			v = pv
		}
	}
	return v
}

// downloadAndUnpack fetches pkgs (name=version) into dir/debs, unpacks them
// into root with dpkg -x and removes the .deb files.
func (a *apt) downloadAndUnpack(pkgs []string, root string) error {
	debs := filepath.Join(a.dir, "debs")
	// Leftovers of an interrupted call, perhaps of other versions.
	for _, p := range pkgs {
		name, _, _ := strings.Cut(p, "=")
		old, _ := filepath.Glob(filepath.Join(debs, name+"_*.deb"))
		for _, f := range old {
			os.Remove(f)
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	logf("downloading %s from Debian %s", strings.Join(pkgs, " "), a.suite)
	start := time.Now()
	if _, err := a.run(downloadTimeout, "apt-get", append([]string{"download", "-q"}, pkgs...)...); err != nil {
		return err
	}
	var size int64
	for _, p := range pkgs {
		name, _, _ := strings.Cut(p, "=")
		files, _ := filepath.Glob(filepath.Join(debs, name+"_*.deb"))
		if len(files) != 1 {
			return fmt.Errorf("%s: expected one %s_*.deb in %s, found %d", p, name, debs, len(files))
		}
		if st, err := os.Stat(files[0]); err == nil {
			size += st.Size()
		}
		if err := runCmd("dpkg", "-x", files[0], root); err != nil {
			return err
		}
		os.Remove(files[0])
	}
	logf("downloaded and unpacked %.1f MB in %s", float64(size)/1e6, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// locate fills in the paths of the unpacked kernel.
func locate(k *Kernel) error {
	root := filepath.Join(k.Dir, "root")
	k.Vmlinuz = ""
	for _, p := range []string{
		"boot/vmlinuz-" + k.Version,
		"usr/lib/modules/" + k.Version + "/vmlinuz",
		"lib/modules/" + k.Version + "/vmlinuz",
		"usr/boot/vmlinuz-" + k.Version,
	} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			k.Vmlinuz = filepath.Join(root, p)
			break
		}
	}
	if k.Vmlinuz == "" {
		return fmt.Errorf("no vmlinuz for %s in %s (%s)", k.Version, root, k.Package)
	}
	k.Config = ""
	for _, p := range []string{
		"boot/config-" + k.Version,
		"usr/lib/modules/" + k.Version + "/config",
		"lib/modules/" + k.Version + "/config",
	} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			k.Config = filepath.Join(root, p)
			break
		}
	}
	return nil
}

// depmod makes lib/modules/<version> (linked to usr/lib/modules where the
// package puts them there) with modules.dep, and sets k.Modules.
func depmod(k *Kernel) error {
	root := filepath.Join(k.Dir, "root")
	if _, err := os.Stat(filepath.Join(root, "lib/modules", k.Version)); err != nil {
		if _, err := os.Stat(filepath.Join(root, "usr/lib/modules", k.Version)); err != nil {
			return fmt.Errorf("no modules of %s in %s (%s)", k.Version, root, k.Package)
		}
		if err := os.MkdirAll(filepath.Join(root, "lib"), 0o755); err != nil {
			return err
		}
		// depmod -b looks under lib/modules.
		if err := os.Symlink("../usr/lib/modules", filepath.Join(root, "lib/modules")); err != nil && !os.IsExist(err) {
			return err
		}
	}
	if err := runCmd("depmod", "-b", root, k.Version); err != nil {
		return err
	}
	mods, err := filepath.EvalSymlinks(filepath.Join(root, "lib/modules", k.Version))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(mods, "modules.dep")); err != nil {
		return fmt.Errorf("depmod wrote no modules.dep for %s: %w", k.Version, err)
	}
	k.Modules = mods
	return nil
}

// The ready marker: key=value lines, paths relative to the directory, so
// that shell scripts can read it too (version=...).
func writeReady(k *Kernel, modules, split bool) error {
	rel := func(p string) string {
		if p == "" {
			return ""
		}
		r, err := filepath.Rel(k.Dir, p)
		if err != nil {
			return p
		}
		return r
	}
	mods := ""
	if modules {
		mods = rel(k.Modules)
	}
	packaging := "classic"
	if split {
		packaging = "split"
	}
	text := fmt.Sprintf("version=%s\npackage=%s\npackaging=%s\nvmlinuz=%s\nmodules=%s\nconfig=%s\n",
		k.Version, k.Package, packaging, rel(k.Vmlinuz), mods, rel(k.Config))
	tmp := filepath.Join(k.Dir, "ready.tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(k.Dir, "ready"))
}

// readReady returns the kernel a previous Fetch unpacked in dir, whether its
// modules are there (with modules.dep) and whether its packaging is split.
func readReady(dir, suite, arch string) (*Kernel, bool, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ready"))
	if err != nil {
		return nil, false, false, err
	}
	f := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if key, v, ok := strings.Cut(line, "="); ok {
			f[key] = v
		}
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	k := &Kernel{
		Suite: suite, Arch: arch, Version: f["version"], Package: f["package"],
		Vmlinuz: abs(f["vmlinuz"]), Modules: abs(f["modules"]), Config: abs(f["config"]), Dir: dir,
	}
	if k.Version == "" || k.Vmlinuz == "" {
		return nil, false, false, errors.New("incomplete ready marker")
	}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return nil, false, false, err
	}
	if k.Modules != "" {
		if _, err := os.Stat(filepath.Join(k.Modules, "modules.dep")); err != nil {
			k.Modules = ""
		}
	}
	split := f["packaging"] == "split" || (f["packaging"] == "" && strings.Contains(k.Package, "linux-binary-"))
	return k, k.Modules != "", split, nil
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func runCmd(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
