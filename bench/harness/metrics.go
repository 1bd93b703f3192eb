package main

import (
	"math"

	"trace_tcpretrans/bench/harness/stats"
)

// lossFree is the share of generated events a tracer must deliver, with
// no loss reported, for a level to count as sustained.
const lossFree = 0.99

// cost is the ns/run of the programs of one owner on one hook in a window.
func cost(progs []ProgStat, hook string) (float64, int64) {
	var ns, cnt int64
	for _, p := range progs {
		if p.Hook == hook {
			ns += p.RunNs
			cnt += p.RunCnt
		}
	}
	if cnt == 0 {
		return math.NaN(), 0
	}
	return float64(ns) / float64(cnt), cnt
}

func hasHook(t ToolResult, hook string) bool {
	for _, w := range t.Windows {
		for _, p := range w.Tool {
			if p.Hook == hook {
				return true
			}
		}
	}
	return false
}

// toolRuns is how often the tracer's own program(s) on the retransmission
// hook ran in a window (0 if it has none there).
func toolRuns(w Window) int64 {
	var n int64
	for _, p := range w.Tool {
		if p.Hook == "retransmit_skb" {
			n += p.RunCnt
		}
	}
	return n
}

// capture is the share of retransmissions delivered as events, against
// what the tracer's own program saw (it may see fewer than the tracepoint:
// see coverage), or the tracepoint hits if that is unknown.
func capture(w Window) float64 {
	g := toolRuns(w)
	if g == 0 {
		g = w.Hooks["retransmit_skb"]
	}
	if g == 0 {
		return math.NaN()
	}
	return float64(w.Counts.Retrans) / float64(g)
}

// coverage is how many of the tracepoint's hits the tracer's program saw.
func coverage(w Window) float64 {
	g := w.Hooks["retransmit_skb"]
	if g == 0 || toolRuns(w) == 0 {
		return math.NaN()
	}
	return float64(toolRuns(w)) / float64(g)
}

// segsPercent is the segs of the RETRANS events delivered against the
// namespace's TcpRetransSegs, in percent.
func segsPercent(w Window) float64 {
	if w.RetransSegs == 0 {
		return math.NaN()
	}
	return 100 * float64(w.Counts.RetransSegs) / float64(w.RetransSegs)
}

func windowOK(w Window) bool {
	return w.Error == "" && w.Counts.Lost == 0 && capture(w) >= lossFree
}

// genRate is how often per second the retransmission tracepoint fired
// during the load generator's run.
func genRate(w Window) float64 {
	d := 0.0
	if v, ok := w.Loadgen["duration_s"].(float64); ok {
		d = v
	}
	if d <= 0 {
		d = w.Seconds
	}
	return float64(w.Hooks["retransmit_skb"]) / d
}

func byLevel(t ToolResult, lv string) []Window {
	var out []Window
	for _, w := range t.Windows {
		if w.Level == lv {
			out = append(out, w)
		}
	}
	return out
}

func findTool(r *Result, name string) *ToolResult {
	if r == nil {
		return nil
	}
	for i := range r.Tools {
		if r.Tools[i].Name == name {
			return &r.Tools[i]
		}
	}
	return nil
}

func toolWindows(t *ToolResult) []Window {
	if t == nil {
		return nil
	}
	return t.Windows
}

// hookCosts: per window, the tool's ns/run on hook, the floor's, and their ratio.
func hookCosts(t *ToolResult, hook string) (tool, floor, ratio stats.Summary, runs int64) {
	var a, b, c []float64
	if t == nil {
		return stats.Summarize(nil), stats.Summarize(nil), stats.Summarize(nil), 0
	}
	for _, w := range t.Windows {
		x, n := cost(w.Tool, hook)
		y, _ := cost(w.Floor, hook)
		a, b, c = append(a, x), append(b, y), append(c, x/y)
		runs += n
	}
	return stats.Summarize(a), stats.Summarize(b), stats.Summarize(c), runs
}

// toolCost is the tool's ns/run on the retransmission hook.
func toolCost(t *ToolResult) stats.Summary {
	c, _, _, _ := hookCosts(t, "retransmit_skb")
	return c
}

// cpuPer10k pools CPU time and events over windows.
func cpuPer10k(ws []Window) float64 {
	var cpu float64
	var ev int64
	for _, w := range ws {
		cpu += w.CPUSec
		ev += w.Counts.Events
	}
	if ev == 0 {
		return math.NaN()
	}
	return cpu / float64(ev) * 1e4
}

func perWindow(ws []Window, f func(Window) float64) stats.Summary {
	var v []float64
	for _, w := range ws {
		v = append(v, f(w))
	}
	return stats.Summarize(v)
}

// percent makes f a percentage.
func percent(f func(Window) float64) func(Window) float64 {
	return func(w Window) float64 { return 100 * f(w) }
}

// sustained returns the highest level (in the given order) at which every
// run was loss-free, and that level's median generated rate.
func sustained(t *ToolResult, levels []Level) (string, float64) {
	best, rate := "", math.NaN()
	for _, lv := range levels {
		ws := byLevel(*t, lv.Name)
		if len(ws) == 0 {
			continue
		}
		ok := true
		for _, w := range ws {
			ok = ok && windowOK(w)
		}
		if ok {
			best, rate = lv.Name, perWindow(ws, genRate).Med
		}
	}
	return best, rate
}

func levelIndex(ls []Level, name string) int {
	for i, l := range ls {
		if l.Name == name {
			return i
		}
	}
	return -1
}

func levelName(ls []Level, i int) string {
	if i < 0 || i >= len(ls) {
		return ""
	}
	return ls[i].Name
}
