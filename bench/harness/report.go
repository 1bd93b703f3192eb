package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// lossFree is the share of generated events a tracer must deliver, with
// no loss reported, for a level to count as sustained.
const lossFree = 0.99

type mmm struct {
	N             int
	Min, Med, Max float64
}

func summarize(xs []float64) mmm {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return mmm{Min: math.NaN(), Med: math.NaN(), Max: math.NaN()}
	}
	sort.Float64s(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return mmm{len(v), v[0], med, v[len(v)-1]}
}

func (m mmm) fmt(unit string, prec int) string {
	if m.N == 0 {
		return "n/a"
	}
	f := func(x float64) string { return fmtNum(x, prec) }
	if m.N == 1 {
		return f(m.Med) + unit
	}
	return fmt.Sprintf("%s%s (%s–%s)", f(m.Med), unit, f(m.Min), f(m.Max))
}

func fmtNum(x float64, prec int) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	s := fmt.Sprintf("%.*f", prec, x)
	// thousands separators for the integer part
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

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

func windowOK(w Window) bool {
	return w.Error == "" && w.Counts.Lost == 0 && capture(w) >= lossFree
}

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

// hookCosts: per window, the tool's ns/run on hook, the floor's, and their ratio.
func hookCosts(t *ToolResult, hook string) (tool, floor, ratio mmm, runs int64) {
	var a, b, c []float64
	if t == nil {
		return summarize(nil), summarize(nil), summarize(nil), 0
	}
	for _, w := range t.Windows {
		x, n := cost(w.Tool, hook)
		y, _ := cost(w.Floor, hook)
		a, b, c = append(a, x), append(b, y), append(c, x/y)
		runs += n
	}
	return summarize(a), summarize(b), summarize(c), runs
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

func perWindow(ws []Window, f func(Window) float64) mmm {
	var v []float64
	for _, w := range ws {
		v = append(v, f(w))
	}
	return summarize(v)
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

func loadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	return &r, json.Unmarshal(b, &r)
}

var toolOrder = []string{"ours", "compare", "bcc", "bpftrace"}

var toolLabel = map[string]string{"floor": "floor (empty program)", "ours": "this gadget", "compare": "comparison image",
	"bcc": "BCC tcpretrans", "bpftrace": "bpftrace tcpretrans.bt", "ours-nodrain": "this gadget, ring buffer not read", "ours-batched": "this gadget, ring buffer read every 50 ms"}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	nativePath := fs.String("native", "", "native result")
	vmPath := fs.String("vm", "", "VM result")
	dir := fs.String("dir", "bench/results", "output directory")
	compareImage := fs.String("compare-image", "", "COMPARE_IMAGE as given")
	wall := fs.Int("wall", 0, "total seconds of make bench")
	command := fs.String("command", "make bench", "the command that ran")
	commit := fs.String("commit", "", "git commit of the gadget measured")
	var extra notesFlag
	fs.Var(&extra, "note", "a note about this run for the report (repeatable)")
	_ = fs.Parse(args)

	nat, err := loadResult(*nativePath)
	if err != nil {
		return fmt.Errorf("native result: %w", err)
	}
	vm, err := loadResult(*vmPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: no VM result (%v); the report covers the native part only\n", err)
		vm = nil
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	raw := map[string]any{"native": nat, "vm": vm, "compare_image": *compareImage, "command": *command, "wall_s": *wall, "commit": *commit, "notes": extra}
	b, _ := json.MarshalIndent(raw, "", "  ")
	if err := os.WriteFile(filepath.Join(*dir, "raw.json"), b, 0o644); err != nil {
		return err
	}
	md := writeReport(nat, vm, *compareImage, *wall, *command, *commit, extra)
	if err := os.WriteFile(filepath.Join(*dir, "REPORT.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return writeChart(nat, vm, *dir)
}

func goal(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

type notesFlag []string

func (n *notesFlag) String() string     { return strings.Join(*n, "; ") }
func (n *notesFlag) Set(v string) error { *n = append(*n, v); return nil }

func writeReport(nat, vm *Result, compareImage string, wall int, command, commit string, extra []string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("# Benchmark: trace_tcpretrans against the floor, BCC, bpftrace and other gadgets\n\n")
	p("Generated by `make bench` (bench/run.sh, bench/harness). Raw data: `raw.json`; chart: `bench.png`.\n\n")
	p("| | |\n|---|---|\n")
	p("| date (UTC) | %s |\n", nat.Date)
	p("| command | `%s` |\n", command)
	if commit != "" {
		p("| gadget measured | commit `%s` of this repository (image and `.build/amd64.bpf.o` built by `make bench`) |\n", commit)
	}
	p("| total time of `make bench` | %d s (native measurement %.0f s; VM measurement %s inside the guest; the rest is building, booting and waiting for the VM lock shared with other VM users of this machine) |\n",
		wall, nat.WallSec, vmWall(vm))
	p("| host | %s, %d CPUs, Linux `%s` (kprobes: %v) |\n", nat.CPUModel, nat.CPUs, nat.Kernel, nat.Kprobes)
	if vm != nil {
		p("| VM | Debian kernel `%s` under QEMU/TCG (`-cpu max`, %d vCPUs: \"%s\"), kprobes: %v |\n", vm.Kernel, vm.CPUs, vm.CPUModel, vm.Kprobes)
	} else {
		p("| VM | not run |\n")
	}
	if compareImage != "" {
		p("| comparison image | `%s` |\n", compareImage)
	} else {
		p("| comparison image | not given (set `COMPARE_IMAGE=`) |\n")
	}
	p("| runs per configuration | native %d × %d s; VM %s |\n", nat.Runs, nat.Seconds, vmRuns(vm))
	p("| workload | `test/loadgen` in a fresh network namespace per run: bulk streams to 127.0.0.1:%d with `numgen random mod N == 0 drop` at input, connections to :%d whose SYNs are dropped at input; levels are `streams:N:SYNs per second` |\n", bulkPort, synPort)
	p("| native levels | %s |\n", levelNames(nat.Levels))
	if vm != nil {
		p("| VM levels | %s |\n", levelNames(vm.Levels))
	}
	p("\nFigures are median (min–max) over runs. \"Generated\" is how often `tcp:tcp_retransmit_skb` fired, counted by the floor's program on it; ")
	p("a run is loss-free when the tracer reported no lost events and delivered at least %.0f%% of them.\n\n", lossFree*100)

	// ---- goals ----
	oursN := findTool(nat, "ours")
	_, _, rN, _ := hookCosts(oursN, "retransmit_skb")
	var oursV, bccV, btV, cmpV *ToolResult
	if vm != nil {
		oursV, bccV, btV, cmpV = findTool(vm, "ours"), findTool(vm, "bcc"), findTool(vm, "bpftrace"), findTool(vm, "compare")
	}
	_, _, rV, _ := hookCosts(oursV, "retransmit_skb")
	p("## Goals\n\n| goal | measured | |\n|---|---|---|\n")
	p("| ours ≤ 4.8× the floor natively (aim 3×), `tcp_retransmit_skb` | %s | %s |\n", rN.fmt("×", 1), goal(rN.Med <= 4.8))
	if vm != nil {
		p("| ours ≤ 75× the floor in the VM, run by ig (aim 20×) | %s | %s |\n", rV.fmt("×", 1), goal(rV.Med <= 75))
		oursSus, oursRate := "", math.NaN()
		if oursV != nil {
			oursSus, oursRate = sustained(oursV, vm.Levels)
		}
		maxOther, maxName := -1, ""
		for _, t := range []*ToolResult{cmpV, bccV, btV} {
			if t == nil || t.Error != "" {
				continue
			}
			s, _ := sustained(t, vm.Levels)
			if i := levelIndex(vm.Levels, s); i > maxOther {
				maxOther, maxName = i, t.Name
			}
		}
		ourIdx := levelIndex(vm.Levels, oursSus)
		desc := fmt.Sprintf("ours loss-free up to level %s (%s retransmissions/s)", orNone(oursSus), fmtNum(oursRate, 0))
		if maxOther >= 0 {
			desc += fmt.Sprintf("; highest level another tool sustains: %s (%s)", orNone(levelName(vm.Levels, maxOther)), maxName)
		}
		p("| no lost events at the highest rate any compared tool sustains | %s | %s |\n", desc, goal(ourIdx >= maxOther && ourIdx >= 0))
		oc := cpuPer10k(toolWindows(oursV))
		for _, t := range []*ToolResult{bccV, btV} {
			if t == nil {
				continue
			}
			if t.Error != "" {
				p("| fewer CPU s per captured event than %s | %s did not run: %s | **not measured** |\n", toolLabel[t.Name], toolLabel[t.Name], oneLine(t.Error))
				continue
			}
			tc := cpuPer10k(t.Windows)
			p("| fewer CPU s per captured event than %s | ours %s s / 10k events, %s %s s (ours/%s = %s×) | %s |\n",
				toolLabel[t.Name], fmtNum(oc, 3), t.Name, fmtNum(tc, 3), t.Name, fmtNum(oc/tc, 2), goal(oc < tc))
		}
	}
	p("\n")

	// ---- ratios ----
	p("## Ratios\n\n| ratio | native (%s) | VM (%s) |\n|---|---|---|\n", nat.Kernel, vmKernel(vm))
	p("| ours / floor, BPF ns per run on `tcp_retransmit_skb` | %s | %s |\n", rN.fmt("×", 1), rV.fmt("×", 1))
	tN, _, _, _ := hookCosts(oursN, "retransmit_skb")
	tV, _, _, _ := hookCosts(oursV, "retransmit_skb")
	ratioRow := func(label string, other string) {
		cN, _, _, _ := hookCosts(findTool(nat, other), "retransmit_skb")
		var cV mmm
		if vm != nil {
			cV, _, _, _ = hookCosts(findTool(vm, other), "retransmit_skb")
		} else {
			cV = summarize(nil)
		}
		p("| ours / %s, BPF ns per run on the retransmission hook | %s | %s |\n", label, ratioStr(tN.Med, cN.Med), ratioStr(tV.Med, cV.Med))
	}
	if compareImage != "" {
		ratioRow("comparison image", "compare")
	} else {
		p("| ours / comparison image | not given | not given |\n")
	}
	ratioRow("BCC", "bcc")
	ratioRow("bpftrace", "bpftrace")
	if vm != nil {
		oc := cpuPer10k(toolWindows(oursV))
		for _, o := range []string{"compare", "bcc", "bpftrace"} {
			t := findTool(vm, o)
			if t == nil {
				continue
			}
			p("| ours / %s, CPU s of the tracer process per event | – | %s |\n", toolLabel[o], ratioStr(oc, cpuPer10k(t.Windows)))
		}
	}
	p("\n")

	// ---- BPF cost ----
	p("## BPF cost per event\n\n`kernel.bpf_stats_enabled=1`; `run_time_ns / run_cnt` of each program, from `bpftool prog show -j` before and after each run. ")
	p("The floor (`bench/floor.bpf.c`, empty programs) is attached on the same hooks at the same time, so both see the same events; the ratio is taken per run.\n\n")
	costTable := func(r *Result, title string) {
		if r == nil {
			return
		}
		p("### %s: Linux %s\n\n| tracer | hook | runs counted | tracer ns/run | floor ns/run | tracer / floor |\n|---|---|---|---|---|---|\n", title, r.Kernel)
		for _, t := range r.Tools {
			if t.Error != "" {
				p("| %s | – | – | failed: %s | | |\n", toolLabel[t.Name], oneLine(t.Error))
				continue
			}
			for _, h := range []string{"retransmit_skb", "retransmit_synack", "tlp", "timer"} {
				if !hasHook(t, h) {
					continue
				}
				tc, fc, rc, n := hookCosts(&t, h)
				p("| %s | %s | %s | %s | %s | %s |\n", toolLabel[t.Name], progHookLabel(t, h), fmtNum(float64(n), 0), tc.fmt("", 0), fc.fmt("", 0), rc.fmt("×", 1))
			}
		}
		p("\n")
	}
	costTable(nat, "Native, objects loaded with cilium/ebpf")
	costTable(vm, "In the VM, gadgets run by `ig run`")

	// ---- end to end ----
	if vm != nil {
		p("## End to end in the VM\n\n")
		p("Each tracer runs alone (with the floor) through every level; CPU is utime+stime of the tracer's process during the run (`/proc/PID/stat`), ")
		p("peak RSS is `VmHWM`. Events are output lines (ig: JSON lines; BCC, bpftrace: event lines); for ig and BCC only retransmissions (RETRANS, `R>`) are counted in the delivery columns, not loss probes; CPU per 10k events divides by every event printed. ")
		p("*Hook coverage* is how many of the tracepoint's hits the tracer's own program saw; *delivered* compares the events printed with that program's runs, i.e. what was lost between kernel and output.\n\n")
		p("| tracer | level | retransmissions/s generated | hook coverage | events delivered / program runs | lost reported | CPU s per 10k events | peak RSS MiB | loss-free runs |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, name := range toolOrder {
			t := findTool(vm, name)
			if t == nil {
				continue
			}
			if t.Error != "" {
				p("| %s | – | – | failed: %s | | | | | |\n", toolLabel[name], oneLine(t.Error))
				continue
			}
			for _, lv := range vm.Levels {
				ws := byLevel(*t, lv.Name)
				if len(ws) == 0 {
					continue
				}
				okRuns := 0
				var lost int64
				for _, w := range ws {
					lost += w.Counts.Lost
					if windowOK(w) {
						okRuns++
					}
				}
				p("| %s | %s | %s | %s | %s | %d | %s | %s | %d/%d |\n", toolLabel[name], lv.Name,
					perWindow(ws, genRate).fmt("", 0),
					perWindow(ws, func(w Window) float64 { return 100 * coverage(w) }).fmt("%", 1),
					perWindow(ws, func(w Window) float64 { return 100 * capture(w) }).fmt("%", 1),
					lost,
					perWindow(ws, func(w Window) float64 { return cpuPer10k([]Window{w}) }).fmt("", 3),
					perWindow(ws, func(w Window) float64 { return float64(w.HWMKiB) / 1024 }).fmt("", 0),
					okRuns, len(ws))
			}
		}
		p("\n### Highest rate sustained without loss\n\n| tracer | highest loss-free level | retransmissions/s | startup s (CPU s) |\n|---|---|---|---|\n")
		for _, name := range toolOrder {
			t := findTool(vm, name)
			if t == nil || t.Error != "" {
				continue
			}
			s, r := sustained(t, vm.Levels)
			p("| %s | %s | %s | %.1f (%.1f) |\n", toolLabel[name], orNone(s), fmtNum(r, 0), t.StartupSec, t.StartupCPU)
		}
		if oursV != nil {
			p("\nSegments: for this gadget the `segs` of RETRANS events against the namespace's `TcpRetransSegs` (as in test/integration/storm_test.go):\n\n| level | segs in RETRANS events / TcpRetransSegs |\n|---|---|\n")
			for _, lv := range vm.Levels {
				ws := byLevel(*oursV, lv.Name)
				if len(ws) == 0 {
					continue
				}
				p("| %s | %s |\n", lv.Name, perWindow(ws, func(w Window) float64 {
					if w.RetransSegs == 0 {
						return math.NaN()
					}
					return 100 * float64(w.Counts.RetransSegs) / float64(w.RetransSegs)
				}).fmt("%", 1))
			}
		}
		p("\n")
	}

	// ---- programs ----
	p("## Programs seen\n\nEvery BPF program a tracer loaded that ran during the runs (pooled over runs). For ig this includes its own socket enricher.\n\n")
	for _, r := range []*Result{nat, vm} {
		if r == nil {
			continue
		}
		p("### %s (%s)\n\n| tracer | program | type | hook | run_cnt | ns/run | recursion misses |\n|---|---|---|---|---|---|---|\n", r.Phase, r.Kernel)
		for _, t := range r.Tools {
			type agg struct {
				typ, hook         string
				ns, cnt, missed int64
			}
			m := map[string]*agg{}
			var names []string
			for _, w := range t.Windows {
				for _, pr := range w.Tool {
					a := m[pr.Name]
					if a == nil {
						a = &agg{typ: pr.Type, hook: pr.Hook}
						m[pr.Name] = a
						names = append(names, pr.Name)
					}
					a.ns += pr.RunNs
					a.cnt += pr.RunCnt
					a.missed += pr.Missed
				}
			}
			sort.Strings(names)
			for _, n := range names {
				a := m[n]
				hl := hookLabel(a.hook)
				if a.hook == "retransmit_skb" && a.typ == "kprobe" {
					hl = "kprobe tcp_retransmit_skb"
				}
				p("| %s | `%s` | %s | %s | %s | %s | %d |\n", toolLabel[t.Name], n, a.typ, hl, fmtNum(float64(a.cnt), 0), fmtNum(float64(a.ns)/float64(a.cnt), 0), a.missed)
			}
			if len(t.Skipped) > 0 {
				p("| %s | not attached: %s | | | | | |\n", toolLabel[t.Name], strings.Join(t.Skipped, "; "))
			}
		}
		if len(r.FloorSkip) > 0 {
			p("| floor | not attached: %s | | | | | |\n", strings.Join(r.FloorSkip, "; "))
		}
		p("\n")
	}

	p("## How to read this, and limits\n\n")
	for _, n := range append(extra, notes(nat, vm)...) {
		p("- %s\n", n)
	}
	return b.String()
}

func notes(nat, vm *Result) []string {
	var n []string
	o, nd, bt := findTool(nat, "ours"), findTool(nat, "ours-nodrain"), findTool(nat, "ours-batched")
	if o != nil && nd != nil {
		a, _, _, _ := hookCosts(o, "retransmit_skb")
		c, _, _, _ := hookCosts(nd, "retransmit_skb")
		n = append(n, fmt.Sprintf("Natively, this gadget's `tcp_retransmit_skb` program costs %s ns/run while its ring buffer is read, and %s ns/run when nobody reads it "+
			"(the buffer is full, every reservation fails and the program returns right after it: what remains is reading the tracepoint's arguments and the socket's protocol, "+
			"the reservation attempt and the lost-sample counter). The difference is the successful path: filling the event (some 25 reads of the socket, the endpoints, the socket-map lookup) "+
			"and submitting it, which wakes the waiting reader. We did not break this down further (a guess, not measured: the reader's wake-up is costly in this Firecracker guest); "+
			"the comparison image, if given, is measured the same way.",
			fmtNum(a.Med, 0), fmtNum(c.Med, 0)))
		if bt != nil {
			x, _, rx, _ := hookCosts(bt, "retransmit_skb")
			n = append(n, fmt.Sprintf("With the ring buffer read every 50 ms instead of by a reader waiting in epoll (the kernel then seldom finds a reader to wake), "+
				"the same program costs %s ns/run (%s the floor). How the user-space side reads the buffer matters as much as the program itself here; "+
				"ig v0.50.1 reads with a waiting reader, as the harness's default does.", fmtNum(x.Med, 0), rx.fmt("×", 1)))
		}
	}
	n = append(n, "The floor measures the hook itself: entering and leaving a BPF program on it. Ratios against it are per run, in the same run.",
		"Natively ig cannot run (no kprobes, PID 1 unreadable: see PLATFORM.md), so the gadget's object is loaded with cilium/ebpf, as in test/bpf, and its ring buffer is read by the harness. "+
			"With no kprobes the loss-probe program is the `timer:timer_expire_entry` one; its floor counts every timer of the system, so it has no event count to compare with.",
		"In the VM (QEMU TCG, i.e. an emulated CPU) every figure is slower by one or two orders of magnitude than on hardware; compare tracers with each other within the VM, not with native figures.",
		"BCC's tcpretrans runs with `-l` (tail loss probes too, like this gadget's LOSS events). bpftrace's tcpretrans.bt has only a kprobe on the function `tcp_retransmit_skb()`; "+
			"retransmissions sent by tail loss probes call `__tcp_retransmit_skb()` directly (where the tracepoint is), so it does not see them: its hook coverage is below 100% by design, not by loss.",
		"ig reports lost ring-buffer events on stderr (`reading event: lost N samples`); BCC prints `Possibly lost N samples`; bpftrace `Lost N events`. These are added up per run.",
		"CPU per event counts only the tracer's process (ig, python3 for BCC, bpftrace), not the BPF programs' time in the kernel, which is in the BPF cost tables.")
	if vm != nil {
		for _, t := range vm.Tools {
			if t.Error != "" {
				n = append(n, fmt.Sprintf("%s did not run in the VM: %s", toolLabel[t.Name], oneLine(t.Error)))
			}
		}
	}
	return n
}

func toolWindows(t *ToolResult) []Window {
	if t == nil {
		return nil
	}
	return t.Windows
}

func ratioStr(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s×", fmtNum(a/b, 2))
}

// progHookLabel names the hook with the tracer's program type, e.g. a
// kprobe on tcp_retransmit_skb (bpftrace) versus the tracepoint.
func progHookLabel(t ToolResult, h string) string {
	for _, w := range t.Windows {
		for _, p := range w.Tool {
			if p.Hook != h {
				continue
			}
			switch {
			case h == "retransmit_skb" && p.Type == "kprobe":
				return "kprobe tcp_retransmit_skb (floor: the tracepoint)"
			}
			return hookLabel(h)
		}
	}
	return hookLabel(h)
}

func hookLabel(h string) string {
	switch h {
	case "retransmit_skb":
		return "tracepoint tcp_retransmit_skb"
	case "retransmit_synack":
		return "tracepoint tcp_retransmit_synack"
	case "tlp":
		return "kprobe tcp_send_loss_probe"
	case "timer":
		return "tracepoint timer_expire_entry"
	case "":
		return "(other)"
	}
	return h
}

func levelNames(ls []Level) string {
	var s []string
	for _, l := range ls {
		s = append(s, "`"+l.Name+"`")
	}
	return strings.Join(s, ", ")
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

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return "`" + s + "`"
}

func vmKernel(vm *Result) string {
	if vm == nil {
		return "not run"
	}
	return vm.Kernel
}

func vmWall(vm *Result) string {
	if vm == nil {
		return "not run"
	}
	return fmt.Sprintf("%.0f s", vm.WallSec)
}

func vmRuns(vm *Result) string {
	if vm == nil {
		return "not run"
	}
	return fmt.Sprintf("%d × %d s per level and tracer", vm.Runs, vm.Seconds)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// writeChart draws bench.png with gnuplot: BPF cost on the retransmission
// hook, CPU per 10k events, and delivery against rate.
func writeChart(nat, vm *Result, dir string) error {
	tmp, err := os.MkdirTemp("", "bench-chart.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var cost strings.Builder

	val := func(r *Result, name string) string {
		if r == nil {
			return "NaN"
		}
		t := findTool(r, name)
		if name == "floor" {
			t = findTool(r, "ours")
			if t == nil {
				return "NaN"
			}
			_, f, _, _ := hookCosts(t, "retransmit_skb")
			return fmtPlain(f.Med)
		}
		c, _, _, _ := hookCosts(t, "retransmit_skb")
		return fmtPlain(c.Med)
	}
	for _, n := range []string{"floor", "ours", "compare", "bcc", "bpftrace"} {
		a, b := val(nat, n), val(vm, n)
		if a == "NaN" && b == "NaN" {
			continue // a tracer that did not run (e.g. no COMPARE_IMAGE)
		}
		fmt.Fprintf(&cost, "\"%s\" %s %s\n", chartLabel(n), a, b)
	}
	var cpu, capt strings.Builder
	var capNames []string

	if vm != nil {
		for _, n := range toolOrder {
			t := findTool(vm, n)
			if t == nil || t.Error != "" || len(t.Windows) == 0 {
				continue
			}
			fmt.Fprintf(&cpu, "\"%s\" %s\n", chartLabel(n), fmtPlain(cpuPer10k(t.Windows)))
			// one data block per tracer, separated by two blank lines
			if len(capNames) > 0 {
				capt.WriteString("\n\n")
			}
			capNames = append(capNames, chartLabel(n))
			for _, lv := range vm.Levels {
				ws := byLevel(*t, lv.Name)
				if len(ws) == 0 {
					continue
				}
				fmt.Fprintf(&capt, "%s %s\n", fmtPlain(perWindow(ws, genRate).Med),
					fmtPlain(perWindow(ws, func(w Window) float64 { return 100 * capture(w) }).Min))
			}
		}
	}
	files := map[string]string{"cost.dat": cost.String(), "cpu.dat": cpu.String(), "capture.dat": capt.String()}
	for f, s := range files {
		if err := os.WriteFile(filepath.Join(tmp, f), []byte(s), 0o644); err != nil {
			return err
		}
	}
	vmTitle := "VM: not run"
	if vm != nil {
		vmTitle = "VM " + vm.Kernel + " (QEMU TCG)"
	}
	names := capNames
	var g strings.Builder
	fmt.Fprintf(&g, `set terminal pngcairo size 1800,600 font "DejaVu Sans,11"
set output %q
set multiplot layout 1,3 title "trace\\_tcpretrans benchmark — host %s, %s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set key top left
set xtics rotate by -25
set title "BPF ns per run on tcp\\_retransmit\\_skb (median, log)"
set ylabel "ns / run"
`, filepath.Join(dir, "bench.png"), nat.Kernel, vmTitle)
	costF, cpuF, capF := filepath.Join(tmp, "cost.dat"), filepath.Join(tmp, "cpu.dat"), filepath.Join(tmp, "capture.dat")
	if vm != nil {
		fmt.Fprintf(&g, "plot %q using 2:xtic(1) title \"native %s\", '' using 3 title \"VM %s\"\n", costF, nat.Kernel, vm.Kernel)
	} else {
		fmt.Fprintf(&g, "plot %q using 2:xtic(1) title \"native %s\"\n", costF, nat.Kernel)
	}
	g.WriteString("unset logscale y\nset key off\n")
	if vm != nil {
		fmt.Fprintf(&g, `set title "tracer CPU seconds per 10k events (VM, lower is better)"
set ylabel "CPU s / 10k events"
set yrange [0:*]
plot %q using 2:xtic(1) title "CPU" lc rgb "#4477aa"
set style data linespoints
set xtics norotate
set key bottom left
set title "events delivered vs retransmissions/s (VM, worst run)"
set xlabel "retransmissions / s generated"
set ylabel "%% delivered"
set yrange [0:110]
set logscale x
plot for [i=0:%d] %q index i using 1:2 title word(%q, i+1) lw 2 pt 7
`, cpuF, len(names)-1, capF, strings.Join(names, " "))
	} else {
		g.WriteString("set title \"VM not run\"\nunset xtics\nplot [0:1] [0:1] 2 notitle\nplot [0:1] [0:1] 2 notitle\n")
	}
	g.WriteString("unset multiplot\n")
	script := g.String()
	sp := filepath.Join(tmp, "chart.gp")
	if err := os.WriteFile(sp, []byte(script), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("gnuplot", sp).CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %v: %s", err, out)
	}
	return nil
}

func chartLabel(n string) string {
	return map[string]string{"floor": "floor", "ours": "this-gadget", "compare": "compare-image", "bcc": "BCC", "bpftrace": "bpftrace"}[n]
}

func fmtPlain(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "NaN"
	}
	return fmt.Sprintf("%.4g", x)
}
