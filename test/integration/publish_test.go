//go:build integration

package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var cosign = flag.String("cosign", "", "cosign (bin/cosign): TestPublish signs with it")

// testRegistry is go-containerregistry's registry, served by the test on
// loopback over plain HTTP.
type testRegistry struct {
	Host string // 127.0.0.1:port
	srv  *http.Server
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &testRegistry{Host: ln.Addr().String(),
		srv: &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

// Close stops the registry: what runs after it must not need it.
func (r *testRegistry) Close() { _ = r.srv.Close() }

func (r *testRegistry) ref(t *testing.T, tagOrDigest string) name.Reference {
	t.Helper()
	sep := ":"
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		sep = "@"
	}
	ref, err := name.ParseReference(r.Host+"/trace_tcpretrans"+sep+tagOrDigest, name.Insecure)
	require.NoError(t, err)
	return ref
}

// rawManifest puts bytes as they are under a tag or digest.
type rawManifest struct {
	b  []byte
	mt ggcrtypes.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)            { return m.b, nil }
func (m rawManifest) MediaType() (ggcrtypes.MediaType, error) { return m.mt, nil }

func (r *testRegistry) get(t *testing.T, tagOrDigest string) (map[string]any, ggcrtypes.MediaType) {
	t.Helper()
	desc, err := remote.Get(r.ref(t, tagOrDigest))
	require.NoError(t, err, "getting %s", tagOrDigest)
	var m map[string]any
	require.NoError(t, json.Unmarshal(desc.Manifest, &m))
	return m, desc.MediaType
}

// put stores a manifest under a tag (or its own digest) and returns its
// digest.
func (r *testRegistry) put(t *testing.T, tagOrDigest string, m map[string]any, mt ggcrtypes.MediaType) v1.Hash {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	d := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
	if tagOrDigest == "" {
		tagOrDigest = d.String()
	}
	require.NoError(t, remote.Put(r.ref(t, tagOrDigest), rawManifest{b, mt}), "putting %s", tagOrDigest)
	return d
}

// variant stores under tag a copy of src's index with one more annotation:
// the same gadget, another digest, hence no signature yet.
func (r *testRegistry) variant(t *testing.T, src, tag, note string) v1.Hash {
	t.Helper()
	idx, mt := r.get(t, src)
	ann, _ := idx["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
	}
	ann["io.trace-tcpretrans.test.variant"] = note
	idx["annotations"] = ann
	return r.put(t, tag, idx, mt)
}

// tamper stores under tag a copy of src whose first manifest has one layer
// changed (a byte appended), as an attacker would change a signed image; it
// returns the new index digest.
func (r *testRegistry) tamper(t *testing.T, src, tag string) v1.Hash {
	t.Helper()
	idx, idxType := r.get(t, src)
	mans := idx["manifests"].([]any)
	m0 := mans[0].(map[string]any)
	man, manType := r.get(t, m0["digest"].(string))
	layers := man["layers"].([]any)
	l0 := layers[0].(map[string]any)

	d, err := name.NewDigest(r.Host+"/trace_tcpretrans@"+l0["digest"].(string), name.Insecure)
	require.NoError(t, err)
	layer, err := remote.Layer(d)
	require.NoError(t, err)
	rc, err := layer.Compressed()
	require.NoError(t, err)
	blob, err := io.ReadAll(rc)
	require.NoError(t, err)
	rc.Close()
	changed := static.NewLayer(append(blob, '\n'), ggcrtypes.MediaType(l0["mediaType"].(string)))
	require.NoError(t, remote.WriteLayer(r.ref(t, "x").Context(), changed))
	ld, err := changed.Digest()
	require.NoError(t, err)
	l0["digest"], l0["size"] = ld.String(), len(blob)+1

	md := r.put(t, "", man, manType)
	b, err := json.Marshal(man)
	require.NoError(t, err)
	m0["digest"], m0["size"] = md.String(), len(b)
	return r.put(t, tag, idx, idxType)
}

// copySignature stores the signature made for digest from under the tag of
// digest to: cosign's sha256-<hex>.sig tags.
func (r *testRegistry) copySignature(t *testing.T, from, to v1.Hash) {
	t.Helper()
	sig, mt := r.get(t, "sha256-"+from.Hex+".sig")
	r.put(t, "sha256-"+to.Hex+".sig", sig, mt)
}

type keyPair struct {
	Key string // path of the private key
	Pub string // the public key, PEM, as --public-keys takes it
}

// publish runs scripts/publish.sh, the code of make keys, push and sign.
func publish(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(*repo, "scripts/publish.sh"), args...)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=")
	out, err := cmd.CombinedOutput()
	t.Logf("publish.sh %s:\n%s", strings.Join(args, " "), out)
	require.NoError(t, err, "publish.sh %v", args)
}

