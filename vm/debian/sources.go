// Package debian finds Debian's archive in this machine's apt configuration
// and fetches Debian kernel packages from it with a private apt state (the
// system's apt lists, cache and status are left alone).
package debian

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// AptDir is the apt configuration directory Mirror reads.
var AptDir = "/etc/apt"

// Source is one entry of apt's sources: a line of sources.list or a
// paragraph of a deb822 .sources file.
type Source struct {
	File       string
	Types      []string // deb, deb-src
	URIs       []string
	Suites     []string
	Components []string
	Enabled    bool
}

// Mirror returns the Debian archive base URI (e.g. "http://<host>/debian") read from this
// machine's apt configuration: /etc/apt/sources.list (one-line format) and /etc/apt/sources.list.d/*.list
// and *.sources (deb822: Types/URIs/Suites/Components). Picks the URI that serves the main archive
// (not -security, not disabled files). Error naming the files read if none found.
func Mirror() (string, error) {
	files := []string{filepath.Join(AptDir, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(AptDir, "sources.list.d", pat))
		sort.Strings(m)
		files = append(files, m...)
	}
	var read []string
	var all []Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		read = append(read, f)
		all = append(all, ParseSources(f, string(b))...)
	}
	if uri, ok := PickMirror(all); ok {
		return uri, nil
	}
	if len(read) == 0 {
		return "", fmt.Errorf("no apt sources found (looked for %s)", strings.Join(files, ", "))
	}
	return "", fmt.Errorf("no enabled Debian archive (deb, a Debian suite, main) in the apt sources read: %s", strings.Join(read, ", "))
}

// ParseSources parses the text of a sources file: deb822 if name ends in
// ".sources", one-line format otherwise.
func ParseSources(name, text string) []Source {
	if strings.HasSuffix(name, ".sources") {
		return ParseDeb822(name, text)
	}
	return ParseSourcesList(name, text)
}

// ParseSourcesList parses the one-line format:
//
//	deb [ option=value ... ] uri suite [component ...]
func ParseSourcesList(name, text string) []Source {
	var out []Source
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		typ := f[0]
		rest := f[1:]
		// Options: "[a=b c=d]" or "[ a=b ]", possibly split over fields.
		if strings.HasPrefix(rest[0], "[") {
			j := 0
			for j < len(rest) && !strings.HasSuffix(rest[j], "]") {
				j++
			}
			if j == len(rest) {
				continue
			}
			rest = rest[j+1:]
		}
		if len(rest) < 2 {
			continue
		}
		out = append(out, Source{
			File: name, Types: []string{typ}, URIs: []string{rest[0]},
			Suites: []string{rest[1]}, Components: rest[2:], Enabled: true,
		})
	}
	return out
}

// ParseDeb822 parses deb822 paragraphs (Types, URIs, Suites, Components,
// Enabled); field names are case-insensitive, continuation lines start with
// white space, and lines starting with '#' are comments.
func ParseDeb822(name, text string) []Source {
	var out []Source
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) > 0 {
			out = append(out, Source{
				File:       name,
				Types:      strings.Fields(fields["types"]),
				URIs:       strings.Fields(fields["uris"]),
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
				Enabled:    !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no"),
			})
		}
		fields = map[string]string{}
		last = ""
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

// debianSuites are the names whose archives are Debian's (a suite is one of
// these, possibly with a suffix such as -updates or -backports).
var debianSuites = map[string]bool{
	"buzz": true, "rex": true, "bo": true, "hamm": true, "slink": true, "potato": true, "woody": true,
	"sarge": true, "etch": true, "lenny": true, "squeeze": true, "wheezy": true, "jessie": true,
	"stretch": true, "buster": true, "bullseye": true, "bookworm": true, "trixie": true,
	"forky": true, "duke": true, "sid": true, "experimental": true, "rc-buggy": true,
	"stable": true, "testing": true, "unstable": true, "oldstable": true, "oldoldstable": true,
}

// PickMirror chooses, among sources, the base URI of Debian's main archive:
// an enabled "deb" entry whose suite is a Debian suite and not a security
// one, with the main component. An entry of a release itself ("bookworm")
// is preferred to one of -updates or -backports; otherwise the first wins.
func PickMirror(sources []Source) (string, bool) {
	best, bestScore := "", 0
	for _, s := range sources {
		if !s.Enabled || !contains(s.Types, "deb") || !contains(s.Components, "main") {
			continue
		}
		for _, uri := range s.URIs {
			if strings.Contains(uri, "security") || strings.HasPrefix(uri, "cdrom:") {
				continue
			}
			for _, suite := range s.Suites {
				if strings.Contains(suite, "security") || strings.HasSuffix(suite, "/updates") {
					continue
				}
				base, suffix, _ := strings.Cut(suite, "-")
				if suite == "rc-buggy" {
					base, suffix = suite, ""
				}
				if !debianSuites[base] {
					continue
				}
				score := 1
				if suffix == "" {
					score = 2
				}
				if score > bestScore {
					best, bestScore = strings.TrimRight(uri, "/"), score
				}
			}
		}
	}
	return best, bestScore > 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
