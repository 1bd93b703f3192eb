package bpf

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

// kprobes are not available on every kernel the tests run on; the kprobe
// program is loaded (so the verifier checks it) but attached only by ig.
var defaults = Options{NoAttach: []string{contract.ProgLossKprobe}}

func with(vars map[string]any) Options {
	o := defaults
	o.Vars = vars
	return o
}

func withFilters(f Filters) Options {
	o := defaults
	o.Config = &f
	return o
}

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

// connectRaw starts a non-blocking connect from the namespace and returns
// the socket's local port. local may be 0 to let the kernel pick.
func connectRaw(t *testing.T, ns *Netns, dst netip.AddrPort, family int, local int) int {
	t.Helper()
	var fd, port int
	var err error
	ns.Do(t, func() {
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		var sa, bindSa unix.Sockaddr
		if family == unix.AF_INET {
			sa = &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
			bindSa = &unix.SockaddrInet4{Port: local}
		} else {
			sa = &unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}
			bindSa = &unix.SockaddrInet6{Port: local}
		}
		if err = unix.Bind(fd, bindSa); err != nil {
			return
		}
		if err = unix.Connect(fd, sa); err == unix.EINPROGRESS {
			err = nil
		}
		if err != nil {
			return
		}
		var name unix.Sockaddr
		name, err = unix.Getsockname(fd)
		switch n := name.(type) {
		case *unix.SockaddrInet4:
			port = n.Port
		case *unix.SockaddrInet6:
			port = n.Port
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return port
}

func to(port uint16) func(Event) bool {
	return func(e Event) bool { return e.Dst.Port() == port }
}

func filter(evs []Event, keep func(Event) bool) []Event {
	var out []Event
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func atLeast(n int, keep func(Event) bool) func([]Event) bool {
	return func(evs []Event) bool { return len(filter(evs, keep)) >= n }
}

func dump(t *testing.T, evs []Event) {
	t.Helper()
	for _, e := range evs {
		t.Logf("event: %s", e)
	}
}

// dropData drops one in N data segments to a port at the namespace's
// input hook (format: port, N).
const dropData = `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp dport %d ip length > 100 numgen random mod %d == 0 drop
	}
}`

// dropSYN drops SYNs to port at the namespace's input hook.
const dropSYN = `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp dport %d tcp flags & (syn|ack) == syn drop
	}
}`

func TestSYNRetransmitIPv4(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropSYN, 9001))
	g := LoadGadget(t, defaults)

	lport := connectRaw(t, ns, netip.AddrPortFrom(lo4, 9001), unix.AF_INET, 0)
	evs := g.Collect(t, 8*time.Second, atLeast(2, to(9001)))
	dump(t, evs)
	syn := filter(evs, to(9001))
	require.GreaterOrEqual(t, len(syn), 2, "two SYN retransmissions (after 1 s and 3 s)")

	for _, e := range syn[:2] {
		assert.Equal(t, "RETRANS", e.Type)
		assert.Equal(t, "SYN_RTO", e.Reason)
		assert.Equal(t, "SYN_SENT", e.State)
		assert.Equal(t, "SYN", e.TCPFlags)
		assert.Equal(t, uint8(4), e.Version)
		assert.Equal(t, netip.AddrPortFrom(lo4, uint16(lport)), e.Src)
		assert.Equal(t, netip.AddrPortFrom(lo4, 9001), e.Dst)
		assert.Equal(t, ns.Inode, e.NetnsID)
		assert.Equal(t, uint32(0), e.Len, "a SYN carries no data")
		assert.Equal(t, uint16(1), e.Segs)
		// The initial RTO of a SYN is 1 s (TCP_TIMEOUT_INIT); it doubles
		// on each timeout, except for the first few SYN retries of kernels
		// with net.ipv4.tcp_syn_linear_timeouts (6.10 and later).
		assert.GreaterOrEqual(t, e.RTO, uint32(1000), "rto in ms")
		assert.LessOrEqual(t, e.RTO, uint32(120_000), "rto in ms")
		assert.Empty(t, e.Comm, "the socket enricher map is empty here")
		assert.NotZero(t, e.Timestamp)
	}
	assert.Equal(t, syn[0].Seq, syn[1].Seq, "both retransmit the same SYN")
	assert.GreaterOrEqual(t, syn[1].Backoff, syn[0].Backoff)
	assert.GreaterOrEqual(t, syn[1].RTO, syn[0].RTO)
	assert.Equal(t, syn[0].TotalRetrans+1, syn[1].TotalRetrans)
}

// Until the wasm operator has written the user's filters, the programs emit
// nothing: no event escapes a filter that is not applied yet.
func TestNothingBeforeFiltersAreWritten(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropSYN, 9015))
	o := defaults
	o.NoConfig = true
	g := LoadGadget(t, o)

	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9015), unix.AF_INET, 0)
	before := g.Collect(t, 1500*time.Millisecond, nil)
	assert.Empty(t, before, "events before the filters are written")

	g.WriteFilters(t, DefaultFilters)
	after := g.Collect(t, 5*time.Second, atLeast(1, to(9015)))
	dump(t, after)
	assert.NotEmpty(t, filter(after, to(9015)), "the next SYN retransmission, once the filters are written")
}