func makeKeys(t *testing.T, dir, base string) keyPair {
	t.Helper()
	key, pub := filepath.Join(dir, base+".key"), filepath.Join(dir, base+".pub")
	publish(t, "keys", *cosign, key, pub)
	pem, err := os.ReadFile(pub)
	require.NoError(t, err)
	return keyPair{Key: key, Pub: string(pem)}
}

// localDigest is the digest of ref in ig's local store.
func localDigest(t *testing.T, ref string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(*repo, "scripts/publish.sh"), "digest", igBin(), ref).Output()
	require.NoError(t, err, "digest of %s", ref)
	return strings.TrimSpace(string(out))
}

// synEvents starts SYN retransmissions to port on the host and waits for
// their events in ig's JSON output.
func synEvents(t *testing.T, ig *IG, port int) {
	t.Helper()
	ns := netns(t, fmt.Sprintf("table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp dport %d tcp flags & (syn|ack) == syn drop\n }\n}\n", port))
	c := connect(ns, "127.0.0.1", port, 4)
	defer c.Wait()
	toPort := func(e map[string]any) bool { return str(e, "dst.port") == fmt.Sprint(port) }
	evs := ig.WaitEvents(t, 20*time.Second, func(evs []map[string]any) bool { return count(evs, toPort) > 0 })
	require.Positive(t, count(evs, toPort), "events of SYN retransmissions to port %d", port)
	for _, l := range ig.Lines()[:min(len(ig.Lines()), 3)] {
		t.Logf("ig: %s", l)
	}
}

