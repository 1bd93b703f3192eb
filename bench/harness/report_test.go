package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func render(f func(m *md)) string {
	var m md
	f(&m)
	return m.String()
}

func TestGoals(t *testing.T) {
	tests := []struct {
		name string
		vm   *Result
		want []string
		not  []string
	}{
		{"native only", nil,
			[]string{"| ours ≤ 4.8× the floor natively (aim 3×), `tcp_retransmit_skb` | 15.0× (10.0–20.0) | **missed** |\n"},
			[]string{"VM", "BCC", "bpftrace", "sustains"}},
		{"with the VM", vmResult(), []string{
			"| ours ≤ 4.8× the floor natively (aim 3×), `tcp_retransmit_skb` | 15.0× (10.0–20.0) | **missed** |\n",
			"| ours ≤ 75× the floor in the VM, run by ig (aim 20×) | 10.0× (10.0–10.0) | **met** |\n",
			"| no lost events at the highest rate any compared tool sustains | ours loss-free up to level `8:50:0` (10 retransmissions/s); highest level another tool sustains: `16:10:400` (bcc) | **missed** |\n",
			"| fewer CPU s per captured event than BCC tcpretrans | ours 100.000 s / 10k events, bcc 50.000 s (ours/bcc = 2.00×) | **missed** |\n",
			"| fewer CPU s per captured event than bpftrace tcpretrans.bt | bpftrace tcpretrans.bt did not run: bpftrace exited before attaching: ERROR: no BTF | **not measured** |\n",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(func(m *md) { writeGoals(m, nativeResult(), tt.vm) })
			assert.True(t, strings.HasPrefix(got, "## Goals\n\n| goal | measured | |\n|---|---|---|\n"), got)
			for _, w := range tt.want {
				assert.Contains(t, got, w)
			}
			for _, n := range tt.not {
				assert.NotContains(t, got, n)
			}
		})
	}
}

func TestSustainGoalMet(t *testing.T) {
	vm := vmResult()
	vm.Tools = vm.Tools[:1] // only this gadget ran
	desc, ok := sustainGoal(vm)
	assert.Equal(t, "ours loss-free up to level `8:50:0` (10 retransmissions/s)", desc)
	assert.True(t, ok)
}

func TestRatios(t *testing.T) {
	tests := []struct {
		name    string
		vm      *Result
		compare string
		want    string
	}{
		{"native only", nil, "", "## Ratios\n\n| ratio | native (6.9.0-test) |\n|---|---|\n" +
			"| ours / floor, BPF ns per run on `tcp_retransmit_skb` | 15.0× (10.0–20.0) |\n" +
			"| ours / comparison image | not given |\n\n"},
		{"native only, comparison image given but not measured", nil, "img:v1", "## Ratios\n\n| ratio | native (6.9.0-test) |\n|---|---|\n" +
			"| ours / floor, BPF ns per run on `tcp_retransmit_skb` | 15.0× (10.0–20.0) |\n\n"},
		{"with the VM", vmResult(), "", "## Ratios\n\n| ratio | native (6.9.0-test) | VM (6.1.0-test) |\n|---|---|---|\n" +
			"| ours / floor, BPF ns per run on `tcp_retransmit_skb` | 15.0× (10.0–20.0) | 10.0× (10.0–10.0) |\n" +
			"| ours / comparison image | not given | not given |\n" +
			"| ours / BCC, BPF ns per run on the retransmission hook | n/a | 2.00× |\n" +
			"| ours / bpftrace, BPF ns per run on the retransmission hook | n/a | n/a |\n" +
			"| ours / BCC tcpretrans, CPU s of the tracer process per event | – | 2.00× |\n" +
			"| ours / bpftrace tcpretrans.bt, CPU s of the tracer process per event | – | n/a |\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, render(func(m *md) { writeRatios(m, nativeResult(), tt.vm, tt.compare) }))
		})
	}
}

