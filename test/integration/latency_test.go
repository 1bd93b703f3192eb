//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// delivered is an event and how long it took from the kernel to ig's
// output.
type delivered struct {
	ev      map[string]any
	latency time.Duration
}

// Delivered decodes the JSON lines so far with the time each took from its
// timestamp (timestamp_raw, ns since the epoch) to ig's output.
func (g *IG) Delivered(t *testing.T) []delivered {
	t.Helper()
	g.mu.Lock()
	lines, arrived := append([]string(nil), g.lines...), append([]time.Time(nil), g.arrived...)
	g.mu.Unlock()
	var out []delivered
	for i, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "{") {
			continue
		}
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &ev), l)
		ts, ok := ev["timestamp_raw"].(float64)
		require.True(t, ok, "timestamp_raw in %s", l)
		out = append(out, delivered{ev, arrived[i].Sub(time.Unix(0, int64(ts)))})
	}
	return out
}

// With --max-delay 1s, a lone retransmission still reaches ig's output at
// once, and the last retransmission of a burst within the bound: ig is not
// left asleep with events in the ring buffer.
func TestDeliveryLatency(t *testing.T) {
	const maxDelay = time.Second
	// ig decoding and printing under QEMU/TCG, above the bound.
	const slack = 1500 * time.Millisecond
	ig := StartIG(t, "--host", "-o", "json", "--max-delay", "1s")
	ns := netns(t, "table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 9600 tcp flags & (syn|ack) == syn drop\n  tcp dport 9601 numgen random mod 10 == 0 drop\n }\n}\n")
	port := func(p string) func(delivered) bool {
		return func(d delivered) bool { return str(d.ev, "dst.port") == p || str(d.ev, "src.port") == p }
	}
	pick := func(keep func(delivered) bool) []delivered {
		var out []delivered
		for _, d := range ig.Delivered(t) {
			if keep(d) {
				out = append(out, d)
			}
		}
		return out
	}

	t.Run("lone retransmission at once", func(t *testing.T) {
		c := connect(ns, "127.0.0.1", 9600, 5)
		defer c.Wait()
		ig.wait(20*time.Second, func() bool { return len(pick(port("9600"))) >= 2 })
		syn := pick(port("9600"))
		require.GreaterOrEqual(t, len(syn), 2, "SYN retransmissions after 1 s and 3 s")
		for _, d := range syn[:2] {
			t.Logf("%s %s: delivered after %s", str(d.ev, "reason"), str(d.ev, "timestamp"), d.latency)
			assert.Less(t, d.latency, maxDelay/2, "a lone event is not held back for --max-delay")
		}
	})

	t.Run("end of a burst within the bound", func(t *testing.T) {
		gen := ns.Command(*loadgen, "-streams", "4", "-syn-rate", "0", "-duration", "4s", "-listen", "127.0.0.1:9601")
		out, err := gen.CombinedOutput()
		require.NoError(t, err, string(out))
		// The drops stop; retransmissions in flight end within a few RTOs.
		require.NoError(t, ns.Nft("flush ruleset"))
		time.Sleep(3 * time.Second)
		burst := pick(port("9601"))
		require.GreaterOrEqual(t, len(burst), 20, "retransmissions of the lossy streams")
		last, worst := burst[len(burst)-1], burst[0]
		for _, d := range burst {
			if d.latency > worst.latency {
				worst = d
			}
		}
		t.Logf("%d events; the last delivered after %s, the slowest after %s", len(burst), last.latency, worst.latency)
		assert.LessOrEqual(t, last.latency, maxDelay+slack, "the last event of the burst")
		assert.LessOrEqual(t, worst.latency, maxDelay+slack, "every event of the burst")
	})
}
