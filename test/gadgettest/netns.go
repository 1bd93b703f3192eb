package gadgettest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a private network namespace with only loopback up: the traffic
// of the tests and of the benchmark stays inside it.
type Netns struct {
	Name  string
	Inode uint32 // what the gadget reports as netns_id
	fd    int
}

var netnsSeq atomic.Int32

// NewNetns creates a namespace named prefix-PID-N, with loopback up.
func NewNetns(prefix string) (*Netns, error) {
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &Netns{Name: name, fd: -1}
	if _, err := n.Run("ip", "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("opening /run/netns/%s: %w", name, err)
	}
	n.fd = fd
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		n.Close()
		return nil, fmt.Errorf("stat /run/netns/%s: %w", name, err)
	}
	n.Inode = uint32(st.Ino)
	return n, nil
}

// Close deletes the namespace; sockets still open keep it alive until they
// close.
func (n *Netns) Close() error {
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
	}
	return nil
}

// Command prepares a command to run inside the namespace.
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its output.
func (n *Netns) Run(name string, args ...string) (string, error) {
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// Nft loads an nftables ruleset into the namespace.
func (n *Netns) Nft(ruleset string) error {
	cmd := n.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s\n%s", n.Name, err, out, ruleset)
	}
	return nil
}

// Do runs f on an OS thread switched into the namespace, so that sockets f
// creates belong to it; they keep it when used from other threads later.
func (n *Netns) Do(f func()) error {
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
	return <-done
}

// Listen opens a TCP listener in the namespace ("tcp4" or "tcp6").
func (n *Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	var err error
	if derr := n.Do(func() { l, err = net.Listen(network, addr) }); derr != nil {
		return nil, derr
	}
	return l, err
}

// Dial connects from the namespace, giving up after timeout.
func (n *Netns) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	var err error
	derr := n.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
	})
	if derr != nil {
		return nil, derr
	}
	return c, err
}

// SNMP reads a counter of the namespace's /proc/net/snmp, such as
// ("Tcp", "RetransSegs").
func (n *Netns) SNMP(proto, field string) (int64, error) {
	out, err := n.Run("cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return SNMPField(out, proto, field)
}

// SNMPField finds a counter in the text of /proc/net/snmp, where each
// protocol has a line of names followed by a line of values.
func SNMPField(text, proto, field string) (int64, error) {
	var names []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, proto+": ") {
			continue
		}
		f := strings.Fields(l)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == field && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/snmp", proto, field)
}

// Drain accepts connections and reads them to the end until the listener
// closes.
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