func TestSYNRetransmitIPv6(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropSYN, 9002))
	g := LoadGadget(t, defaults)

	lport := connectRaw(t, ns, netip.AddrPortFrom(lo6, 9002), unix.AF_INET6, 0)
	evs := g.Collect(t, 5*time.Second, atLeast(1, to(9002)))
	dump(t, evs)
	syn := filter(evs, to(9002))
	require.NotEmpty(t, syn)
	e := syn[0]
	assert.Equal(t, "RETRANS", e.Type)
	assert.Equal(t, "SYN_RTO", e.Reason)
	assert.Equal(t, "SYN_SENT", e.State)
	assert.Equal(t, "SYN", e.TCPFlags)
	assert.Equal(t, uint8(6), e.Version)
	assert.Equal(t, netip.AddrPortFrom(lo6, uint16(lport)), e.Src)
	assert.Equal(t, netip.AddrPortFrom(lo6, 9002), e.Dst)
}

func TestIPv4MappedIPv6ShownAsIPv4(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropSYN, 9003))
	g := LoadGadget(t, defaults)

	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), 9003)
	lport := connectRaw(t, ns, mapped, unix.AF_INET6, 0)
	evs := g.Collect(t, 5*time.Second, atLeast(1, to(9003)))
	dump(t, evs)
	syn := filter(evs, to(9003))
	require.NotEmpty(t, syn)
	assert.Equal(t, uint8(4), syn[0].Version)
	assert.Equal(t, netip.AddrPortFrom(lo4, uint16(lport)), syn[0].Src)
	assert.Equal(t, netip.AddrPortFrom(lo4, 9003), syn[0].Dst)
}

