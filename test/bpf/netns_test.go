package bpf

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Netns is a private network namespace with only loopback up; all test
// traffic stays inside it.
type Netns struct {
	Name  string
	fd    int
	Inode uint32
}

var netnsSeq atomic.Int32

// NewNetns creates a network namespace that is removed when the test ends.
func NewNetns(t *testing.T) *Netns {
	t.Helper()
	name := fmt.Sprintf("trtest-%d-%d", os.Getpid(), netnsSeq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ns := &Netns{Name: name}
	ns.Exec(t, "ip", "link", "set", "lo", "up")

	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	ns.fd = fd
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(fd, &st))
	ns.Inode = uint32(st.Ino)
	return ns
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// Exec runs a command inside the namespace.
func (n *Netns) Exec(t *testing.T, name string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Nft loads an nftables ruleset into the namespace.
func (n *Netns) Nft(t *testing.T, ruleset string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "nft: %s\n%s", out, ruleset)
}

// Do runs f on an OS thread switched into the namespace, so that sockets f
// creates belong to it; they keep it when used from other threads later.
func (n *Netns) Do(t *testing.T, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it exits with the goroutine, so
		// no other goroutine ever runs in the namespace by accident.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- err
			return
		}
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	require.NoError(t, <-done)
}

// Listen opens a TCP listener in the namespace; "tcp4" or "tcp6".
func (n *Netns) Listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	var err error
	n.Do(t, func() { l, err = net.Listen(network, addr) })
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// Dial connects from the namespace, giving up after timeout.
func (n *Netns) Dial(t *testing.T, network, addr string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var err error
	n.Do(t, func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
	})
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// Drain accepts connections and reads them to the end until the listener closes.
func Drain(l net.Listener) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
}