// The gadget published as users get it: pushed to a registry (on loopback),
// signed with cosign, pulled and verified by ig with verification on; and
// what ig must refuse.
func TestPublish(t *testing.T) {
	require.NotEmpty(t, *cosign, "-cosign: the cosign binary (make test-integration passes bin/cosign)")
	reg := startRegistry(t)
	dir := t.TempDir()
	ours, other := makeKeys(t, dir, "ours"), makeKeys(t, dir, "other")
	insecure := []string{"--insecure-registries", reg.Host}
	verified := func(ref string, extra ...string) []string {
		return append(append([]string{ref, "--public-keys=" + ours.Pub}, insecure...), extra...)
	}

	signed := reg.Host + "/trace_tcpretrans:signed"
	// ig keeps what it pulled, refused or not: leave its store as it was.
	t.Cleanup(func() {
		for _, tag := range []string{"signed", "unsigned", "otherkey", "tampered"} {
			_ = exec.Command(igBin(), "image", "remove", reg.Host+"/trace_tcpretrans:"+tag).Run()
		}
	})
	igOK(t, "image", "tag", *image, signed)
	publish(t, "push", igBin(), signed, reg.Host)
	publish(t, "sign", igBin(), *cosign, signed, ours.Key, reg.Host)
	d1 := localDigest(t, signed)
	// Removed from the local store, so that ig run pulls it.
	igOK(t, "image", "remove", signed)

	t.Run("signed image pulled, verified and run", func(t *testing.T) {
		ig := StartIGRun(t, verified(signed, "--host", "-o", "json")...)
		synEvents(t, ig, 9031)
		ig.Stop(t)
		assert.Equal(t, d1, localDigest(t, signed), "the pulled image is the signed one")
	})

	refused := func(t *testing.T, ref string, want ...string) {
		t.Helper()
		out := igFails(t, 4*time.Minute, append([]string{"run"}, verified(ref, "--host")...)...)
		for _, w := range want {
			assert.Contains(t, out, w)
		}
		assertDetached(t)
	}
	t.Run("unsigned image refused", func(t *testing.T) {
		reg.variant(t, "signed", "unsigned", "unsigned")
		refused(t, reg.Host+"/trace_tcpretrans:unsigned", `verifying image: pulling gadget signature "`+reg.Host+`/trace_tcpretrans:unsigned"`, ".sig: not found")
	})
	t.Run("image signed with another key refused", func(t *testing.T) {
		d := reg.variant(t, "signed", "otherkey", "other key")
		publish(t, "sign", igBin(), *cosign, reg.Host+"/trace_tcpretrans@"+d.String(), other.Key, reg.Host)
		refused(t, reg.Host+"/trace_tcpretrans:otherkey", "verifying image: verifying gadget signature", "the image was not signed by the provided keys")
	})
	t.Run("layer changed after signing refused", func(t *testing.T) {
		orig, err := v1.NewHash(d1)
		require.NoError(t, err)
		d := reg.tamper(t, "signed", "tampered")
		// The attacker also puts the original signature under the new
		// digest's tag: it is ours, but for another image.
		reg.copySignature(t, orig, d)
		refused(t, reg.Host+"/trace_tcpretrans:tampered", "verifying image: verifying gadget signature", "payload digest does not correspond to image: expected "+d.String())
	})

	t.Run("--pull always fetches the tag's new image", func(t *testing.T) {
		d := reg.variant(t, "signed", "v2", "v2")
		publish(t, "sign", igBin(), *cosign, reg.Host+"/trace_tcpretrans@"+d.String(), ours.Key, reg.Host)
		idx, mt := reg.get(t, "v2")
		reg.put(t, "signed", idx, mt)
		require.Equal(t, d1, localDigest(t, signed), "the old image is in the local store")
		ig := StartIGRun(t, verified(signed, "--pull", "always", "--host", "-o", "json")...)
		ig.Stop(t)
		assert.Equal(t, d.String(), localDigest(t, signed), "--pull always replaced the old image")
	})

	t.Run("export and import keep the signature", func(t *testing.T) {
		d := localDigest(t, signed)
		tar := filepath.Join(dir, "trace_tcpretrans.tar")
		igOK(t, "image", "export", signed, tar)
		assert.Contains(t, tarEntries(t, tar), "sha256-"+strings.TrimPrefix(d, "sha256:")+".sig", "the signature is in the archive")
		igOK(t, "image", "remove", signed)
		// An air-gapped host: no registry from here on.
		reg.Close()
		igOK(t, "image", "import", tar)
		assert.Equal(t, d, localDigest(t, signed))
		ig := StartIGRun(t, signed, "--public-keys="+ours.Pub, "--pull", "never", "--host", "-o", "json")
		synEvents(t, ig, 9032)
	})
}

// tarEntries lists the tags an `ig image export` archive holds (an OCI
// layout: index.json's org.opencontainers.image.ref.name annotations).
func tarEntries(t *testing.T, tar string) string {
	t.Helper()
	out, err := exec.Command("tar", "-xOf", tar, "index.json").Output()
	require.NoError(t, err, "index.json of %s", tar)
	var idx v1.IndexManifest
	require.NoError(t, json.NewDecoder(bytes.NewReader(out)).Decode(&idx))
	var refs []string
	for _, m := range idx.Manifests {
		refs = append(refs, m.Annotations["org.opencontainers.image.ref.name"])
	}
	return strings.Join(refs, " ")
}
