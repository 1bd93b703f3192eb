package main

import (
	"fmt"
	"math"
	"strings"

	"trace_tcpretrans/bench/harness/stats"
	"trace_tcpretrans/go/contract"
)

// costStep is a tracer of "Where the cost is": how it differs from this
// gadget ("ours"), and which step of an event the difference of their BPF
// costs measures. added is true when the tracer does more than this gadget
// (the step costs tracer − ours), false when it leaves the step out (ours −
// tracer). wakeups is true when the tracer runs no wake-up program: its
// step is also given counting that program's time.
type costStep struct {
	name, differs, step string
	added, wakeups      bool
}

// nativeSteps are the native tracers measured against this gadget, in the
// report's order: a wake-up for every event, the BENCH_LEAVE_OUT variants,
// the 50 ms reader and the unread buffer.
var nativeSteps = []costStep{
	{"ours-wake-each", "`max_delay_us` 0: every event that finds the reader waiting wakes it (the behaviour before batching)",
		"a wake-up for every event (the irq_work and the reader's wake), against batched wake-ups", true, true},
	{"ours-no-owner", "built with `BENCH_LEAVE_OUT=1`: no lookup of the socket's owner in IG's socket map",
		"the socket-map lookup", false, false},
	{"ours-no-reads", "built with `BENCH_LEAVE_OUT=2`: no reads of the socket and the segment (reason, snapshot, segment)",
		"the reads", false, false},
	{"ours-no-event", "built with `BENCH_LEAVE_OUT=4`: returns before reserving in the ring buffer",
		"the reservation, the filling and the submission of the event (with the wake-ups batching leaves)", false, false},
	{"ours-batched", "the reader polls every 50 ms instead of waiting in epoll, so the kernel seldom finds it waiting (diagnostic)",
		"the wake-ups a waiting reader still gets", false, false},
	{"ours-nodrain", "nobody reads the ring buffer: once it is full every reservation fails and the program returns (diagnostic)",
		"a reservation that succeeds, the filling and the submission, against one that fails", false, false},
}

// vmSteps are the tracers of the VM measured against this gadget run by ig.
var vmSteps = []costStep{
	{"ours-wake-each", "`--max-delay 0`: ig woken for every event that finds it waiting",
		"a wake-up for every event (the irq_work and ig's wake), against batched wake-ups", true, true},
}

// vmObjectSteps are the objects loaded without ig in the VM, measured
// against this gadget's object loaded the same way (obj-ours).
var vmObjectSteps = []costStep{
	{"obj-ours-no-owner", "built with `BENCH_LEAVE_OUT=1`: no lookup of the socket's owner in IG's socket map",
		"the socket-map lookup", false, false},
	{"obj-ours-no-reads", "built with `BENCH_LEAVE_OUT=2`: no reads of the socket and the segment (reason, snapshot, segment)",
		"the reads", false, false},
	{"obj-ours-no-event", "built with `BENCH_LEAVE_OUT=4`: returns before reserving in the ring buffer",
		"the reservation, the filling and the submission of the event (with the wake-ups batching leaves)", false, false},
	{"obj-compare", "IG's own program (the comparison image's object) instead of this gadget's, loaded and read the same way",
		"what IG's own program costs more (negative: less) than this gadget's", true, false},
}

// stepsOf are the steps whose tracer ran in a phase (or failed to).
func stepsOf(r *Result, steps []costStep) []costStep {
	var out []costStep
	for _, s := range steps {
		if findTool(r, s.name) != nil {
			out = append(out, s)
		}
	}
	return out
}

