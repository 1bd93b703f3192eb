package main

import (
	"archive/tar"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
)

// cmdExtract writes the amd64 BPF object of an image in ig's local store,
// taken from `ig image export`'s OCI layout.
func cmdExtract(args []string) error {
	fs := flag.NewFlagSet("extract", flag.ExitOnError)
	ig := fs.String("ig", "bin/ig", "ig binary")
	image := fs.String("image", "", "image in ig's local store")
	out := fs.String("out", "", "where to write the object")
	_ = fs.Parse(args)
	if *image == "" || *out == "" {
		return fmt.Errorf("-image and -out are required")
	}
	dir, err := os.MkdirTemp("", "bench-extract.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tarPath := filepath.Join(dir, "image.tar")
	if _, err := runOut(*ig, "image", "export", *image, tarPath); err != nil {
		return err
	}
	blobs, err := readTar(tarPath)
	if err != nil {
		return err
	}
	type desc struct {
		MediaType string            `json:"mediaType"`
		Digest    string            `json:"digest"`
		Platform  *struct{ Architecture string } `json:"platform"`
	}
	type doc struct {
		Manifests []desc `json:"manifests"`
		Layers    []desc `json:"layers"`
	}
	var walk func(b []byte, depth int) ([]byte, error)
	walk = func(b []byte, depth int) ([]byte, error) {
		if depth > 4 {
			return nil, nil
		}
		var d doc
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, err
		}
		for _, l := range d.Layers {
			if strings.Contains(l.MediaType, "ebpf.program") {
				return blobs["blobs/"+strings.Replace(l.Digest, ":", "/", 1)], nil
			}
		}
		for _, m := range d.Manifests {
			if m.Platform != nil && m.Platform.Architecture != "amd64" {
				continue
			}
			child, ok := blobs["blobs/"+strings.Replace(m.Digest, ":", "/", 1)]
			if !ok {
				continue
			}
			if o, err := walk(child, depth+1); err == nil && o != nil {
				return o, nil
			}
		}
		return nil, nil
	}
	obj, err := walk(blobs["index.json"], 0)
	if err != nil {
		return err
	}
	if obj == nil {
		return fmt.Errorf("no amd64 eBPF layer in %s", *image)
	}
	return os.WriteFile(*out, obj, 0o644)
}

func readTar(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	m := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		m[strings.TrimPrefix(h.Name, "./")] = b
	}
}

// objectProgNames maps the program names of an object, as the kernel keeps
// them (15 characters), to the hooks of their sections.
func objectProgNames(path string) (map[string]string, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for n, p := range spec.Programs {
		if len(n) > 15 {
			n = n[:15]
		}
		m[n] = hookOfSection(p.SectionName)
	}
	return m, nil
}

func firstNameFor(names map[string]string, hook string) string {
	for n, h := range names {
		if h == hook {
			return n
		}
	}
	return "ig_tcpretrans"
}