func TestCostTable(t *testing.T) {
	got := render(func(m *md) { writeCostTable(m, nativeResult(), "Native") })
	want := "### Native: Linux 6.9.0-test\n\n| tracer | hook | runs counted | tracer ns/run | floor ns/run | tracer / floor |\n|---|---|---|---|---|---|\n" +
		"| this gadget | tracepoint tcp_retransmit_skb | 200 | 1,500 (1,000–2,000) | 100 (100–100) | 15.0× (10.0–20.0) |\n" +
		"| this gadget | tracepoint timer_expire_entry | 10 | 500 | 50 | 10.0× |\n" +
		"| this gadget, ring buffer not read | tracepoint tcp_retransmit_skb | 100 | 300 | 100 | 3.0× |\n\n"
	assert.Equal(t, want, got)

	got = render(func(m *md) { writeCostTable(m, vmResult(), "VM") })
	assert.Contains(t, got, "| bpftrace tcpretrans.bt | – | – | failed: bpftrace exited before attaching: ERROR: no BTF | | |\n")
	assert.Contains(t, got, "| BCC tcpretrans | tracepoint tcp_retransmit_skb | 200 | 2,000 (2,000–2,000) | 400 (400–400) | 5.0× (5.0–5.0) |\n")
	assert.Empty(t, render(func(m *md) { writeCostTable(m, nil, "VM") }))
}

func TestEndToEnd(t *testing.T) {
	got := render(func(m *md) { writeEndToEnd(m, vmResult()) })
	for _, w := range []string{
		"| this gadget | 8:50:0 | 10 | 100.0% | 100.0% | 0 | 100.000 | 100 | 1/1 |\n",
		"| this gadget | 16:10:400 | 20 | 100.0% | 90.0% | 10 | 100.000 | 100 | 0/1 |\n",
		"| BCC tcpretrans | 16:10:400 | 20 | 100.0% | 100.0% | 0 | 50.000 | 100 | 1/1 |\n",
		"| bpftrace tcpretrans.bt | – | – | failed: bpftrace exited before attaching: ERROR: no BTF | | | | | |\n",
		"| this gadget | `8:50:0` | 10 | 30.0 (29.5) |\n",
		"| BCC tcpretrans | `16:10:400` | 20 | 60.0 (50.0) |\n",
		"| 8:50:0 | 100.0% |\n| 16:10:400 | 90.0% |\n",
	} {
		assert.Contains(t, got, w)
	}
	assert.NotContains(t, got, "| bpftrace tcpretrans.bt | `")
}

func TestEndToEndRowOverRuns(t *testing.T) {
	ws := []Window{window("l", 10, 1, 1, 100, 0, 1.0), window("l", 10, 1, 1, 95, 5, 0.95), window("l", 5, 1, 1, 100, 0, 2.0)}
	assert.Equal(t, "| x | l | 10 (10–20) | 100.0% (100.0–100.0) | 100.0% (95.0–100.0) | 5 | 100.000 (100.000–200.000) | 100 (100–100) | 2/3 |\n",
		endToEndRow("x", "l", ws))
}

func TestAggregatePrograms(t *testing.T) {
	got := aggregatePrograms(*findTool(nativeResult(), "ours"))
	require.Len(t, got, 2)
	assert.Equal(t, ProgStat{Name: "ig_tcpretrans", Type: "tracepoint", Hook: "retransmit_skb", RunNs: 300000, RunCnt: 200}, got[0])
	assert.Equal(t, ProgStat{Name: "ig_tlp_timer", Type: "tracepoint", Hook: "timer", RunNs: 5000, RunCnt: 10}, got[1])
	assert.Empty(t, aggregatePrograms(ToolResult{}))
}

