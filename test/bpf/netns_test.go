package bpf

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"trace_tcpretrans/test/gadgettest"
)

// Netns is a private network namespace with only loopback up; all test
// traffic stays inside it.
type Netns struct{ *gadgettest.Netns }

// NewNetns creates a network namespace that is removed when the test ends.
func NewNetns(t *testing.T) *Netns {
	t.Helper()
	n, err := gadgettest.NewNetns("trtest")
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return &Netns{n}
}

// Exec runs a command inside the namespace.
func (n *Netns) Exec(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := n.Run(name, args...)
	require.NoError(t, err)
	return out
}

// Nft loads an nftables ruleset into the namespace.
func (n *Netns) Nft(t *testing.T, ruleset string) {
	t.Helper()
	require.NoError(t, n.Netns.Nft(ruleset))
}

// Do runs f on a thread inside the namespace.
func (n *Netns) Do(t *testing.T, f func()) {
	t.Helper()
	require.NoError(t, n.Netns.Do(f))
}

// Listen opens a TCP listener in the namespace, closed when the test ends.
func (n *Netns) Listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	l, err := n.Netns.Listen(network, addr)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// Dial connects from the namespace, giving up after timeout; the
// connection is closed when the test ends.
func (n *Netns) Dial(t *testing.T, network, addr string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	c, err := n.Netns.Dial(network, addr, timeout)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// Drain accepts connections and reads them to the end until the listener closes.
var Drain = gadgettest.Drain
