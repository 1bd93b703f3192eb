//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

// The metrics' listener: loopback only.
const metricsAddr = "127.0.0.1:2224"

// Metric names as Prometheus shows them (gadget.yaml, with the _total of
// counters).
const (
	eventsMetric   = "tcp_retransmit_events_total"
	segmentsMetric = "tcp_retransmitted_segments_total"
)

// metricsArgs are README's ig run flags that turn the metrics on.
var metricsArgs = []string{
	"--annotate", contract.DataSource + ":metrics.collect=true",
	"--otel-metrics-listen", "--otel-metrics-listen-address", metricsAddr,
	"--otel-metrics-name", contract.DataSource + ":" + contract.DataSource,
}

// series identifies a metric series by the labels the test checks.
type series struct {
	Container, Type, Reason string
}

// scrape reads the metrics' listener and returns each metric's series;
// the lines of series whose labels contain logFor are logged.
func scrape(t *testing.T, logFor ...string) map[string]map[series]int64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, l := range strings.Split(string(body), "\n") {
		if slices.ContainsFunc(logFor, func(s string) bool { return strings.Contains(l, s) }) {
			t.Logf("/metrics: %s", l)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	out := map[string]map[series]int64{}
	for _, name := range []string{eventsMetric, segmentsMetric} {
		out[name] = map[series]int64{}
		fam, ok := fams[name]
		if !ok {
			continue
		}
		require.Equal(t, dto.MetricType_COUNTER, fam.GetType(), name)
		for _, m := range fam.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			for _, k := range []string{"src", "dst", "addr", "port", "src_addr", "dst_addr"} {
				assert.NotContains(t, l, k, "no per-connection label in %s", name)
			}
			out[name][series{l["runtime_container"], l["type"], l["reason"]}] += int64(m.GetCounter().GetValue())
		}
	}
	return out
}

// num reads a JSON number at a dotted path.
func num(ev map[string]any, path string) int64 {
	f, _ := get(ev, path).(float64)
	return int64(f)
}

// flowOf names an event's or a flow row's connection.
func flowOf(ev map[string]any) string {
	return fmt.Sprintf("%d %s:%s>%s:%s", num(ev, "netns_id"), str(ev, "src.addr"), str(ev, "src.port"),
		str(ev, "dst.addr"), str(ev, "dst.port"))
}

// flowCounts are a flow's counters as the count mode shows them.
type flowCounts map[string]int64

// countsOfEvents adds up the events of one flow as the count mode does.
func countsOfEvents(evs []map[string]any) map[string]flowCounts {
	out := map[string]flowCounts{}
	for _, e := range evs {
		f := flowOf(e)
		if out[f] == nil {
			out[f] = flowCounts{}
		}
		switch str(e, "type") {
		case "LOSS":
			out[f]["loss"]++
		case "RETRANS_FAILED":
			out[f]["failed"]++
		default:
			out[f]["retrans"]++
			out[f]["segs"] += num(e, "segs")
			out[f][strings.ToLower(str(e, "reason"))]++
		}
	}
	return out
}

// countRows decodes the count mode's JSON arrays (one per fetch) and adds
// up the rows of each flow; lastState keeps each flow's last state.
func countRows(t *testing.T, lines []string) (map[string]flowCounts, map[string]string, int) {
	t.Helper()
	out, last, arrays := map[string]flowCounts{}, map[string]string{}, 0
	keys := []string{"retrans", "segs", "loss", "failed"}
	for _, r := range contract.Reason.Names() {
		keys = append(keys, strings.ToLower(r))
	}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "[") {
			continue
		}
		arrays++
		var rows []map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rows), l)
		for _, r := range rows {
			f := flowOf(r)
			if out[f] == nil {
				out[f] = flowCounts{}
			}
			for _, k := range keys {
				if v := num(r, k); v != 0 {
					out[f][k] += v
				}
			}
			last[f] = str(r, "last_state")
		}
	}
	return out, last, arrays
}

// container is a running container's init process.
type container struct {
	Name  string
	PID   int
	Netns uint64
}