func TestProgramsSection(t *testing.T) {
	got := render(func(m *md) { writeProgramsSection(m, nativeResult(), nil) })
	want := "## Programs seen\n\nEvery BPF program a tracer loaded that ran during the runs (pooled over runs).\n\n" +
		"### native (6.9.0-test)\n\n| tracer | program | type | hook | run_cnt | ns/run | recursion misses |\n|---|---|---|---|---|---|---|\n" +
		"| this gadget | `ig_tcpretrans` | tracepoint | tracepoint tcp_retransmit_skb | 200 | 1,500 | 0 |\n" +
		"| this gadget | `ig_tlp_timer` | tracepoint | tracepoint timer_expire_entry | 10 | 500 | 0 |\n" +
		"| this gadget | not attached: ig_tlp_kprobe (no kprobes on this kernel) | | | | | |\n" +
		"| this gadget, ring buffer not read | `ig_tcpretrans` | tracepoint | tracepoint tcp_retransmit_skb | 100 | 300 | 0 |\n" +
		"| this gadget, ring buffer not read | not attached: ig_tlp_kprobe (no kprobes on this kernel) | | | | | |\n" +
		"| floor | not attached: floor_tlp (no kprobes on this kernel) | | | | | |\n\n"
	assert.Equal(t, want, got)

	got = render(func(m *md) { writeProgramsSection(m, nativeResult(), vmResult()) })
	assert.Contains(t, got, "(pooled over runs). For ig this includes its own socket enricher.\n\n")
	assert.Contains(t, got, "### vm (6.1.0-test)\n")
	assert.Contains(t, got, "| BCC tcpretrans | `tracepoint__tcp__tcp_retransmit_skb` | tracepoint | tracepoint tcp_retransmit_skb | 200 | 2,000 | 0 |\n")
}

func TestProgramsTableBTFTracepoint(t *testing.T) {
	r := nativeResult()
	r.Tools = r.Tools[:1]
	for i := range r.Tools[0].Windows {
		r.Tools[0].Windows[i].Tool[0].Type = "tracing" // tp_btf/tcp_retransmit_skb
	}
	got := render(func(m *md) { writeProgramsTable(m, r) })
	assert.Contains(t, got, "| this gadget | `ig_tcpretrans` | tracing | tracepoint tcp_retransmit_skb (tp_btf) | 200 | 1,500 | 0 |\n")
	got = render(func(m *md) { writeCostTable(m, r, "Native") })
	assert.Contains(t, got, "| this gadget | tracepoint tcp_retransmit_skb (tp_btf) | 200 | 1,500 (1,000–2,000) | 100 (100–100) | 15.0× (10.0–20.0) |\n",
		"the same hook as the floor's tracepoint")
}

func TestHeader(t *testing.T) {
	in := reportInput{Nat: nativeResult(), Wall: 300, Command: "make bench BENCH_VM=0", Commit: "abc1234"}
	got := render(func(m *md) { writeHeader(m, in) })
	for _, w := range []string{
		"| date (UTC) | 2026-01-02T03:04:05Z |\n",
		"| command | `make bench BENCH_VM=0` |\n",
		"| gadget measured | commit `abc1234` of this repository",
		"| total time of `make bench` | 300 s (native measurement 100 s; the rest is installing and building) |\n",
		"| host | Test CPU, 4 CPUs, Linux `6.9.0-test` (kprobes: false) |\n",
		"| VM | not run |\n",
		"| comparison image | not given (set `COMPARE_IMAGE=`) |\n",
		"| runs per configuration | native 2 × 10 s |\n",
		"| native levels | `8:50:0` |\n",
		"delivered at least 99% of them.\n\n",
	} {
		assert.Contains(t, got, w)
	}
	assert.NotContains(t, got, "VM levels")
	assert.NotContains(t, got, "VM lock")

	in.VM, in.CompareImage, in.Commit = vmResult(), "img:v1", ""
	got = render(func(m *md) { writeHeader(m, in) })
	for _, w := range []string{
		"| total time of `make bench` | 300 s (native measurement 100 s; VM measurement 900 s inside the guest; the rest is building, booting the VM and waiting for its lock, `VM_LOCK`) |\n",
		"| VM | Debian kernel `6.1.0-test` under QEMU/TCG (`-cpu max`, 2 vCPUs: \"QEMU TCG CPU version 2.5+\"), kprobes: true |\n",
		"| comparison image | `img:v1` |\n",
		"| runs per configuration | native 2 × 10 s; VM 1 × 10 s per level and tracer |\n",
		"| VM levels | `8:50:0`, `16:10:400` |\n",
	} {
		assert.Contains(t, got, w)
	}
	assert.NotContains(t, got, "gadget measured")
}

