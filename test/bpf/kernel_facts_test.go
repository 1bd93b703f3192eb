package bpf

// Tests of what the kernel does that an easy reading of it gets wrong: probe
// timers that send nothing, SYN-ACKs answering a repeated SYN, and qdisc
// drops of a retransmission.

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// netstat returns a TcpExt counter of /proc/net/netstat in the namespace.
func netstat(t *testing.T, ns *Netns, counter string) int64 {
	t.Helper()
	out := ns.Exec(t, "cat", "/proc/net/netstat")
	var names []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, n := range names {
			if n == counter && i+1 < len(f) {
				v, err := strconv.ParseInt(f[i+1], 10, 64)
				require.NoError(t, err)
				return v
			}
		}
	}
	t.Fatalf("no TcpExt counter %s in /proc/net/netstat", counter)
	return 0
}

// While a probe is in flight (tp->tlp_high_seq set) and no ACK comes back,
// new data re-arms the probe timer, and tcp_send_loss_probe() then sends
// nothing. LOSS events are probes the kernel sends: never more than its own
// TCPLossProbes counter.
func TestLossOnlyForProbesThatAreSent(t *testing.T) {
	ns := NewNetns(t)
	// The server's pure ACKs never reach the client once connected.
	ns.Nft(t, `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp sport 9019 tcp flags & (syn|ack|fin|rst) == ack drop
	}
}`)
	g := LoadGadget(t, defaults)
	ln := ns.Listen(t, "tcp4", "127.0.0.1:9019")
	Drain(ln)

	before := netstat(t, ns, "TCPLossProbes")
	stop := make(chan struct{})
	writer := bulk(t, ns, "127.0.0.1:9019", 100, 15*time.Millisecond, 3*time.Second, stop)
	evs := g.Collect(t, 3*time.Second, nil)
	close(stop)
	require.NoError(t, <-writer)
	probes := netstat(t, ns, "TCPLossProbes") - before
	dump(t, filter(evs, to(9019)))

	loss := filter(evs, func(e Event) bool { return e.Dst.Port() == 9019 && e.Type == "LOSS" })
	t.Logf("LOSS events %d, probes sent (TCPLossProbes) %d", len(loss), probes)
	require.Positive(t, probes, "the kernel sent tail loss probes")
	require.NotEmpty(t, loss, "LOSS events")
	assert.LessOrEqual(t, int64(len(loss)), probes, "a LOSS event for a probe timer that sent nothing")
}

// A listener whose SYN-ACKs are lost sees the client's SYN again and answers
// it from tcp_check_req() while its own timer is still pending; when the
// timer expires it retransmits on its own. Each has its reason.
func TestDupSYNToldFromSYNACKTimeout(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, `table inet t {
	chain in {
		type filter hook input priority 0;
		tcp sport 9018 tcp flags & (syn|ack) == syn|ack drop
	}
}`)
	g := LoadGadget(t, defaults)
	ns.Listen(t, "tcp4", "127.0.0.1:9018")
	cport := connectRaw(t, ns, netip.AddrPortFrom(lo4, 9018), unix.AF_INET, 0)

	isSynack := func(reason string) func(Event) bool {
		return func(e Event) bool { return e.Type == "SYNACK" && e.Reason == reason && e.Src.Port() == 9018 }
	}
	evs := g.Collect(t, 8*time.Second, func(evs []Event) bool {
		return len(filter(evs, isSynack("DUP_SYN"))) >= 1 && len(filter(evs, isSynack("SYNACK_RTO"))) >= 1
	})
	dump(t, evs)
	dup := filter(evs, isSynack("DUP_SYN"))
	require.NotEmpty(t, dup, "SYN-ACK sent again for the client's repeated SYN")
	require.NotEmpty(t, filter(evs, isSynack("SYNACK_RTO")), "SYN-ACK retransmitted by the request's timer")
	for _, e := range dup {
		assert.Equal(t, "NEW_SYN_RECV", e.State)
		assert.Equal(t, "SYN|ACK", e.TCPFlags)
		assert.Equal(t, netip.AddrPortFrom(lo4, uint16(cport)), e.Dst)
	}
	// The client's own SYN retransmissions are there too.
	assert.NotEmpty(t, filter(evs, func(e Event) bool { return e.Type == "RETRANS" && e.Reason == "SYN_RTO" && e.Dst.Port() == 9018 }))
}

// A qdisc that drops the retransmission makes the transmit return
// NET_XMIT_DROP, a positive err in tcp:tcp_retransmit_skb (6.17 and later):
// shown as ENOBUFS, what the socket layer makes of it.
func TestQdiscDropIsENOBUFS(t *testing.T) {
	ns := NewNetns(t)
	g := LoadGadget(t, withFilters(Filters{Loss: 1, Synack: 1, Failed: 1}))
	// A FIFO of length 0 drops every packet on loopback.
	ns.Exec(t, "tc", "qdisc", "replace", "dev", "lo", "root", "pfifo", "limit", "0")
	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9020), unix.AF_INET, 0)

	if !kernelReportsFailedRetransmits(t) {
		evs := g.Collect(t, 4*time.Second, nil)
		assert.Empty(t, filter(evs, to(9020)), "kernels before 6.17 fire tcp_retransmit_skb only on success")
		return
	}
	evs := g.Collect(t, 8*time.Second, atLeast(1, to(9020)))
	dump(t, evs)
	failed := filter(evs, to(9020))
	require.NotEmpty(t, failed)
	for _, e := range failed {
		assert.Equal(t, "RETRANS_FAILED", e.Type)
		assert.Equal(t, uint32(unix.ENOBUFS), e.Error, "NET_XMIT_DROP: %s", e)
		assert.Equal(t, "SYN_RTO", e.Reason)
	}
}

// configHZ reads CONFIG_HZ from the running kernel's /proc/config.gz.
func configHZ(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/config.gz")
	require.NoError(t, err, "this test compares with the kernel's own CONFIG_HZ")
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err)
	b, err := io.ReadAll(z)
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CONFIG_HZ="); ok {
			hz, err := strconv.ParseUint(v, 10, 64)
			require.NoError(t, err)
			return hz
		}
	}
	t.Fatal("no CONFIG_HZ in /proc/config.gz")
	return 0
}

// The gadget infers HZ once, from the first event, and keeps it: it is the
// kernel's CONFIG_HZ, and rto is icsk_rto converted with it.
func TestHZInferredOnceAndRight(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropSYN, 9021))
	g := LoadGadget(t, defaults)
	known, ok := g.Coll.Variables["hz_known"]
	require.True(t, ok, "the object keeps HZ in the global hz_known")
	var hz uint64
	require.NoError(t, known.Get(&hz))
	require.Zero(t, hz, "nothing is known before the first event")

	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9021), unix.AF_INET, 0)
	evs := g.Collect(t, 4*time.Second, atLeast(1, to(9021)))
	require.NotEmpty(t, filter(evs, to(9021)))
	require.NoError(t, known.Get(&hz))
	assert.Equal(t, configHZ(t), hz, "HZ kept after the first event")
	assert.Equal(t, uint32(1000), filter(evs, to(9021))[0].RTO, "the first SYN timeout is 1 s")
}