func TestSYNACKRetransmit(t *testing.T) {
	ns := NewNetns(t)
	// Drop the client's final ACK of the handshake at the listener.
	ns.Nft(t, `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp dport 9004 tcp flags & (syn|ack) == ack drop
	}
}`)
	g := LoadGadget(t, defaults)

	ns.Listen(t, "tcp4", "127.0.0.1:9004") // never accepts: the handshake stays a request
	cport := connectRaw(t, ns, netip.AddrPortFrom(lo4, 9004), unix.AF_INET, 0)
	evs := g.Collect(t, 5*time.Second, atLeast(1, func(e Event) bool { return e.Type == "SYNACK" }))
	dump(t, evs)
	sa := filter(evs, func(e Event) bool { return e.Type == "SYNACK" })
	require.NotEmpty(t, sa)
	e := sa[0]
	assert.Equal(t, "SYNACK_RTO", e.Reason)
	assert.Equal(t, "NEW_SYN_RECV", e.State)
	assert.Equal(t, "SYN|ACK", e.TCPFlags)
	assert.Equal(t, uint16(1), e.Segs, "one segment, as tcp_rtx_synack() counts it")
	assert.Equal(t, netip.AddrPortFrom(lo4, 9004), e.Src, "the listener's side")
	assert.Equal(t, netip.AddrPortFrom(lo4, uint16(cport)), e.Dst)
	assert.Equal(t, ns.Inode, e.NetnsID)
	assert.Equal(t, uint32(0), e.TotalRetrans, "first retransmission of the request")
	assert.Equal(t, uint8(0), e.Backoff)
	// A request socket has no congestion state: those fields stay zero.
	assert.Zero(t, e.SRTT+e.Cwnd+e.PacketsOut+e.Seq+e.Len)
}

// bulk writes chunks to addr from the namespace, pausing between writes,
// until stop is closed or limit passes. It runs in its own goroutine and
// reports a failure through the returned channel.
func bulk(t *testing.T, ns *Netns, addr string, chunk int, pause, limit time.Duration, stop <-chan struct{}) <-chan error {
	t.Helper()
	c, err := ns.Dial(t, "tcp4", addr, 10*time.Second)
	require.NoError(t, err)
	res := make(chan error, 1)
	go func() {
		buf := make([]byte, chunk)
		end := time.Now().Add(limit)
		for time.Now().Before(end) {
			select {
			case <-stop:
				res <- nil
				return
			default:
			}
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(buf); err != nil {
				res <- err
				return
			}
			if pause > 0 {
				time.Sleep(pause)
			}
		}
		res <- nil
	}()
	return res
}

func TestDataRetransmitsInLossyTransfer(t *testing.T) {
	ns := NewNetns(t)
	// One data segment in 20 towards the server is lost.
	ns.Nft(t, fmt.Sprintf(dropData, 9005, 20))
	g := LoadGadget(t, defaults)
	ln := ns.Listen(t, "tcp4", "127.0.0.1:9005")
	Drain(ln)

	data := func(e Event) bool { return e.Dst.Port() == 9005 && e.Type == "RETRANS" }
	stop := make(chan struct{})
	writer := bulk(t, ns, "127.0.0.1:9005", 64<<10, 0, 10*time.Second, stop)
	evs := g.Collect(t, 12*time.Second, atLeast(20, data))
	close(stop)
	require.NoError(t, <-writer)
	dump(t, evs[:min(len(evs), 30)])
	re := filter(evs, data)
	require.GreaterOrEqual(t, len(re), 20, "retransmissions of a lossy bulk transfer")

	reasons := map[string]int{}
	for _, e := range re {
		reasons[e.Reason]++
		assert.Equal(t, "ESTABLISHED", e.State, e.String())
		assert.Contains(t, e.TCPFlags, "ACK", e.String())
		assert.Equal(t, uint8(4), e.Version)
		assert.Equal(t, ns.Inode, e.NetnsID)
		assert.Positive(t, e.Len, "data retransmissions carry data: %s", e)
		assert.GreaterOrEqual(t, e.Segs, uint16(1))
		assert.Positive(t, e.SRTT, "srtt: %s", e)
		assert.Less(t, e.SRTT, uint32(2_000_000), "srtt on loopback: %s", e)
		assert.GreaterOrEqual(t, e.RTO, uint32(200), "rto is at least TCP_RTO_MIN: %s", e)
		assert.LessOrEqual(t, e.RTO, uint32(120_000), "rto is at most TCP_RTO_MAX: %s", e)
		assert.Positive(t, e.Cwnd, e.String())
		assert.Positive(t, e.PacketsOut, "a retransmitted segment is outstanding: %s", e)
		assert.LessOrEqual(t, e.RetransOut, e.PacketsOut, e.String())
		assert.LessOrEqual(t, e.LostOut, e.PacketsOut, e.String())
		assert.Contains(t, []string{"FAST_RECOVERY", "RTO", "TLP"}, e.Reason, e.String())
	}
	t.Logf("reasons: %v", reasons)
	assert.Positive(t, reasons["FAST_RECOVERY"], "SACK-based recovery happens in a lossy bulk transfer")
	// total_retrans of a socket grows from event to event.
	for i := 1; i < len(re); i++ {
		if re[i].Src == re[i-1].Src {
			assert.GreaterOrEqual(t, re[i].TotalRetrans, re[i-1].TotalRetrans)
		}
	}
}

