// Command mkimage writes a single-layer container image as a docker-save
// archive, the form `ctr images import` takes, without a daemon: the
// images of make test-k8s's node (pause, Inspektor Gadget's DaemonSet, the
// busybox test image) are built here, since nothing can be pulled.
//
//	mkimage -o OUT.tar -tag REF [-entrypoint /bin/x] [-link /bin/a=busybox]... \
//	    [-dir /tmp] /in/image=HOSTFILE|text:LINE|random:N...
//
// Files are given as PATH=HOSTFILE (copied, mode kept), PATH=text:LINE or
// PATH=random:N (N bytes from a fixed seed: the same archive each time).
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// epoch is every entry's time, so that the same inputs make the same image.
var epoch = time.Unix(0, 0)

func main() {
	var out, tag, entrypoint string
	var links, dirs list
	flag.StringVar(&out, "o", "", "the archive to write")
	flag.StringVar(&tag, "tag", "", "the image's reference (as pods name it)")
	flag.StringVar(&entrypoint, "entrypoint", "", "the image's entrypoint, if any")
	flag.Var(&links, "link", "PATH=TARGET: a symbolic link (repeatable)")
	flag.Var(&dirs, "dir", "an empty directory (repeatable)")
	flag.Parse()
	if err := run(out, tag, entrypoint, links, dirs, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, tag, entrypoint string, links, dirs, files []string) error {
	if out == "" || tag == "" {
		return errors.New("-o and -tag are required")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", tag, err)
	}
	layer, err := buildLayer(links, dirs, files)
	if err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", "amd64", v1.Time{Time: epoch}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if entrypoint != "" {
		cf.Config.Entrypoint = []string{entrypoint}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// buildLayer writes the layer's tar: directories first, then files and
// links, each sorted by path.
func buildLayer(links, dirs, files []string) ([]byte, error) {
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	var entries []entry
	seenDir := map[string]bool{}
	addDir := func(p string) {
		for d := p; d != "/" && d != "." && !seenDir[d]; d = path.Dir(d) {
			seenDir[d] = true
			entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch}})
		}
	}
	for _, d := range dirs {
		addDir(path.Clean(d))
	}
	for _, f := range files {
		p, src, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("file %q: want PATH=HOSTFILE, PATH=text:LINE or PATH=random:N", f)
		}
		p = path.Clean(p)
		addDir(path.Dir(p))
		data, mode, err := content(src)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", p, err)
		}
		entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(data)), ModTime: epoch}, data: data})
	}
	for _, l := range links {
		p, target, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("link %q: want PATH=TARGET", l)
		}
		p = path.Clean(p)
		addDir(path.Dir(p))
		entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(p, "/"), Linkname: target, Mode: 0o777, ModTime: epoch}})
	}
	sort.SliceStable(entries, func(i, j int) bool {
		di, dj := entries[i].hdr.Typeflag == tar.TypeDir, entries[j].hdr.Typeflag == tar.TypeDir
		if di != dj {
			return di
		}
		return entries[i].hdr.Name < entries[j].hdr.Name
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// content reads a host file (with its mode) or makes N seeded random bytes.
func content(src string) ([]byte, int64, error) {
	if text, ok := strings.CutPrefix(src, "text:"); ok {
		return []byte(text + "\n"), 0o644, nil
	}
	if n, ok := strings.CutPrefix(src, "random:"); ok {
		size, err := strconv.Atoi(n)
		if err != nil || size < 0 {
			return nil, 0, fmt.Errorf("bad size %q", n)
		}
		r := rand.New(rand.NewPCG(1, 2))
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b, 0o644, nil
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, 0, err
	}
	b, err := os.ReadFile(src)
	return b, int64(st.Mode().Perm()), err
}
