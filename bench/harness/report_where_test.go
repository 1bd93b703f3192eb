package main

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withSteps adds the tracers of "Where the cost is" to nativeResult (this
// gadget 1,500 ns/run, the median of 1,000 and 2,000, floor 100, ring
// buffer not read 300): with a wake-up for every event 3,000, without the
// owner lookup 1,400, without the reads 1,200, without the event 600, read
// every 50 ms 450. In the VM (vmResult: this gadget 4,000 against 400) ig
// --max-delay 0 costs 8,000 at the first level and 6,000 at the second.
func withSteps(nat, vm *Result) {
	one := func(name string, ns int64) ToolResult {
		return ToolResult{Name: name, Windows: []Window{window("8:50:0", 10, ns, 100, 100, 0, 0)}}
	}
	nat.Tools = append(nat.Tools, one("ours-wake-each", 3000), one("ours-no-owner", 1400), one("ours-no-reads", 1200),
		one("ours-no-event", 600), one("ours-batched", 450))
	if vm == nil {
		return
	}
	vm.Tools = append(vm.Tools, ToolResult{Name: "ours-wake-each", Windows: []Window{
		window("8:50:0", 10, 8000, 400, 100, 0, 2.0),
		window("16:10:400", 5, 6000, 400, 100, 0, 1.0)}})
}

func TestWhereSection(t *testing.T) {
	nat, vm := nativeResult(), vmResult()
	withSteps(nat, vm)
	got := render(func(m *md) { writeWhere(m, nat, vm) })
	require.True(t, strings.HasPrefix(got, "## Where the cost is\n\n"), got)
	head := "| level | tracer | differs from this gadget by | retransmissions/s | BPF ns/run | × floor | step measured | step's cost, ns/run | share of this gadget's ns/run |\n" +
		"|---|---|---|---|---|---|---|---|---|\n"
	native := "### Native: Linux 6.9.0-test\n\n" + head +
		"| 8:50:0 | this gadget | none: the reference (`max_delay_us` 5000, a reader waiting in epoll) | 10 | 1,500 (1,000–2,000) | 15.0× (10.0–20.0) | | | |\n" +
		"| 8:50:0 | this gadget, reader woken for every event (max-delay 0) | `max_delay_us` 0: every event that finds the reader waiting wakes it (the behaviour before batching) | 10 | 3,000 | 30.0× | " +
		"a wake-up for every event (the irq_work and the reader's wake), against batched wake-ups | 1,500 | 100% |\n" +
		"| 8:50:0 | this gadget without the socket-owner lookup | built with `BENCH_LEAVE_OUT=1`: no lookup of the socket's owner in IG's socket map | 10 | 1,400 | 14.0× | the socket-map lookup | 100 | 7% |\n" +
		"| 8:50:0 | this gadget without the socket and segment reads | built with `BENCH_LEAVE_OUT=2`: no reads of the socket and the segment (reason, snapshot, segment) | 10 | 1,200 | 12.0× | the reads | 300 | 20% |\n" +
		"| 8:50:0 | this gadget without the event (nothing reserved) | built with `BENCH_LEAVE_OUT=4`: returns before reserving in the ring buffer | 10 | 600 | 6.0× | " +
		"the reservation, the filling and the submission of the event (with the wake-ups batching leaves) | 900 | 60% |\n" +
		"| 8:50:0 | this gadget, ring buffer read every 50 ms | the reader polls every 50 ms instead of waiting in epoll, so the kernel seldom finds it waiting (diagnostic) | 10 | 450 | 4.5× | " +
		"the wake-ups a waiting reader still gets | 1,050 | 70% |\n" +
		"| 8:50:0 | this gadget, ring buffer not read | nobody reads the ring buffer: once it is full every reservation fails and the program returns (diagnostic) | 10 | 300 | 3.0× | " +
		"a reservation that succeeds, the filling and the submission, against one that fails | 1,200 | 80% |\n\n"
	assert.Contains(t, got, native)
	inVM := "### In the VM: Linux 6.1.0-test\n\n" +
		"| level | tracer | differs from this gadget by | retransmissions/s | BPF ns/run | × floor | ig CPU s per 10k retransmissions | step measured | step's cost, ns/run | share of this gadget's ns/run |\n" +
		"|---|---|---|---|---|---|---|---|---|---|\n" +
		"| 8:50:0 | this gadget | none: the reference (`ig run`, default `--max-delay`) | 10 | 4,000 | 10.0× | 100.000 | | | |\n" +
		"| 8:50:0 | this gadget, reader woken for every event (max-delay 0) | `--max-delay 0`: ig woken for every event that finds it waiting | 10 | 8,000 | 20.0× | 200.000 | " +
		"a wake-up for every event (the irq_work and ig's wake), against batched wake-ups | 4,000 | 100% |\n" +
		"| 16:10:400 | this gadget | none: the reference (`ig run`, default `--max-delay`) | 20 | 4,000 | 10.0× | 90.000 | | | |\n" +
		"| 16:10:400 | this gadget, reader woken for every event (max-delay 0) | `--max-delay 0`: ig woken for every event that finds it waiting | 20 | 6,000 | 15.0× | 100.000 | " +
		"a wake-up for every event (the irq_work and ig's wake), against batched wake-ups | 2,000 | 50% |\n\n"
	assert.Contains(t, got, inVM)
	assert.Less(t, strings.Index(got, native), strings.Index(got, inVM), "native first")
	assert.Contains(t, got, "This gadget runs with its defaults (`max_delay_us` 5000: wake-ups batched)")
	assert.Contains(t, got, "A wake-up by a BPF timer's callback runs outside any program and is in no figure here.")
	assert.NotContains(t, got, "wake-up program", "no tracer has a wake-up program")
}

func TestWhereSectionWakeupProgram(t *testing.T) {
	// This gadget's wake-up program ran 50 times at 1,000 ns in each run
	// of 100 retransmissions: 500 ns per retransmission; with max-delay 0
	// it is not attached.
	nat := nativeResult()
	nat.Tools = nat.Tools[:1]
	withSteps(nat, nil)
	for i := range nat.Tools[0].Windows {
		w := &nat.Tools[0].Windows[i]
		w.Tool = append(w.Tool, prog("ig_wakeup", "perf_event", "cpu_clock", 1000, 50))
	}
	got := render(func(m *md) { writeWhere(m, nat, nil) })
	for _, w := range []string{
		"| level | tracer | differs from this gadget by | retransmissions/s | BPF ns/run | × floor | wake-up program, ns per retransmission | step measured | step's cost, ns/run | share of this gadget's ns/run |\n" +
			"|---|---|---|---|---|---|---|---|---|---|\n",
		"| 8:50:0 | this gadget | none: the reference (`max_delay_us` 5000, a reader waiting in epoll) | 10 | 1,500 (1,000–2,000) | 15.0× (10.0–20.0) | 500 (500–500) | | | |\n",
		"| 8:50:0 | this gadget, reader woken for every event (max-delay 0) | `max_delay_us` 0: every event that finds the reader waiting wakes it (the behaviour before batching) | 10 | 3,000 | 30.0× | 0 | " +
			"a wake-up for every event (the irq_work and the reader's wake), against batched wake-ups | 1,500 (1,000 counting the wake-up program) | 100% |\n",
		"| 8:50:0 | this gadget without the socket-owner lookup | built with `BENCH_LEAVE_OUT=1`: no lookup of the socket's owner in IG's socket map | 10 | 1,400 | 14.0× | 0 | the socket-map lookup | 100 | 7% |\n",
	} {
		assert.Contains(t, got, w)
	}
	assert.Contains(t, got, "its column is its run time per retransmission")
	assert.NotContains(t, got, "BPF timer", "no timer where there is a wake-up program")
	assert.Equal(t, 500.0, wakeupPerRetrans(nat.Tools[0].Windows[0]))
	assert.True(t, math.IsNaN(wakeupPerRetrans(Window{})), "no retransmission")
}

func TestWhereSectionPartial(t *testing.T) {
	nat := nativeResult()
	withSteps(nat, nil)
	// A variant that did not load, one left out (no -variants), one that
	// measured nothing at the level, and the VM without --max-delay 0.
	nat.Tools[3] = ToolResult{Name: "ours-no-owner", Error: "/v/leave-out-owner.bpf.o: reading the BPF object:\n  no such file"}
	nat.Tools = append(nat.Tools[:4], nat.Tools[5:]...) // no ours-no-reads
	findTool(nat, "ours-no-event").Windows[0].Level = "other"
	got := render(func(m *md) { writeWhere(m, nat, vmResult()) })
	assert.Contains(t, got, "| – | this gadget without the socket-owner lookup | built with `BENCH_LEAVE_OUT=1`: no lookup of the socket's owner in IG's socket map | | "+
		"failed: /v/leave-out-owner.bpf.o: reading the BPF object: no such file | | | | |\n\n")
	assert.NotContains(t, got, "|  |", "empty cells as in the other tables")
	assert.NotContains(t, got, "without the socket and segment reads")
	assert.NotContains(t, got, "| 8:50:0 | this gadget without the event", "no run at this level")
	assert.NotContains(t, got, "### In the VM", "the VM has no step")
	assert.NotContains(t, got, "In the VM")
	assert.NotContains(t, got, "ig CPU", "no CPU of the native loader")
	assert.Contains(t, got, "| 8:50:0 | this gadget, reader woken for every event (max-delay 0) |")

	nat.Tools[0].Error, nat.Tools[0].Windows = "loading the object: bad", nil
	got = render(func(m *md) { writeWhere(m, nat, nil) })
	assert.Contains(t, got, "| – | this gadget | none: the reference (`max_delay_us` 5000, a reader waiting in epoll) | | failed: loading the object: bad | | | | |\n")
	assert.NotContains(t, got, "| 8:50:0 |", "nothing to compare with")

	bare := nativeResult()
	bare.Tools = bare.Tools[:1]
	assert.Empty(t, render(func(m *md) { writeWhere(m, bare, vmResult()) }), "no step measured: no section")
	assert.Empty(t, render(func(m *md) { writeWhere(m, bare, nil) }))
}

func TestShare(t *testing.T) {
	assert.Equal(t, "50%", share(1, 2))
	assert.Equal(t, "-7%", share(-100, 1500))
	assert.Equal(t, "n/a", share(1, 0))
	assert.Equal(t, "n/a", share(toolCost(nil).Med, 2))
}

func TestWriteReportWithSteps(t *testing.T) {
	nat, vm := nativeResult(), vmResult()
	withCompare(nat, vm)
	withSteps(nat, vm)
	got := writeReport(reportInput{Nat: nat, VM: vm, CompareImage: igOwnImage, Command: "make bench"})
	last := -1
	for _, s := range []string{"## Against the comparison image", "## Where the cost is", "### Native: Linux", "### In the VM: Linux", "## Goals", "## BPF cost per event",
		"| this gadget without the socket-owner lookup | tracepoint tcp_retransmit_skb | 100 | 1,400 | 100 | 14.0× |", "## How to read this, and limits"} {
		i := strings.Index(got, s)
		require.GreaterOrEqual(t, i, 0, s)
		assert.Greater(t, i, last, "%s out of order", s)
		last = i
	}
	assert.Contains(t, got, "| this gadget, reader woken for every event (max-delay 0) | tracepoint tcp_retransmit_skb | 200 | 7,000 (6,000–8,000) | 400 (400–400) | 17.5× (15.0–20.0) |\n",
		"the VM's cost table")
}

func TestWhereSectionVMObjects(t *testing.T) {
	// In the VM, this gadget's object loaded by the harness costs 3,000
	// ns/run against a floor of 300, without the reads 2,000, and IG's own
	// object 4,500.
	vm := vmResult()
	one := func(name string, ns int64) ToolResult {
		return ToolResult{Name: name, Windows: []Window{window("8:50:0", 10, ns, 300, 100, 0, 0)}}
	}
	vm.Tools = append(vm.Tools, one("obj-ours", 3000), one("obj-ours-no-reads", 2000), one("obj-compare", 4500))
	got := render(func(m *md) { writeWhere(m, nativeResult(), vm) })
	assert.Contains(t, got, "### In the VM, the objects without ig: Linux 6.1.0-test\n\n"+
		"| level | tracer | differs from this gadget by | retransmissions/s | BPF ns/run | × floor | step measured | step's cost, ns/run | share of this gadget's ns/run |\n"+
		"|---|---|---|---|---|---|---|---|---|\n"+
		"| 8:50:0 | this gadget's object, without ig | none: the reference (this gadget's object loaded by the harness, `max_delay_us` 5000, a reader waiting in epoll) | 10 | 3,000 | 10.0× | | | |\n"+
		"| 8:50:0 | the object without the socket and segment reads | built with `BENCH_LEAVE_OUT=2`: no reads of the socket and the segment (reason, snapshot, segment) | 10 | 2,000 | 6.7× | the reads | 1,000 | 33% |\n"+
		"| 8:50:0 | the comparison image's object, without ig | IG's own program (the comparison image's object) instead of this gadget's, loaded and read the same way | 10 | 4,500 | 15.0× | "+
		"what IG's own program costs more (negative: less) than this gadget's | 1,500 | 50% |\n\n")
	assert.NotContains(t, got, "### In the VM: Linux", "no ig step in the VM")
}