func TestNotesNativeOnly(t *testing.T) {
	got := notes(nativeResult(), nil)
	require.Len(t, got, 5)
	assert.True(t, strings.HasPrefix(got[0], "Natively, this gadget's `tcp_retransmit_skb` program costs 1,500 ns/run with its defaults (`max_delay_us` 5000: wake-ups batched) "+
		"while a reader waiting in epoll reads its ring buffer, and 300 ns/run when nobody reads it"), got[0])
	assert.True(t, strings.HasSuffix(got[0], "with the wake-ups of the reader that batching leaves. \"Where the cost is\" measures these steps one by one."), got[0])
	assert.True(t, strings.HasPrefix(got[1], "The floor measures the hook itself"))
	assert.Equal(t, "Natively the harness loads the gadget's object with cilium/ebpf, as in test/bpf, and reads its ring buffer itself; ig is not involved.", got[2])
	assert.Equal(t, "Natively the kernel (`6.9.0-test`) has no kprobes, so the kprobe programs were not attached: `ig_tlp_kprobe`, `floor_tlp`.", got[3])
	assert.True(t, strings.HasPrefix(got[4], "Natively the loss-probe program of this gadget runs on `timer:timer_expire_entry`"), got[4])
	all := strings.Join(got, "\n")
	for _, n := range []string{"PLATFORM.md", "Firecracker", "ig cannot run", "VM", "BCC", "bpftrace", "QEMU"} {
		assert.NotContains(t, all, n)
	}
}

func TestDrainNotes(t *testing.T) {
	nat := nativeResult()
	withSteps(nat, nil)
	got := drainNotes(nat)
	require.Len(t, got, 2)
	assert.Equal(t, "With the ring buffer read every 50 ms instead of by a reader waiting in epoll (the kernel then seldom finds a reader to wake), "+
		"the same program costs 450 ns/run (4.5× the floor). ig v0.50.1 reads with a waiting reader, as the harness's default does; "+
		"\"Where the cost is\" sets this against the wake-ups that batching leaves and against a wake-up for every event (`max_delay_us` 0, as before batching).", got[1])
	all := strings.Join(got, "\n")
	for _, n := range []string{"not broken down", "which wakes the waiting reader", "matters as much"} {
		assert.NotContains(t, all, n, "no longer true with batched wake-ups")
	}
	withCompare(nat, nil)
	assert.True(t, strings.HasSuffix(drainNotes(nat)[0], " The comparison image's object is loaded and read the same way."))
	nat.Tools = nat.Tools[:1]
	assert.Empty(t, drainNotes(nat), "no diagnostic")
}