func inspect(t *testing.T, name string) container {
	t.Helper()
	var pid int
	_, err := fmt.Sscan(sh(t, "docker inspect -f '{{.State.Pid}}' "+name), &pid)
	require.NoError(t, err)
	st, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
	require.NoError(t, err)
	return container{name, pid, st.Sys().(*syscall.Stat_t).Ino}
}

// retransSegs reads Tcp RetransSegs in the container's network namespace.
func (c container) retransSegs(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/snmp", c.PID))
	require.NoError(t, err)
	n, err := gadgettest.SNMPField(string(b), "Tcp", "RetransSegs")
	require.NoError(t, err)
	return n
}

// quiesce ends the container's retransmissions: the link stops dropping,
// and the test waits until no connection is left but TIME-WAIT ones (which
// send nothing more).
func (c container) quiesce(t *testing.T) {
	t.Helper()
	ns := fmt.Sprintf("nsenter -t %d -n ", c.PID)
	sh(t, ns+"tc qdisc del dev eth0 root")
	end := time.Now().Add(120 * time.Second)
	for {
		out, err := exec.Command("bash", "-c", ns+"ss -Htan state all exclude time-wait").CombinedOutput()
		require.NoError(t, err, "%s", out)
		if strings.TrimSpace(string(out)) == "" {
			return
		}
		require.True(t, time.Now().Before(end), "connections of %s still open after 120 s:\n%s", c.Name, out)
		time.Sleep(time.Second)
	}
}

// StartCount runs the count mode next to an ig already attached; it is
// ready when it prints its first fetch (an array, maybe empty).
func StartCount(t *testing.T, args ...string) *IG {
	t.Helper()
	cmd := exec.Command(igBin(), append([]string{"run", *image, "--verify-image=false", "--count", "-o", "json"}, args...)...)
	g := startIG(t, cmd)
	g.wait(240*time.Second, func() bool {
		return slices.ContainsFunc(g.Lines(), func(l string) bool { return strings.HasPrefix(l, "[") })
	})
	select {
	case <-g.done:
		t.Fatalf("ig --count exited: %v\n%s", cmd.ProcessState, g.stderr)
	default:
	}
	require.True(t, slices.ContainsFunc(g.Lines(), func(l string) bool { return strings.HasPrefix(l, "[") }),
		"ig --count printed no fetch within 240 s\n%s", g.stderr)
	return g
}

