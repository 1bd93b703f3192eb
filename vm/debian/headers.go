package debian

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Headers returns the directory holding the kernel headers of k (a kernel
// Fetch returned) as one tree, for tools that take one kernel source
// directory (BCC_KERNEL_SOURCE): Debian's linux-headers-<base>-common (the
// kernel's include/, arch/*/include/, Makefile) with
// linux-headers-<Version> (include/generated/, arch/*/include/generated/,
// .config, Module.symvers; vmlinux on 7.x) on top.
//
// The packages are those of the kernel's Debian version, downloaded with
// the suite's private apt state and unpacked with dpkg -x the first time,
// into k.Dir/headers/<Version> (renamed into place once complete, so that an
// interrupted download is redone); afterwards the directory is returned
// without network access. Headers of other versions are removed.
func Headers(k *Kernel) (string, error) {
	if k == nil || k.Dir == "" || k.Version == "" || strings.ContainsAny(k.Version, "/ ") {
		return "", errors.New("debian.Headers: no kernel (use the result of Fetch)")
	}
	unlock, err := lock(k.Dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()

	base := filepath.Join(k.Dir, "headers")
	dest := filepath.Join(base, k.Version)
	if headersComplete(dest) {
		return dest, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	// Leftovers: other versions, earlier attempts.
	old, _ := os.ReadDir(base)
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(base, e.Name())); err != nil {
			return "", err
		}
	}

	a, err := newApt(k.Dir, k.Suite, k.Arch)
	if err != nil {
		return "", err
	}
	// The lists may be older than the kernel's pool files last served.
	if err := a.update(); err != nil {
		return "", err
	}
	pkgs, err := a.headerPackages(k)
	if err != nil {
		return "", fmt.Errorf("debian %s (%s): %w", k.Suite, k.Arch, err)
	}
	stage := filepath.Join(base, "."+k.Version+".tmp")
	root := filepath.Join(stage, "root")
	if err := a.downloadAndUnpack(pkgs, root); err != nil {
		return "", err
	}
	// pkgs are the flavour's package, then -common.
	flavour, _, _ := strings.Cut(pkgs[0], "=")
	common, _, _ := strings.Cut(pkgs[1], "=")
	merged := filepath.Join(stage, "merged")
	if err := os.Rename(filepath.Join(root, "usr/src", common), merged); err != nil {
		return "", fmt.Errorf("%s: %w", common, err)
	}
	if err := MergeTree(filepath.Join(root, "usr/src", flavour), merged); err != nil {
		return "", fmt.Errorf("merging %s into %s: %w", flavour, common, err)
	}
	if !headersComplete(merged) {
		return "", fmt.Errorf("%s and %s unpacked no include/linux/ or include/generated/ (in %s)", flavour, common, merged)
	}
	if err := os.Rename(merged, dest); err != nil {
		return "", err
	}
	if err := os.RemoveAll(stage); err != nil {
		return "", err
	}
	return dest, nil
}

// headersComplete tells whether dir holds merged headers: the kernel's
// include/linux/ and the flavour's include/generated/.
func headersComplete(dir string) bool {
	for _, p := range []string{"include/linux/tcp.h", "include/generated/autoconf.h", ".config"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}

// headerPackages returns, as name=version, linux-headers-<Version> and the
// -common package it depends on, of the kernel's Debian version where the
// index still holds it (else the index's candidate of the same ABI, noted).
func (a *apt) headerPackages(k *Kernel) ([]string, error) {
	name := "linux-headers-" + k.Version
	var show map[string]string
	var err error
	if v := debianVersion(k.Package); v != "" {
		show, err = a.show(name + "=" + v)
		if err != nil {
			show = nil
			logf("note: Debian %s no longer serves %s %s, the version of the kernel in %s; using its newest %s", a.suite, name, v, k.Dir, name)
		}
	}
	if show == nil {
		if show, err = a.show(name); err != nil {
			return nil, err
		}
	}
	pkgs, err := HeaderPackages(k.Version, k.Arch, show["package"], show["version"], show["depends"])
	if err != nil {
		return nil, err
	}
	// -common without an exact version in Depends: the index's candidate.
	if strings.HasSuffix(pkgs[1], "=") {
		f, err := a.show(strings.TrimSuffix(pkgs[1], "="))
		if err != nil {
			return nil, err
		}
		pkgs[1] += f["version"]
	}
	return pkgs, nil
}

// commonName matches the package of the architecture-independent headers,
// linux-headers-<abi>-common (not -common-rt, the realtime flavour's).
var commonName = regexp.MustCompile(`^linux-headers-.+-common$`)

// HeaderPackages chooses what to download for the headers of kernel version
// (uname -r, e.g. "6.1.0-41-amd64", "7.3.4+deb13-amd64"), from the index's
// entry for linux-headers-<version>: its package name, Debian version and
// Depends field. It returns the flavour's package and the -common one, as
// name=version; the -common one ends in "=" when Depends gives it no exact
// version. Debian packages them alike in the classic (≤ 6.x) and the split
// (7.x) packaging: linux-headers-<version> depends on
// linux-headers-<abi>-common of the same version.
func HeaderPackages(version, arch, pkg, debVersion, dependsField string) ([]string, error) {
	want := "linux-headers-" + version
	if pkg != want || debVersion == "" {
		return nil, fmt.Errorf("no %s in the index (got %q version %q)", want, pkg, debVersion)
	}
	deps := depends(dependsField)
	var commons []string
	for name := range deps {
		if commonName.MatchString(name) {
			commons = append(commons, name)
		}
	}
	sort.Strings(commons)
	common := ""
	switch {
	case len(commons) == 1:
		common = commons[0]
	case len(commons) == 0:
		// Not named: Debian's naming, <abi>-common.
		common = "linux-headers-" + strings.TrimSuffix(version, "-"+arch) + "-common"
	default:
		return nil, fmt.Errorf("%s depends on several -common packages: %s", want, strings.Join(commons, ", "))
	}
	return []string{want + "=" + debVersion, common + "=" + deps[common]}, nil
}

// MergeTree moves the entries of src onto dst, src's winning: directories
// are merged, files and symbolic links (kept as they are) replace what dst
// has at the same path. src is consumed.
func MergeTree(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", src)
	}
	if dt, err := os.Lstat(dst); err == nil && !dt.IsDir() {
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dst, st.Mode().Perm()); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if e.IsDir() {
			if err := MergeTree(s, d); err != nil {
				return err
			}
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.Rename(s, d); err != nil {
			return err
		}
	}
	return os.Remove(src)
}
