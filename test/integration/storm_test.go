//go:build integration

package integration

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

var (
	loadgen  = flag.String("loadgen", "../../.build/loadgen", "the load generator (test/loadgen)")
	timeline = flag.String("timeline", "", "write the storm's retransmissions per second and reason to this file (README's chart)")
)

// retransSegs reads Tcp RetransSegs of a network namespace.
func retransSegs(t *testing.T, ns *gadgettest.Netns) int64 {
	t.Helper()
	n, err := ns.SNMP("Tcp", "RetransSegs")
	require.NoError(t, err)
	return n
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return v
		}
	}
	return -1
}

// A bounded retransmission storm: many SYN-dropped connections and lossy
// bulk transfers for about a minute. ig keeps running, its memory stays
// bounded, and events it could not deliver are reported, not hidden.
// stormPorts are the storm's listeners: every retransmission of the
// namespace, by either end, has one of them as its source or destination.
var stormPorts = []string{"9500", "9501"}

func TestStorm(t *testing.T) {
	ig := StartIG(t, "--host", "-o", "json", "--fields", "type,reason,segs,src,dst,timestamp")
	ns := netns(t, "table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 9501 tcp flags & (syn|ack) == syn drop\n  tcp dport 9500 numgen random mod 20 == 0 drop\n }\n}\n")
	before := retransSegs(t, ns)

	// The generator runs niced, as a background workload would: its bulk
	// streams would otherwise take as much of the guest's one host thread
	// as TCG gives them and starve ig (on a loaded host ig drained about
	// 90 events/s and the ring buffer overflowed), while the storm's
	// retransmissions, timed by the kernel, come at the same rate.
	gen := ns.Command("nice", "-n", "10", *loadgen, "-streams", "8", "-syn-rate", "50", "-duration", "50s")
	out := &strings.Builder{}
	gen.Stdout, gen.Stderr = out, out
	require.NoError(t, gen.Start())
	done := make(chan error, 1)
	go func() { done <- gen.Wait() }()

	var maxRSS int64
	pid := ig.cmd.Process.Pid
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			require.NoError(t, err, out.String())
			break wait
		case <-tick.C:
			maxRSS = max(maxRSS, rssKiB(pid))
			select {
			case <-ig.done:
				t.Fatalf("ig exited during the storm: %s", ig.stderr)
			default:
			}
		}
	}
	// Retransmissions in flight end within a few RTOs; ig has drained
	// the ring buffer when no row has come for 3 s.
	ig.waitQuiet(3*time.Second, 60*time.Second)
	retrans := retransSegs(t, ns) - before
	ig.Stop(t)

	var segs int64
	evs := ig.Events(t)
	for _, e := range evs {
		ours := slices.Contains(stormPorts, str(e, "dst.port")) || slices.Contains(stormPorts, str(e, "src.port"))
		if ours && (str(e, "type") == "RETRANS" || str(e, "type") == "SYNACK") {
			n, _ := strconv.ParseInt(str(e, "segs"), 10, 64)
			segs += n
		}
	}
	if *timeline != "" {
		require.NoError(t, writeTimeline(*timeline, evs))
	}
	lostReported := strings.Contains(ig.stderr.String(), "lost")
	t.Logf("loadgen: %s", strings.TrimSpace(out.String()))
	t.Logf("storm: kernel RetransSegs=%d, segments in RETRANS events=%d, events=%d %s, ig max RSS=%d MiB, lost reported=%v",
		retrans, segs, len(evs), summary(evs), maxRSS/1024, lostReported)

	require.Greater(t, retrans, int64(1000), "the storm caused retransmissions")
	assert.Less(t, maxRSS, int64(1<<20), "ig's memory stays under 1 GiB")
	// Nothing is lost: ig read every event the programs submitted, and the
	// events account for the segments the kernel counted in the namespace
	// (exactly on 5.10; on 7.3 0.4% fewer in one run, though ig lost
	// nothing: a difference of accounting not explained yet).
	assert.False(t, lostReported, "ig reported lost events: %s", ig.stderr)
	assert.GreaterOrEqual(t, segs, retrans*99/100, "%d of %d retransmitted segments missing", retrans-segs, retrans)
	assert.LessOrEqual(t, segs, retrans+retrans/20, "no more segments reported than the kernel retransmitted")
}

// writeTimeline writes, per second since the first event, the storm's
// retransmissions (RETRANS and SYNACK events) by reason and its LOSS
// events, tab-separated with a header: the data of README's chart.
func writeTimeline(path string, evs []map[string]any) error {
	reasons := contract.Reason.Names()
	var start time.Time
	rows := map[int][]int{}
	last := 0
	for _, e := range evs {
		ts, err := time.Parse(time.RFC3339Nano, str(e, "timestamp"))
		if err != nil {
			return fmt.Errorf("event %v: %w", e, err)
		}
		if start.IsZero() {
			start = ts
		}
		sec := int(ts.Sub(start) / time.Second)
		if rows[sec] == nil {
			rows[sec] = make([]int, len(reasons)+1)
		}
		last = max(last, sec)
		if str(e, "type") == "LOSS" {
			rows[sec][len(reasons)]++
		} else if i := slices.Index(reasons, str(e, "reason")); i >= 0 {
			rows[sec][i]++
		}
	}
	var b strings.Builder
	b.WriteString("second\t" + strings.Join(reasons, "\t") + "\tLOSS events\n")
	for sec := 0; sec <= last; sec++ {
		r := rows[sec]
		if r == nil {
			r = make([]int, len(reasons)+1)
		}
		fmt.Fprintf(&b, "%d", sec)
		for _, n := range r {
			fmt.Fprintf(&b, "\t%d", n)
		}
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