func TestTailLossProbe(t *testing.T) {
	ns := NewNetns(t)
	// A quarter of the data segments towards the server are lost; pure ACKs,
	// SYNs and FINs pass.
	ns.Nft(t, `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp dport 9006 ip length > 200 numgen random mod 4 == 0 drop
	}
}`)
	g := LoadGadget(t, defaults)
	ln := ns.Listen(t, "tcp4", "127.0.0.1:9006")
	Drain(ln)

	isLoss := func(e Event) bool { return e.Dst.Port() == 9006 && e.Type == "LOSS" }
	isTLP := func(e Event) bool { return e.Dst.Port() == 9006 && e.Type == "RETRANS" && e.Reason == "TLP" }
	// 1000-byte writes with pauses: a lost write is the tail of the
	// stream, the case tail loss probes are for.
	stop := make(chan struct{})
	writer := bulk(t, ns, "127.0.0.1:9006", 1000, 30*time.Millisecond, 15*time.Second, stop)
	evs := g.Collect(t, 15*time.Second, func(evs []Event) bool {
		return len(filter(evs, isLoss)) >= 3 && len(filter(evs, isTLP)) >= 1
	})
	close(stop)
	require.NoError(t, <-writer)
	dump(t, filter(evs, to(9006)))

	loss := filter(evs, isLoss)
	require.GreaterOrEqual(t, len(loss), 3, "tail loss probes")
	for _, e := range loss {
		assert.Equal(t, "TLP", e.Reason)
		assert.Equal(t, "ESTABLISHED", e.State)
		assert.Empty(t, e.TCPFlags, "a LOSS event has no segment")
		assert.Zero(t, e.Seq+e.Len+uint32(e.Segs), "a LOSS event has no segment")
		assert.Positive(t, e.PacketsOut)
		assert.Positive(t, e.SRTT)
	}
	tlp := filter(evs, isTLP)
	require.NotEmpty(t, tlp, "a probe that retransmits says TLP in its reason")
	// Every TLP retransmission follows a LOSS event of the same connection.
	for _, r := range tlp {
		found := false
		for _, l := range loss {
			if l.Src == r.Src && l.Timestamp <= r.Timestamp && r.Timestamp-l.Timestamp < uint64(time.Second) {
				found = true
			}
		}
		assert.True(t, found, "LOSS event before %s", r)
		assert.Positive(t, r.Len)
	}
}

func kernelReportsFailedRetransmits(t *testing.T) bool {
	t.Helper()
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		b, err := os.ReadFile(dir + "/events/tcp/tcp_retransmit_skb/format")
		if err == nil {
			return strings.Contains(string(b), "field:int err;")
		}
	}
	t.Fatalf("tcp_retransmit_skb format not readable: mount tracefs on /sys/kernel/tracing")
	return false
}

// failRules makes the output hook drop the SYNs to port fail: every
// retransmission attempt fails with EPERM. SYNs to port ok are dropped at
// input instead: their retransmissions succeed and serve as the control
// that time has passed. Each test has its own ports, so that it never sees
// the retransmissions of another test's sockets.
func failRules(fail, ok int) string {
	return fmt.Sprintf(`table inet t {
	chain out {
		type filter hook output priority 0;
		tcp dport %d drop
	}
	chain in {
		type filter hook input priority 0;
		tcp dport %d drop
	}
}`, fail, ok)
}

