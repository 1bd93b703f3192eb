package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The archive holds one image under its tag, with the files, links and
// directories asked for, the entrypoint and linux/amd64; the same inputs
// make the same image.
func TestArchive(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	write := func(out string) {
		require.NoError(t, run(out, "localhost/test/img:1", "/bin/tool",
			[]string{"/bin/sh=tool"}, []string{"/tmp"},
			[]string{"/bin/tool=" + exe, "/www/index.html=text:hello", "/www/big.bin=random:1000"}))
	}
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	write(a)
	write(b)

	tag, err := name.NewTag("localhost/test/img:1")
	require.NoError(t, err)
	img, err := tarball.ImageFromPath(a, &tag)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/tool"}, cf.Config.Entrypoint)
	assert.Equal(t, "linux", cf.OS)
	assert.Equal(t, "amd64", cf.Architecture)

	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	got := map[string]*tar.Header{}
	data := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got[h.Name] = h
		data[h.Name], err = io.ReadAll(tr)
		require.NoError(t, err)
	}
	for _, d := range []string{"bin/", "tmp/", "www/"} {
		require.Contains(t, got, d)
		assert.Equal(t, byte(tar.TypeDir), got[d].Typeflag, d)
	}
	assert.Equal(t, int64(0o755), got["bin/tool"].Mode, "the host file's mode")
	assert.Equal(t, "#!/bin/sh\n", string(data["bin/tool"]))
	assert.Equal(t, "hello\n", string(data["www/index.html"]))
	assert.Len(t, data["www/big.bin"], 1000)
	assert.Equal(t, byte(tar.TypeSymlink), got["bin/sh"].Typeflag)
	assert.Equal(t, "tool", got["bin/sh"].Linkname)

	imgB, err := tarball.ImageFromPath(b, &tag)
	require.NoError(t, err)
	da, err := img.Digest()
	require.NoError(t, err)
	db, err := imgB.Digest()
	require.NoError(t, err)
	assert.Equal(t, da, db, "the same inputs make the same image")
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.tar")
	for _, c := range []struct {
		tag          string
		links, files []string
		want         string
	}{
		{"", nil, nil, "-o and -tag are required"},
		{"Bad Tag", nil, nil, "-tag"},
		{"localhost/x:1", nil, []string{"/a"}, "want PATH=HOSTFILE"},
		{"localhost/x:1", nil, []string{"/a=random:-1"}, "bad size"},
		{"localhost/x:1", []string{"/a"}, nil, "want PATH=TARGET"},
		{"localhost/x:1", nil, []string{"/a=" + filepath.Join(dir, "missing")}, "no such file"},
	} {
		err := run(out, c.tag, "", c.links, nil, c.files)
		require.Error(t, err, "%+v", c)
		assert.Contains(t, err.Error(), c.want)
	}
	assert.NoFileExists(t, out)
}
