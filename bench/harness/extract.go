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
	obj, err := ebpfLayer(blobs, blobs["index.json"], 0)
	if err != nil {
		return err
	}
	if obj == nil {
		return fmt.Errorf("no amd64 eBPF layer in %s", *image)
	}
	return os.WriteFile(*out, obj, 0o644)
}

// ociDesc is an OCI descriptor, as in an index or a manifest.
type ociDesc struct {
	MediaType string                         `json:"mediaType"`
	Digest    string                         `json:"digest"`
	Platform  *struct{ Architecture string } `json:"platform"`
}

// ociDoc is an OCI image index or manifest.
type ociDoc struct {
	Manifests []ociDesc `json:"manifests"`
	Layers    []ociDesc `json:"layers"`
}

// blobPath is where an OCI layout keeps the blob of a digest.
func blobPath(digest string) string {
	return "blobs/" + strings.Replace(digest, ":", "/", 1)
}

// ebpfLayer finds the eBPF program layer of an OCI layout's blobs,
// starting at the index or manifest doc and following amd64 (or
// platform-less) manifests at most 4 deep; nil if there is none.
func ebpfLayer(blobs map[string][]byte, doc []byte, depth int) ([]byte, error) {
	if depth > 4 {
		return nil, nil
	}
	var d ociDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	for _, l := range d.Layers {
		if strings.Contains(l.MediaType, "ebpf.program") {
			return blobs[blobPath(l.Digest)], nil
		}
	}
	for _, m := range d.Manifests {
		if m.Platform != nil && m.Platform.Architecture != "amd64" {
			continue
		}
		child, ok := blobs[blobPath(m.Digest)]
		if !ok {
			continue
		}
		if o, err := ebpfLayer(blobs, child, depth+1); err == nil && o != nil {
			return o, nil
		}
	}
	return nil, nil
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