func TestNotesWithKprobesAndVM(t *testing.T) {
	nat := nativeResult()
	nat.Kprobes = true
	nat.FloorSkip = nil
	for i := range nat.Tools {
		nat.Tools[i].Skipped = nil
	}
	nat.Tools[0].Windows[0].Tool = nat.Tools[0].Windows[0].Tool[:1] // no timer program
	got := notes(nat, vmResult())
	all := strings.Join(got, "\n")
	assert.NotContains(t, all, "no kprobes")
	assert.NotContains(t, all, "timer_expire_entry")
	assert.Contains(t, got, "The VM runs another kernel (`6.1.0-test`) on an emulated CPU \"QEMU TCG CPU version 2.5+\": the floor's program on `tcp_retransmit_skb` costs 400 ns/run there against 100 natively (4.00×); compare tracers with each other within the VM, not with native figures.")
	assert.Contains(t, got, "BCC's tcpretrans runs with `-l` (tail loss probes too, like this gadget's LOSS events).")
	assert.Contains(t, got, "ig reports lost ring-buffer events on stderr (`reading event: lost N samples`); BCC prints `Possibly lost N samples`. These are added up per run.")
	assert.Contains(t, got, "CPU per event counts only the tracer's process (ig, python3 for BCC), not the BPF programs' time in the kernel, which is in the BPF cost tables.")
	assert.Contains(t, got, "bpftrace tcpretrans.bt did not run in the VM: bpftrace exited before attaching: ERROR: no BTF")
	assert.NotContains(t, all, "tcpretrans.bt has only a kprobe", "bpftrace did not run")
}

func TestWakeupProgramNote(t *testing.T) {
	r := nativeResult()
	r.Tools[1].Windows[0].Tool = append(r.Tools[1].Windows[0].Tool, prog("ig_wakeup", "perf_event", "cpu_clock", 1000, 50))
	assert.Contains(t, hookNotes(r), "Natively the wake-up program of this gadget, ring buffer not read runs on a software cpu-clock perf event on every CPU, "+
		"with or without retransmissions; the floor has no program there, so its rows have no ratio.")
	got := render(func(m *md) { writeCostTable(m, r, "Native") })
	assert.Contains(t, got, "| this gadget, ring buffer not read | perf_event cpu-clock, every CPU | 50 | 1,000 | n/a | n/a |\n")
	assert.Equal(t, "perf_event cpu-clock, every CPU", typedHookLabel("perf_event", "cpu_clock"))
}

func TestKprobeNotes(t *testing.T) {
	r := &Result{Phase: "vm", Kernel: "5.10.0-x", Kprobes: false, Tools: []ToolResult{
		{Name: "ours", Skipped: []string{"a (no kprobes on this kernel)", "b (kprobe used for loss probes)"}},
		{Name: "compare", Skipped: []string{"a (no kprobes on this kernel)", "c (section x not attached by the bench)"}},
	}}
	assert.Equal(t, []string{"`a`"}, kprobeSkipped(r))
	assert.Equal(t, []string{"In the VM the kernel (`5.10.0-x`) has no kprobes, so the kprobe programs were not attached: `a`."}, hookNotes(r))
	r.Tools = nil
	assert.Equal(t, []string{"In the VM the kernel (`5.10.0-x`) has no kprobes, so no kprobe program was attached."}, hookNotes(r))
	r.Kprobes = true
	assert.Empty(t, hookNotes(r))
	assert.Empty(t, hookNotes(nil))
}

func TestVMFloorNoteWithoutFloor(t *testing.T) {
	vm := vmResult()
	vm.CPUModel = "Intel Xeon"
	vm.Tools = vm.Tools[1:] // this gadget did not run: no floor figure to compare
	assert.Equal(t, "The VM runs another kernel (`6.1.0-test`) on CPU \"Intel Xeon\": compare tracers with each other within the VM, not with native figures.",
		vmFloorNote(nativeResult(), vm))
}

func TestWriteReportNativeOnly(t *testing.T) {
	got := writeReport(reportInput{Nat: nativeResult(), Command: "make bench", Extra: []string{"a note given with -note"}})
	for _, w := range []string{"## Goals", "## Ratios", "## BPF cost per event", "### Native, objects loaded with cilium/ebpf: Linux 6.9.0-test",
		"## Programs seen", "### native (6.9.0-test)", "## How to read this, and limits\n\n- a note given with -note\n- Natively, this gadget's"} {
		assert.Contains(t, got, w)
	}
	for _, n := range []string{"## End to end in the VM", "### In the VM", "### vm", "Highest rate sustained", "VM (", "n/a | n/a", "PLATFORM.md", "Firecracker"} {
		assert.NotContains(t, got, n)
	}
}

