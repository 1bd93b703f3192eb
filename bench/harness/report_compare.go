package main

import (
	"fmt"
	"strings"

	"trace_tcpretrans/bench/harness/stats"
)

// igOwnRepo is where `make compare-image` stores IG's own trace_tcpretrans
// (the Makefile's IG_OWN_IMAGE, tagged with IG's version): make bench's
// comparison unless COMPARE_IMAGE says otherwise.
const igOwnRepo = "localhost/ig-own/trace_tcpretrans"

// compareDesc says what the comparison image is, when the bench knows it.
func compareDesc(image string) string {
	i := strings.LastIndexByte(image, ':')
	if i < 0 || image[:i] != igOwnRepo {
		return ""
	}
	return fmt.Sprintf("IG's own trace_tcpretrans gadget %s, built from IG's Go module by `make compare-image`", image[i+1:])
}

// compareMeasure is one row of the comparison: a figure of this gadget and
// of the comparison image over the same windows' level.
type compareMeasure struct {
	name string
	unit string
	prec int
	f    func(ws []Window) float64
}

// compareMeasures are the figures a phase has of both tracers at a level
// (their windows wo and wc), hook by hook for the BPF cost (the
// retransmission hook always, the others where both have a program); CPU
// and peak RSS only where the tracer is a process of its own (the VM's ig,
// not the native loader, which is the bench itself).
func compareMeasures(process bool, wo, wc []Window) []compareMeasure {
	var ms []compareMeasure
	for _, h := range costHooks {
		if h != "retransmit_skb" && (!hasHook(ToolResult{Windows: wo}, h) || !hasHook(ToolResult{Windows: wc}, h)) {
			continue
		}
		ms = append(ms, compareMeasure{"BPF ns per run, " + hookLabel(h), "", 0, func(ws []Window) float64 {
			return perWindow(ws, func(w Window) float64 { c, _ := cost(w.Tool, h); return c }).Med
		}})
	}
	ms = append(ms, compareMeasure{"delivered (events / runs of its `tcp_retransmit_skb` program)", "%", 1, func(ws []Window) float64 {
		return perWindow(ws, percent(capture)).Med
	}})
	if process {
		ms = append(ms,
			compareMeasure{"tracer CPU s per 10k events", "", 3, cpuPer10k},
			compareMeasure{"peak RSS MiB", "", 0, func(ws []Window) float64 { return perWindow(ws, rssMiB).Med }})
	}
	return ms
}

// phaseName names a phase in a table.
func phaseName(r *Result) string {
	if r.Phase == "vm" {
		return "VM (" + r.Kernel + ")"
	}
	return "native (" + r.Kernel + ")"
}

// writeCompare: the report's first section when a comparison image is
// given, this gadget against it in every phase, level and hook both were
// measured in. A phase where either did not load or run says so, with the
// error, instead of a figure.
func writeCompare(m *md, nat, vm *Result, image string) {
	if image == "" {
		return
	}
	m.p("## Against the comparison image\n\n`%s`", image)
	if d := compareDesc(image); d != "" {
		m.p(": %s", d)
	}
	m.p(". Both ran on the same workload, one after the other, natively (objects loaded with cilium/ebpf) and in the VM (`ig run`, and where measured their objects loaded as natively, without ig). ")
	m.p("Figures are medians over runs (CPU: pooled over runs); the last column is this gadget's figure over the comparison image's, ")
	m.p("so below 1× this gadget costs less, or delivers less. Delivered compares events with the runs of the tracer's own program on `tcp_retransmit_skb`; ")
	m.p("events are all the events a tracer printed (this gadget's include SYNACK and LOSS events).\n\n")
	m.p("| phase | level | measure | this gadget | comparison image | this gadget / comparison image |\n|---|---|---|---|---|---|\n")
	var failed []string
	// Each phase's pair of tracers, and in the VM the pair of objects
	// loaded without ig, when they were measured.
	type pair struct {
		r              *Result
		ours, cmp, tag string
	}
	var pairs []pair
	for _, r := range []*Result{nat, vm} {
		if r != nil {
			pairs = append(pairs, pair{r, "ours", "compare", phaseName(r)})
		}
	}
	if vm != nil && findTool(vm, "obj-ours") != nil && findTool(vm, "obj-compare") != nil {
		pairs = append(pairs, pair{vm, "obj-ours", "obj-compare", "VM (" + vm.Kernel + "), objects without ig"})
	}
	for _, p := range pairs {
		r := p.r
		ours, cmp := findTool(r, p.ours), findTool(r, p.cmp)
		process := r.Phase == "vm" && p.ours == "ours"
		switch {
		case cmp == nil:
			m.p("| %s | – | – | | not measured | |\n", p.tag)
			continue
		case cmp.Error != "":
			m.p("| %s | – | – | | %s | |\n", p.tag, failedVerb(r))
			failed = append(failed, fmt.Sprintf("%s (Linux `%s`) %s, so this phase has no figure of it: %s",
				phaseWhere(r), r.Kernel, failedWhat(r), oneLine(cmp.Error)))
			continue
		case ours == nil || ours.Error != "":
			m.p("| %s | – | – | did not run | | |\n", p.tag)
			continue
		}
		for _, lv := range r.Levels {
			wo, wc := byLevel(*ours, lv.Name), byLevel(*cmp, lv.Name)
			if len(wo) == 0 && len(wc) == 0 {
				continue
			}
			for _, c := range compareMeasures(process, wo, wc) {
				o, t := c.f(wo), c.f(wc)
				m.p("| %s | %s | %s | %s | %s | %s |\n", p.tag, lv.Name, c.name,
					stats.Num(o, c.prec)+c.unit, stats.Num(t, c.prec)+c.unit, stats.Ratio(o, t))
			}
		}
		if !process && r.Phase == "vm" {
			continue // the harness's loading of an object: no ig start-up
		}
		m.p("| %s | – | %s | %s | %s | %s |\n", p.tag, startupMeasure(r),
			stats.Num(ours.StartupSec, 1), stats.Num(cmp.StartupSec, 1), stats.Ratio(ours.StartupSec, cmp.StartupSec))
	}
	m.p("\n")
	for _, f := range failed {
		m.p("%s\n\n", f)
	}
}

// failedVerb is what a comparison that failed in a phase did.
func failedVerb(r *Result) string {
	if r.Phase == "vm" {
		return "did not run"
	}
	return "did not load"
}

// failedWhat says what failed when the comparison failed in a phase.
func failedWhat(r *Result) string {
	if r.Phase == "vm" {
		return "`ig run` of the comparison image failed"
	}
	return "the comparison image's object did not load"
}

// startupMeasure is what start-up means in a phase.
func startupMeasure(r *Result) string {
	if r.Phase == "vm" {
		return "start-up s (`ig run` until its program is attached, and the 2 s the bench then waits)"
	}
	return "start-up s (loading and attaching the object)"
}
