package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, path)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c
}

// The certificates the components are given verify against the CA for
// what they are used for: kube-apiserver's as a server for its addresses,
// the admin's and the node's as clients with their groups.
func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	require.NoError(t, err)
	require.NoError(t, p.issue("apiserver", "kube-apiserver", nil,
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(apiServerIP)}, []string{"kubernetes.default.svc"}))
	require.NoError(t, p.issue("admin", "admin", []string{"system:masters"}, nil, nil))
	require.NoError(t, p.serviceAccountKey())

	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))
	srv := readCert(t, filepath.Join(dir, "apiserver.crt"))
	for _, host := range []string{"127.0.0.1", apiServerIP, "kubernetes.default.svc"} {
		_, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		assert.NoError(t, err, host)
	}
	_, err = srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.org"})
	assert.Error(t, err, "a name the certificate is not for")

	admin := readCert(t, filepath.Join(dir, "admin.crt"))
	_, err = admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err)
	assert.Equal(t, []string{"system:masters"}, admin.Subject.Organization)
	_, err = admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	assert.Error(t, err, "a client certificate is not a server's")

	for _, name := range []string{"apiserver", "admin"} {
		_, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		assert.NoError(t, err, "%s: the key matches the certificate", name)
	}
	for _, f := range []string{"sa.key", "sa.pub", "ca.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
}

// StartNode refuses to change a machine that is not a bin/vm guest.
func TestStartOnlyInGuest(t *testing.T) {
	guestMarker = filepath.Join(t.TempDir(), "no-such-file")
	_, err := StartNode(t.Context(), Options{Parts: "x", Work: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only in a bin/vm guest")
}