func TestFailedRetransmitsHiddenByDefault(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, failRules(9007, 9008))
	g := LoadGadget(t, defaults)
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9007), unix.AF_INET, 0)
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9008), unix.AF_INET, 0)

	evs := g.Collect(t, 8*time.Second, atLeast(2, to(9008)))
	dump(t, evs)
	require.GreaterOrEqual(t, len(filter(evs, to(9008))), 2, "control retransmissions")
	assert.Empty(t, filter(evs, to(9007)), "failed attempts are not retransmissions")
}

func TestFailedRetransmitsReportedWithFlag(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, failRules(9022, 9023))
	g := LoadGadget(t, withFilters(Filters{Loss: 1, Synack: 1, Failed: 1}))
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9022), unix.AF_INET, 0)
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9023), unix.AF_INET, 0)

	evs := g.Collect(t, 8*time.Second, atLeast(2, to(9023)))
	dump(t, evs)
	require.GreaterOrEqual(t, len(filter(evs, to(9023))), 2, "control retransmissions")
	failed := filter(evs, to(9022))
	if !kernelReportsFailedRetransmits(t) {
		assert.Empty(t, failed, "kernels before 6.17 fire tcp_retransmit_skb only on success")
		return
	}
	require.NotEmpty(t, failed)
	for _, e := range failed {
		assert.Equal(t, "RETRANS_FAILED", e.Type)
		assert.Equal(t, uint32(unix.EPERM), e.Error, "netfilter drops in output return EPERM")
		assert.Equal(t, "SYN", e.TCPFlags)
		assert.Equal(t, "SYN_RTO", e.Reason)
	}
	for _, e := range filter(evs, to(9023)) {
		assert.Equal(t, "RETRANS", e.Type)
		assert.Zero(t, e.Error)
	}
}

func TestFamilyFilter(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp dport { 9009, 9010 } tcp flags & (syn|ack) == syn drop
	}
}`)
	g := LoadGadget(t, withFilters(Filters{Loss: 1, Synack: 1, Family: 6}))
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9009), unix.AF_INET, 0)
	connectRaw(t, ns, netip.AddrPortFrom(lo6, 9010), unix.AF_INET6, 0)

	evs := g.Collect(t, 8*time.Second, atLeast(2, to(9010)))
	dump(t, evs)
	require.GreaterOrEqual(t, len(filter(evs, to(9010))), 2, "IPv6 retransmissions")
	assert.Empty(t, filter(evs, to(9009)), "IPv4 is filtered out")
}

func TestLossAndSYNACKCanBeTurnedOff(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp dport 9011 tcp flags & (syn|ack) == ack drop
		tcp dport 9012 tcp flags & (syn|ack) == syn drop
		tcp dport 9013 ip length > 200 numgen random mod 2 == 0 drop
	}
}`)
	g := LoadGadget(t, withFilters(Filters{}))
	ns.Listen(t, "tcp4", "127.0.0.1:9011") // its SYN-ACKs go unanswered
	data := ns.Listen(t, "tcp4", "127.0.0.1:9013")
	Drain(data)
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9011), unix.AF_INET, 0)
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9012), unix.AF_INET, 0)
	stop := make(chan struct{})
	writer := bulk(t, ns, "127.0.0.1:9013", 1000, 75*time.Millisecond, 8*time.Second, stop)

	// The second SYN retransmission comes 3 s after connect: by then the
	// SYN-ACK to 9011 was retransmitted and probes of 9013 fired.
	evs := g.Collect(t, 8*time.Second, atLeast(2, to(9012)))
	dump(t, evs)
	close(stop)
	require.NoError(t, <-writer)
	require.GreaterOrEqual(t, len(filter(evs, to(9012))), 2, "control retransmissions")
	assert.NotEmpty(t, filter(evs, to(9013)), "the lossy stream retransmitted")
	for _, e := range evs {
		assert.NotEqual(t, "LOSS", e.Type, e.String())
		assert.NotEqual(t, "SYNACK", e.Type, e.String())
	}
}