func TestWriteReportWithVM(t *testing.T) {
	got := writeReport(reportInput{Nat: nativeResult(), VM: vmResult(), Command: "make bench"})
	sections := []string{"## Goals", "## Ratios", "## BPF cost per event", "### Native, objects", "### In the VM, gadgets run by `ig run`: Linux 6.1.0-test",
		"## End to end in the VM", "### Highest rate sustained without loss", "## Programs seen", "### native (", "### vm (", "## How to read this, and limits"}
	last := -1
	for _, s := range sections {
		i := strings.Index(got, s)
		require.GreaterOrEqual(t, i, 0, s)
		assert.Greater(t, i, last, "%s out of order", s)
		last = i
	}
}

func TestLoadResult(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	r, err := loadResult(write("ok.json", `{"phase":"vm","kernel":"6.1","tools":[{"name":"ours","windows":[]}]}`))
	require.NoError(t, err)
	assert.Equal(t, "6.1", r.Kernel)
	assert.True(t, hasData(r))

	r, err = loadResult(write("empty-tools.json", `{"phase":"vm"}`))
	require.NoError(t, err)
	assert.False(t, hasData(r))

	for _, bad := range []string{"null", "", "{"} {
		_, err = loadResult(write("bad.json", bad))
		assert.Error(t, err, "%q", bad)
	}
	_, err = loadResult(filepath.Join(dir, "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.False(t, hasData(nil))
}

func TestLabels(t *testing.T) {
	assert.Equal(t, "tracepoint tcp_retransmit_skb", hookLabel("retransmit_skb"))
	assert.Equal(t, "kprobe tcp_send_loss_probe", hookLabel("tlp"))
	assert.Equal(t, "(other)", hookLabel(""))
	assert.Equal(t, "weird", hookLabel("weird"))
	bt := ToolResult{Windows: []Window{{Tool: []ProgStat{{Name: "tcp_retransmit_", Type: "kprobe", Hook: "retransmit_skb"}}}}}
	assert.Equal(t, "kprobe tcp_retransmit_skb (floor: the tracepoint)", progHookLabel(bt, "retransmit_skb"))
	assert.Equal(t, "tracepoint timer_expire_entry", progHookLabel(bt, "timer"))
	btfTP := ToolResult{Windows: []Window{{Tool: []ProgStat{{Name: "ig_tcpretrans", Type: "tracing", Hook: "retransmit_skb"}}}}}
	assert.Equal(t, "tracepoint tcp_retransmit_skb (tp_btf)", progHookLabel(btfTP, "retransmit_skb"))
	assert.Equal(t, "tracepoint tcp_retransmit_synack (tp_btf)", typedHookLabel("tracing", "retransmit_synack"))
	assert.Equal(t, "tracepoint tcp_retransmit_synack", typedHookLabel("tracepoint", "retransmit_synack"))
	assert.Equal(t, "kprobe tcp_retransmit_skb", typedHookLabel("kprobe", "retransmit_skb"))
	assert.Equal(t, "kprobe tcp_send_loss_probe", typedHookLabel("tracing", "tlp"), "not a tracepoint")
	assert.Equal(t, "(other)", typedHookLabel("tracing", ""))
	assert.Equal(t, "`8:50:0`, `16:10:400`", levelNames(vmResult().Levels))
	assert.Equal(t, "none", orNone(""))
	assert.Equal(t, "`x`", orNone("x"))
	assert.Equal(t, "**met**", goal(true))
	assert.Equal(t, "**missed**", goal(false))
	assert.Equal(t, "a b c", oneLine("a\n  b\tc\n"))
	long := oneLine(strings.Repeat("x", 400))
	assert.Equal(t, strings.Repeat("x", 300)+"…", long)
}