// Metrics and the count mode against the events of the same traffic: two
// lossy containers download from the web server while one ig prints events
// and serves metrics, and another counts flows.
func TestMetricsAndCounts(t *testing.T) {
	events := StartIG(t, append([]string{"-o", "json"}, metricsArgs...)...)
	counts := StartCount(t, "--map-fetch-interval", "2s")

	names := []string{"metrics-a", "metrics-b"}
	var clients []container
	before := map[string]int64{}
	for _, n := range names {
		LossyClient(t, n, 25)
		c := inspect(t, n)
		clients = append(clients, c)
		before[n] = c.retransSegs(t)
	}
	for round := 0; round < 6; round++ {
		for _, n := range names {
			Fetch(t, n, 2)
		}
		if s := scrape(t)[segmentsMetric]; s[series{names[0], "RETRANS", "RTO"}] > 0 && s[series{names[1], "RETRANS", "RTO"}] > 0 &&
			s[series{names[0], "RETRANS", "TLP"}]+s[series{names[1], "RETRANS", "TLP"}] > 0 {
			break
		}
	}
	for _, c := range clients {
		c.quiesce(t)
	}
	// Every event of the clients is in; wait for ig to print them.
	time.Sleep(2 * time.Second)
	metrics := scrape(t, `runtime_container="`+names[0]+`"`, `runtime_container="`+names[1]+`"`)
	counts.Stop(t)
	events.Stop(t)
	evs := events.Events(t)

	// Each mode prints only its own data source.
	assert.False(t, slices.ContainsFunc(events.Lines(), func(l string) bool { return strings.HasPrefix(l, "[") }),
		"no flows printed without --count")
	assert.False(t, slices.ContainsFunc(counts.Lines(), func(l string) bool { return strings.HasPrefix(l, "{") }),
		"no event printed with --count")

	// 1. The metrics are the events, added up by container, type and reason.
	for _, c := range clients {
		wantEvents, wantSegs := map[series]int64{}, map[series]int64{}
		var netnsSegs int64
		for _, e := range evs {
			if num(e, "netns_id") == int64(c.Netns) && str(e, "type") != "LOSS" {
				netnsSegs += num(e, "segs")
			}
			if str(e, "runtime.containerName") != c.Name {
				continue
			}
			s := series{c.Name, str(e, "type"), str(e, "reason")}
			wantEvents[s]++
			wantSegs[s] += num(e, "segs")
		}
		gotEvents, gotSegs := map[series]int64{}, map[series]int64{}
		var metricSegs int64
		for s, v := range metrics[eventsMetric] {
			if s.Container == c.Name {
				gotEvents[s] = v
			}
		}
		for s, v := range metrics[segmentsMetric] {
			if s.Container == c.Name && s.Type != "LOSS" {
				gotSegs[s] = v
				metricSegs += v
			}
		}
		for s := range wantSegs {
			if s.Type == "LOSS" {
				delete(wantSegs, s)
			}
		}
		kernel := c.retransSegs(t) - before[c.Name]
		t.Logf("%s: kernel TcpRetransSegs +%d, segments in events of its netns %d, in its metrics %d; series: %v",
			c.Name, kernel, netnsSegs, metricSegs, gotSegs)
		assert.Positive(t, gotSegs[series{c.Name, "RETRANS", "RTO"}], "RTO segments of %s", c.Name)
		assert.Equal(t, wantEvents, gotEvents, "event counter of %s by type and reason", c.Name)
		assert.Equal(t, wantSegs, gotSegs, "segment counter of %s by type and reason", c.Name)
		assert.Equal(t, kernel, netnsSegs, "segments in the events of %s's netns against the kernel's counter", c.Name)
		// README: the metrics carry the container of the socket's owner,
		// which a socket whose process exited no longer has.
		assert.LessOrEqual(t, metricSegs, kernel)
		assert.GreaterOrEqual(t, metricSegs, kernel*9/10, "at most 10%% of %s's segments unattributed", c.Name)
	}

	// 2. The count mode's flows are the events, flow by flow.
	got, last, arrays := countRows(t, counts.Lines())
	t.Logf("count mode: %d fetches", arrays)
	for _, l := range counts.Lines() {
		if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(l, `"containerName":"`+n+`"`) }) {
			t.Logf("count mode: %s", l)
		}
	}
	assert.GreaterOrEqual(t, arrays, 2, "a fetch per interval and one at stop")
	assert.NotContains(t, counts.stderr.String(), "not counted", "no flow found the table full")
	assert.NotContains(t, counts.stderr.String(), "reading "+contract.FlowsDroppedMap, "the wasm operator reads the drop counter after each fetch")
	for _, c := range clients {
		var mine []map[string]any
		for _, e := range evs {
			if num(e, "netns_id") == int64(c.Netns) {
				mine = append(mine, e)
			}
		}
		want := countsOfEvents(mine)
		gotMine := map[string]flowCounts{}
		for f, v := range got {
			if strings.HasPrefix(f, fmt.Sprintf("%d ", c.Netns)) {
				gotMine[f] = v
			}
		}
		require.NotEmpty(t, want, "events of %s", c.Name)
		assert.Equal(t, want, gotMine, "flows of %s: count mode against events", c.Name)
		// A flow's state is the one of its last event.
		wantLast, gotLast := map[string]string{}, map[string]string{}
		for _, e := range mine {
			wantLast[flowOf(e)] = str(e, "state")
			gotLast[flowOf(e)] = last[flowOf(e)]
		}
		assert.Equal(t, wantLast, gotLast, "last states of the flows of %s", c.Name)
	}
}
