package main

import (
	"math"
	"strings"

	"trace_tcpretrans/bench/harness/stats"
)

// modeTools are this gadget's other ways of running in the VM, compared
// with its event stream ("ours") in "Metrics and count mode".
var modeTools = []string{"ours-metrics", "ours-count"}

// hits is how often the retransmission tracepoint fired in a window
// (the floor's run_cnt on it).
func hits(w Window) float64 { return float64(w.Hooks["retransmit_skb"]) }

// cpuPer10kRetrans is the tracer's CPU s per 10k retransmissions (floor
// hits), pooled over windows: unlike cpuPer10k, the same denominator
// for a tracer that prints every event and one that prints counts.
func cpuPer10kRetrans(ws []Window) float64 {
	var cpu, n float64
	for _, w := range ws {
		cpu += w.CPUSec
		n += hits(w)
	}
	if n == 0 {
		return math.NaN()
	}
	return cpu / n * 1e4
}

// skbCost is the tracer's ns/run on tcp_retransmit_skb in a window.
func skbCost(w Window) float64 {
	c, _ := cost(w.Tool, "retransmit_skb")
	return c
}

func rssMiB(w Window) float64 { return float64(w.HWMKiB) / 1024 }

// modeFigures are one tracer's figures at one level.
type modeFigures struct {
	cpu        float64 // CPU s per 10k retransmissions, pooled
	ns, rss    stats.Summary
	hits, evts stats.Summary
	lost       int64
}

func figuresOf(ws []Window) modeFigures {
	f := modeFigures{cpu: cpuPer10kRetrans(ws), ns: perWindow(ws, skbCost), rss: perWindow(ws, rssMiB),
		hits: perWindow(ws, hits), evts: perWindow(ws, func(w Window) float64 { return float64(w.Counts.Events) })}
	for _, w := range ws {
		f.lost += w.Counts.Lost
	}
	return f
}

// writeModes: this gadget with metrics and in count mode against its
// event stream, level by level. Left out when neither mode was measured.
func writeModes(m *md, vm *Result) {
	ours := findTool(vm, "ours")
	var modes []*ToolResult
	for _, n := range modeTools {
		if t := findTool(vm, n); t != nil {
			modes = append(modes, t)
		}
	}
	if ours == nil || len(modes) == 0 {
		return
	}
	m.p("## Metrics and count mode\n\n")
	m.p("This gadget run by ig three ways, one after the other through the same levels: the event stream (`%s`), ", ours.Command)
	m.p("the same with Prometheus metrics through ig's otel-metrics operator (`%s`: events are printed as well), ", strings.Join(metricsFlags, " "))
	m.p("and the count mode (`--count`: no events, one JSON array of per-flow counters per second, `--map-fetch-interval 1s`). ")
	m.p("CPU is utime+stime of the ig process per 10k retransmissions, the floor's `run_cnt` on `tcp_retransmit_skb` (not per event printed), so the three compare; ")
	m.p("BPF ns/run is the gadget's program on `tcp_retransmit_skb`; peak RSS is `VmHWM` of ig. ")
	m.p("Events for `--count` are the sum of `retrans`+`loss`+`failed` over its rows; it has no ring buffer, so nothing is reported lost. ")
	m.p("Ratios are of the medians (CPU: of the pooled figures).\n\n")
	m.p("| tracer | level | retransmissions per run | events counted | lost reported | CPU s per 10k retransmissions | BPF ns/run `tcp_retransmit_skb` | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n")
	for _, t := range append([]*ToolResult{ours}, modes...) {
		if t.Error != "" {
			m.p("| %s | – | – | failed: %s | | | | |\n", toolLabel[t.Name], oneLine(t.Error))
			continue
		}
		for _, lv := range vm.Levels {
			ws := byLevel(*t, lv.Name)
			if len(ws) == 0 {
				continue
			}
			f := figuresOf(ws)
			m.p("| %s | %s | %s | %s | %d | %s | %s | %s |\n", toolLabel[t.Name], lv.Name, f.hits.Format("", 0), f.evts.Format("", 0), f.lost,
				stats.Num(f.cpu, 3), f.ns.Format("", 0), f.rss.Format("", 0))
		}
	}
	m.p("\n| level | measure |")
	rule := "|---|---|"
	for _, t := range modes {
		m.p(" %s / this gadget |", toolLabel[t.Name])
		rule += "---|"
	}
	m.p("\n%s\n", rule)
	for _, lv := range vm.Levels {
		o := figuresOf(byLevel(*ours, lv.Name))
		for _, r := range []struct {
			name string
			f    func(modeFigures) float64
		}{
			{"CPU s per 10k retransmissions", func(f modeFigures) float64 { return f.cpu }},
			{"BPF ns/run on `tcp_retransmit_skb`", func(f modeFigures) float64 { return f.ns.Med }},
			{"peak RSS", func(f modeFigures) float64 { return f.rss.Med }},
		} {
			m.p("| %s | %s |", lv.Name, r.name)
			for _, t := range modes {
				ws := byLevel(*t, lv.Name)
				if t.Error != "" || len(ws) == 0 || ours.Error != "" {
					m.p(" n/a |")
					continue
				}
				m.p(" %s |", stats.Ratio(r.f(figuresOf(ws)), r.f(o)))
			}
			m.p("\n")
		}
	}
	if t := findTool(vm, "ours-metrics"); t != nil && t.Error == "" {
		m.p("\n/metrics of `ours + metrics`, read just before it stopped (summed over labels, all levels): %s.\n", metricsRead(t.Tail))
	}
	m.p("\n")
}

// metricsRead is what the tail says of /metrics: the line scrape wrote,
// or else the sum of the samples in it.
func metricsRead(tail string) string {
	for _, l := range strings.Split(tail, "\n") {
		if s, ok := strings.CutPrefix(l, metricsPrefix); ok {
			return "`" + s + "`"
		}
	}
	if s := metricsSummary(tail); s != "no tcp_retransmit sample" {
		return "`" + s + "`"
	}
	return "not read"
}
