package main

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vmModesResult: vmResult with this gadget also run with metrics (5,000
// ns/run, 1.5 s and 1.8 s of CPU, 150 MiB) and in count mode (4,400
// ns/run, 0.2 s and 0.45 s, 80 MiB); ours takes 1.0 s and 0.9 s for 100
// retransmissions a level, 4,000 ns/run, 100 MiB.
func vmModesResult() *Result {
	r := vmResult()
	rss := func(w Window, mib int64) Window { w.HWMKiB = mib * 1024; return w }
	r.Tools = append(r.Tools,
		ToolResult{Name: "ours-metrics", Label: "this gadget via ig, with metrics (otel-metrics)",
			Tail: "some line\n" + metricsPrefix + "tcp_retransmit_events_total=190 tcp_retransmitted_segments_total=200", Windows: []Window{
				rss(window("8:50:0", 10, 5000, 400, 100, 0, 1.5), 150),
				rss(window("16:10:400", 5, 5000, 400, 90, 10, 1.8), 150)}},
		ToolResult{Name: "ours-count", Label: "this gadget via ig --count", Windows: []Window{
			rss(window("8:50:0", 10, 4400, 400, 100, 0, 0.2), 80),
			rss(window("16:10:400", 5, 4400, 400, 100, 0, 0.45), 80)}})
	return r
}

func TestClassifyIGCount(t *testing.T) {
	var c Counts
	for _, l := range []string{
		`[]`,
		`[{"src":"127.0.0.1:9500","dst":"127.0.0.1:43210","proc":{"comm":"loadgen"},"last_state":"ESTABLISHED","retrans":5,"segs":7,"rto":2,"fast_recovery":2,"tlp":1,` +
			`"syn_rto":0,"synack_rto":0,"dup_syn":0,"other":0,"loss":3,"failed":1},` +
			`{"src":"127.0.0.1:9501","dst":"127.0.0.1:43211","retrans":4,"segs":4,"synack_rto":1,"dup_syn":2,"syn_rto":1,"loss":0,"failed":0}]`,
		`  [{"retrans":1,"segs":1,"loss":0,"failed":0}]`,
		`{"retrans":100}`,
		`[not json`,
		`WARN[0000] something`,
	} {
		classifyIGCount(l, &c)
	}
	assert.Equal(t, Counts{Events: 5 + 3 + 1 + 4 + 1, Retrans: 5 + 1 + 1, RetransSegs: 12, Loss: 3, Synack: 3}, c,
		"events: retrans+loss+failed; SYNACK reasons apart from retrans")
}

func TestIGModeTools(t *testing.T) {
	names := map[string]string{"ig_tcpretrans": "retransmit_skb"}
	m := igMetricsTool("bin/ig", "img", names)
	assert.Equal(t, []string{"bin/ig", "run", "img", "--verify-image=false", "--host",
		"--annotate", "tcpretrans:metrics.collect=true", "--otel-metrics-listen", "--otel-metrics-listen-address", "127.0.0.1:2224",
		"--otel-metrics-name", "tcpretrans:tcpretrans", "-o", "json"}, m.argv)
	assert.Equal(t, "http://127.0.0.1:2224/metrics", m.scrapeURL)
	var c Counts
	m.classify(`{"type":"RETRANS","segs":2}`, &c)
	assert.Equal(t, Counts{Events: 1, Retrans: 1, RetransSegs: 2}, c, "events counted as ours")

	n := igCountTool("bin/ig", "img", names)
	assert.Equal(t, []string{"bin/ig", "run", "img", "--verify-image=false", "--host", "--count", "--map-fetch-interval", "1s", "-o", "json"}, n.argv)
	assert.Equal(t, "retransmit_skb", n.HookOf(ProgStat{Name: "ig_tcpretrans"}))
	assert.Equal(t, []string{"bin/ig", "run", "img", "--verify-image=false", "--host", "-o", "json"}, igTool("bin/ig", "img", nil).argv,
		"the metrics flags are not shared")

	n.readyCh = make(chan struct{})
	n.scan(strings.NewReader("[]\n"+`[{"retrans":2,"segs":3,"loss":1,"failed":0}]`+"\nreading: lost 4 samples\nstarting\n"), false)
	assert.Equal(t, Counts{Events: 3, Retrans: 2, RetransSegs: 3, Loss: 1, Lost: 4}, n.Counts())
	assert.Equal(t, []string{"reading: lost 4 samples", "starting"}, n.tail, "arrays stay out of the tail")
}

func TestMetricsSummary(t *testing.T) {
	text := "# HELP tcp_retransmit_events_total Events\n# TYPE tcp_retransmit_events_total counter\n" +
		`tcp_retransmit_events_total{otel_scope_name="tcpretrans",reason="RTO",type="RETRANS"} 10` + "\n" +
		`tcp_retransmit_events_total{reason="TLP",type="LOSS",workload="a b"} 2.5e+01` + "\n" +
		"tcp_retransmitted_segments_total 7\n" +
		"tcp_retransmit_broken{x=\"1\"} notanumber\n" +
		"go_goroutines 12\n"
	assert.Equal(t, "tcp_retransmit_events_total=35 tcp_retransmitted_segments_total=7", metricsSummary(text))
	assert.Equal(t, "no tcp_retransmit sample", metricsSummary("go_goroutines 1\n"))

	assert.Equal(t, "`a=1`", metricsRead("x\n"+metricsPrefix+"a=1\ny"))
	assert.Equal(t, "`tcp_retransmit_events_total=3`", metricsRead("tcp_retransmit_events_total{a=\"b\"} 3\n"), "samples in the tail")
	assert.Equal(t, "not read", metricsRead("exit\n"))
}

func TestCPUPer10kRetrans(t *testing.T) {
	ws := []Window{window("l", 10, 1, 1, 50, 0, 1.0), window("l", 10, 1, 1, 0, 0, 3.0)}
	assert.InDelta(t, 200.0, cpuPer10kRetrans(ws), 1e-9, "4 s over 200 tracepoint hits, whatever was printed")
	assert.True(t, math.IsNaN(cpuPer10kRetrans(nil)))
	assert.True(t, math.IsNaN(cpuPer10kRetrans([]Window{{Hooks: map[string]int64{}, CPUSec: 1}})))
}

func TestModes(t *testing.T) {
	got := render(func(m *md) { writeModes(m, vmModesResult()) })
	for _, w := range []string{
		"## Metrics and count mode\n\n",
		"--annotate tcpretrans:metrics.collect=true --otel-metrics-listen --otel-metrics-listen-address 127.0.0.1:2224 --otel-metrics-name tcpretrans:tcpretrans",
		"| this gadget | 8:50:0 | 100 | 100 | 0 | 100.000 | 4,000 | 100 |\n",
		"| this gadget | 16:10:400 | 100 | 90 | 10 | 90.000 | 4,000 | 100 |\n",
		"| this gadget + metrics | 8:50:0 | 100 | 100 | 0 | 150.000 | 5,000 | 150 |\n",
		"| this gadget --count | 16:10:400 | 100 | 100 | 0 | 45.000 | 4,400 | 80 |\n",
		"| level | measure | this gadget + metrics / this gadget | this gadget --count / this gadget |\n|---|---|---|---|\n",
		"| 8:50:0 | CPU s per 10k retransmissions | 1.50× | 0.20× |\n",
		"| 8:50:0 | BPF ns/run on `tcp_retransmit_skb` | 1.25× | 1.10× |\n",
		"| 8:50:0 | peak RSS | 1.50× | 0.80× |\n",
		"| 16:10:400 | CPU s per 10k retransmissions | 2.00× | 0.50× |\n",
		"(summed over labels, all levels): `tcp_retransmit_events_total=190 tcp_retransmitted_segments_total=200`.\n",
	} {
		assert.Contains(t, got, w)
	}

	r := vmModesResult()
	r.Tools[4] = ToolResult{Name: "ours-count", Error: "ig exited before attaching:\n  bad flag"}
	r.Tools[3].Tail = ""
	got = render(func(m *md) { writeModes(m, r) })
	assert.Contains(t, got, "| this gadget --count | – | – | failed: ig exited before attaching: bad flag | | | | |\n")
	assert.Contains(t, got, "| 8:50:0 | CPU s per 10k retransmissions | 1.50× | n/a |\n")
	assert.Contains(t, got, "read just before it stopped (summed over labels, all levels): not read.")

	assert.Empty(t, render(func(m *md) { writeModes(m, vmResult()) }), "no mode measured: no section")
	r.Tools = r.Tools[1:]
	assert.Empty(t, render(func(m *md) { writeModes(m, r) }), "no event stream to compare with")
}

func TestWriteReportWithModes(t *testing.T) {
	got := writeReport(reportInput{Nat: nativeResult(), VM: vmModesResult(), Command: "make bench"})
	e2e, modes, progs := strings.Index(got, "## End to end in the VM"), strings.Index(got, "## Metrics and count mode"), strings.Index(got, "## Programs seen")
	require.Positive(t, modes)
	assert.Less(t, e2e, modes)
	assert.Less(t, modes, progs)
	assert.Contains(t, got, "| this gadget + metrics | tracepoint tcp_retransmit_skb | 200 | 5,000 (5,000–5,000) | 400 (400–400) | 12.5× (12.5–12.5) |\n", "cost table")
	assert.NotContains(t, writeReport(reportInput{Nat: nativeResult(), VM: vmResult(), Command: "make bench"}), "## Metrics and count mode")
}