// putSocketOwner fills IG's socket enricher map the way ig would for a
// socket bound to port in the namespace.
func putSocketOwner(t *testing.T, g *Gadget, ns *Netns, port uint16, mntns uint64, pid, tid uint32, comm string) {
	t.Helper()
	m := g.Coll.Maps["gadget_sockets"] // IG's socket enricher map (gadget/sockets-map.h)
	var kt, vt *btf.Struct
	require.NoError(t, g.Spec.Types.TypeByName("gadget_socket_key", &kt))
	require.NoError(t, g.Spec.Types.TypeByName("gadget_socket_value", &vt))
	key := make([]byte, m.KeySize())
	val := make([]byte, m.ValueSize())
	kf, err := gadgettest.Flatten(kt)
	require.NoError(t, err)
	vf, err := gadgettest.Flatten(vt)
	require.NoError(t, err)
	put := func(buf []byte, f map[string]gadgettest.Member, name string, v uint64) {
		mb, ok := f[name]
		require.True(t, ok, name)
		require.NoError(t, gadgettest.PutUint(buf[mb.Off:mb.Off+mb.Size], v), name)
	}
	put(key, kf, "netns", uint64(ns.Inode))
	put(key, kf, "family", unix.AF_INET)
	put(key, kf, "proto", unix.IPPROTO_TCP)
	put(key, kf, "port", uint64(port))
	put(val, vf, "mntns", mntns)
	put(val, vf, "pid_tgid", uint64(pid)<<32|uint64(tid))
	put(val, vf, "uid_gid", 0)
	copy(val[vf["task"].Off:vf["task"].Off+16], comm)
	require.NoError(t, m.Put(key, val))
}

func TestSocketOwnerAndContainerFilter(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp dport { 9014, 9015, 9016 } tcp flags & (syn|ack) == syn drop
	}
}`)
	const inContainer, otherContainer = 4242, 9999
	g := LoadGadget(t, with(map[string]any{"gadget_filter_by_mntns": true}))
	require.NoError(t, g.Coll.Maps["gadget_mntns_filter_map"].Put(uint64(inContainer), uint32(1)))

	putSocketOwner(t, g, ns, 41014, inContainer, 1234, 1235, "client-a")
	putSocketOwner(t, g, ns, 41015, otherContainer, 2234, 2235, "client-b")
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9014), unix.AF_INET, 41014)
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9015), unix.AF_INET, 41015)
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9016), unix.AF_INET, 0) // unknown to the enricher

	evs := g.Collect(t, 8*time.Second, atLeast(2, to(9014)))
	dump(t, evs)
	a := filter(evs, to(9014))
	require.GreaterOrEqual(t, len(a), 2)
	for _, e := range a {
		assert.Equal(t, "client-a", e.Comm)
		assert.Equal(t, uint32(1234), e.Pid)
		assert.Equal(t, uint32(1235), e.Tid)
		assert.Equal(t, uint64(inContainer), e.MntnsID)
	}
	assert.Empty(t, filter(evs, to(9015)), "socket of another container")
	assert.Empty(t, filter(evs, to(9016)), "socket unknown to the enricher while filtering")
}

func TestKprobeProgramPassesVerifier(t *testing.T) {
	g := LoadGadget(t, defaults)
	prog := g.Coll.Programs[contract.ProgLossKprobe]
	require.NotNil(t, prog, "loaded with the collection")
	info, err := prog.Info()
	require.NoError(t, err)
	assert.Equal(t, ebpf.Kprobe, info.Type)
	assert.Equal(t, "tcp_send_loss_probe", g.Spec.Programs[contract.ProgLossKprobe].AttachTo)
}