// writeWhere: "Where the cost is", this gadget's BPF cost on
// tcp_retransmit_skb against the tracers that change one thing of it,
// phase by phase and level by level, in the same run as the floor. Left
// out when no such tracer was measured.
func writeWhere(m *md, nat, vm *Result) {
	ns, vs, vos := stepsOf(nat, nativeSteps), stepsOf(vm, vmSteps), stepsOf(vm, vmObjectSteps)
	if len(ns)+len(vs)+len(vos) == 0 {
		return
	}
	m.p("## Where the cost is\n\n")
	def := contract.DefaultConfig().MaxDelayUs
	m.p("This gadget's program on `tcp_retransmit_skb` against tracers that each change one thing of it (the table says what), measured in the same run, ")
	m.p("one after the other on the same workload, with the floor attached. This gadget runs with its defaults (`max_delay_us` %d: wake-ups batched) ", def)
	m.p("and its ring buffer is read by a reader waiting in epoll, as ig reads it (natively the harness's reader, in the VM ig itself). ")
	m.p("The `BENCH_LEAVE_OUT` objects are built from `program.bpf.c` by bench/run.sh with the flags of IG's builder, each leaving out one step of an event.")
	m.p("\n\nBPF ns/run (of the program on `tcp_retransmit_skb`) and × floor are median (min–max) over runs, × floor taken per run. ")
	wakeProg := hasWakeupProgram(nat) || hasWakeupProgram(vm)
	m.p("The step's cost is the difference of the median ns/run: ")
	m.p("the tracer's minus this gadget's where the tracer adds the step, this gadget's minus the tracer's where it leaves it out; ")
	m.p("its share is of this gadget's median ns/run. A difference within the spread of the runs, or between runs at quite different rates, is noise. ")
	if wakeProg {
		m.p("The gadget's wake-up program (a perf_event program on a cpu-clock event of every CPU, which wakes the reader for the events that wait) ")
		m.p("runs at its own rate, with or without retransmissions; its column is its run time per retransmission (the floor's runs on `tcp_retransmit_skb`), ")
		m.p("median (min–max) over runs, which depends on the retransmission rate. A wake-up for every event runs no wake-up program: ")
		m.p("its step's cost is also given counting the wake-up program, as the difference of the medians of both programs' time per retransmission. ")
	}
	m.p("A program's ns/run is its time from entry to exit, with the interrupts taken meanwhile: a submission that wakes the reader queues an irq_work, ")
	m.p("whose interrupt on the same CPU usually comes before the program returns.")
	if len(vs) > 0 {
		m.p(" In the VM, ig's CPU (utime+stime per 10k retransmissions, pooled over runs) shows the reader's side of the wake-ups.")
	}
	if !wakeProg {
		m.p(" A wake-up by a BPF timer's callback runs outside any program and is in no figure here.")
	}
	m.p("\n\n")
	writeWhereTable(m, nat, "ours", ns, "Native", fmt.Sprintf("none: the reference (`max_delay_us` %d, a reader waiting in epoll)", def))
	writeWhereTable(m, vm, "ours", vs, "In the VM", "none: the reference (`ig run`, default `--max-delay`)")
	writeWhereTable(m, vm, "obj-ours", vos, "In the VM, the objects without ig",
		fmt.Sprintf("none: the reference (this gadget's object loaded by the harness, `max_delay_us` %d, a reader waiting in epoll)", def))
}

// hasWakeupProgram tells whether a tracer of a phase has a program on the
// cpu-clock event (the gadget's wake-up program).
func hasWakeupProgram(r *Result) bool {
	if r == nil {
		return false
	}
	for _, t := range r.Tools {
		if hasHook(t, "cpu_clock") {
			return true
		}
	}
	return false
}

