package debian

import (
	"fmt"
	"regexp"
	"strings"
)

// CompareVersions orders two version strings as dpkg does (runs of digits
// compare as numbers, '~' sorts before everything, letters before other
// characters). It returns -1, 0 or 1. An epoch ("1:") is honoured.
func CompareVersions(a, b string) int {
	ea, ra := splitEpoch(a)
	eb, rb := splitEpoch(b)
	if c := verrevcmp(ea, eb); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

func splitEpoch(v string) (string, string) {
	if e, rest, ok := strings.Cut(v, ":"); ok && e != "" && strings.Trim(e, "0123456789") == "" {
		return e, rest
	}
	return "0", v
}

func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return int(c)
	default:
		return int(c) + 256
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		// The non-digit prefixes, character by character.
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			oa, ob := 0, 0
			if i < len(a) {
				oa = order(a[i])
			}
			if j < len(b) {
				ob = order(b[j])
			}
			if oa != ob {
				return sign(oa - ob)
			}
			i++
			j++
		}
		// The digit runs, as numbers.
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		first := 0
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if first != 0 {
			return sign(first)
		}
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// imageName matches the package of a kernel image of the default flavour:
// linux-image-<version>-<arch>[-unsigned], where <version> is what uname -r
// shows without the architecture ("6.1.0-41", "6.12.48+deb13", "7.3");
// flavours (cloud, rt, 16k) and -dbg packages do not match.
func imageName(arch string) *regexp.Regexp {
	return regexp.MustCompile(`^linux-image-(\d+\.\d+[^-\s]*(?:-\d+)?)-` + regexp.QuoteMeta(arch) + `(?:-unsigned)?$`)
}

// PickVersion chooses the kernel to fetch for arch, as uname -r names it
// ("7.3.4+deb13-amd64"): the linux-image-<ver>-<arch> that metaDepends (the
// Depends field of the linux-image-<arch> metapackage, "" where the suite has
// none) names, else the newest of the linux-image-<ver>-<arch> packages in
// pkgnames (apt-cache pkgnames output, one name a line).
func PickVersion(arch, metaDepends, pkgnames string) (string, error) {
	re := imageName(arch)
	for _, dep := range strings.Split(metaDepends, ",") {
		for _, alt := range strings.Split(dep, "|") {
			name, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
			name, _, _ = strings.Cut(name, ":") // an architecture qualifier
			if m := re.FindStringSubmatch(name); m != nil {
				return m[1] + "-" + arch, nil
			}
		}
	}
	best := ""
	for _, name := range strings.Fields(pkgnames) {
		if m := re.FindStringSubmatch(name); m != nil && (best == "" || CompareVersions(m[1], best) > 0) {
			best = m[1]
		}
	}
	if best == "" {
		return "", fmt.Errorf("no linux-image-<version>-%s package", arch)
	}
	return best + "-" + arch, nil
}

// control parses one paragraph of apt-cache show output into its fields
// (names lower-cased, continuation lines joined).
func control(text string) map[string]string {
	f := map[string]string{}
	last := ""
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			if len(f) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				f[last] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(k)
		f[last] = strings.TrimSpace(v)
	}
	return f
}

// depends turns a Depends field into package name -> exact version ("" if
// the relation is not "="); alternatives are all listed.
func depends(field string) map[string]string {
	out := map[string]string{}
	for _, dep := range strings.Split(field, ",") {
		for _, alt := range strings.Split(dep, "|") {
			alt = strings.TrimSpace(alt)
			name, rel, _ := strings.Cut(alt, " ")
			name, _, _ = strings.Cut(name, ":")
			if name == "" {
				continue
			}
			ver := ""
			rel = strings.Trim(strings.TrimSpace(rel), "()")
			if v, ok := strings.CutPrefix(rel, "= "); ok {
				ver = strings.TrimSpace(v)
			}
			out[name] = ver
		}
	}
	return out
}