// writeWhereTable is a phase's table: per level, this gadget, then each
// step's tracer; a tracer that failed has one row with its error, at the
// end. Where a tracer of the phase has a wake-up program (on the cpu-clock
// event), a column gives its time per retransmission, and the wake-up
// step's cost is also given with it; in the VM a column gives ig's CPU per
// retransmission.
func writeWhereTable(m *md, r *Result, base string, steps []costStep, title, oursDesc string) {
	ours := findTool(r, base)
	if len(steps) == 0 || ours == nil {
		return
	}
	const wakeCol, cpuCol = 6, 7
	shown := map[int]bool{wakeCol: hasWakeupProgram(r), cpuCol: r.Phase == "vm" && base == "ours"}
	head := []string{"level", "tracer", "differs from this gadget by", "retransmissions/s", "BPF ns/run", "× floor",
		"wake-up program, ns per retransmission", "ig CPU s per 10k retransmissions",
		"step measured", "step's cost, ns/run", "share of this gadget's ns/run"}
	// row prints the cells of a row but those of the optional columns
	// the phase does not show.
	cols := 0
	row := func(cells ...string) {
		line := "|"
		cols = 0
		for i, c := range cells {
			if show, optional := shown[i]; optional && !show {
				continue
			}
			cols++
			if c == "" {
				line += " |"
			} else {
				line += " " + c + " |"
			}
		}
		m.p("%s\n", line)
	}
	m.p("### %s: Linux %s\n\n", title, r.Kernel)
	row(head...)
	m.p("|%s\n", strings.Repeat("---|", cols))
	for _, lv := range r.Levels {
		wo := byLevel(*ours, lv.Name)
		if ours.Error != "" || len(wo) == 0 {
			continue
		}
		ref := levelCost(wo)
		row(lv.Name, toolLabel[base], oursDesc, stats.Num(perWindow(wo, genRate).Med, 0), ref.tool.Format("", 0), ref.ratio.Format("×", 1),
			ref.wake.Format("", 0), stats.Num(cpuPer10kRetrans(wo), 3), "", "", "")
		for _, s := range steps {
			t := findTool(r, s.name)
			ws := byLevel(*t, lv.Name)
			if t.Error != "" || len(ws) == 0 {
				continue
			}
			c := levelCost(ws)
			d, dAll := ref.tool.Med-c.tool.Med, ref.total.Med-c.total.Med
			if s.added {
				d, dAll = -d, -dAll
			}
			cost := stats.Num(d, 0)
			if s.wakeups && shown[wakeCol] {
				cost += fmt.Sprintf(" (%s counting the wake-up program)", stats.Num(dAll, 0))
			}
			row(lv.Name, toolLabel[s.name], s.differs, stats.Num(perWindow(ws, genRate).Med, 0), c.tool.Format("", 0), c.ratio.Format("×", 1),
				c.wake.Format("", 0), stats.Num(cpuPer10kRetrans(ws), 3), s.step, cost, share(d, ref.tool.Med))
		}
	}
	failed := func(name, desc, err string) {
		row("–", toolLabel[name], desc, "", "failed: "+oneLine(err), "", "", "", "", "", "")
	}
	if ours.Error != "" {
		failed(base, oursDesc, ours.Error)
	}
	for _, s := range steps {
		if t := findTool(r, s.name); t.Error != "" {
			failed(s.name, s.differs, t.Error)
		}
	}
	m.p("\n")
}

// share is part of whole in percent, "n/a" when either is missing.
func share(part, whole float64) string {
	if math.IsNaN(part) || math.IsNaN(whole) || whole == 0 {
		return "n/a"
	}
	return stats.Num(100*part/whole, 0) + "%"
}

// stepCost is a tracer's BPF cost over windows: its ns/run on
// tcp_retransmit_skb and their ratio to the floor's, per run; its wake-up
// program's time per retransmission; and the sum of both per run.
type stepCost struct{ tool, ratio, wake, total stats.Summary }

func levelCost(ws []Window) stepCost {
	tc, _, rc, _ := hookCosts(&ToolResult{Windows: ws}, "retransmit_skb")
	return stepCost{tc, rc, perWindow(ws, wakeupPerRetrans), perWindow(ws, func(w Window) float64 { return skbCost(w) + wakeupPerRetrans(w) })}
}

// wakeupPerRetrans is the time of a tracer's programs on the cpu-clock
// event (the gadget's wake-up program) in a window per retransmission
// (the floor's runs on tcp_retransmit_skb); 0 without such a program.
func wakeupPerRetrans(w Window) float64 {
	var ns int64
	for _, p := range w.Tool {
		if p.Hook == "cpu_clock" {
			ns += p.RunNs
		}
	}
	if hits(w) == 0 {
		return math.NaN()
	}
	return float64(ns) / hits(w)
}
