package main

// Small results with round numbers, so that the expected figures of the
// report can be worked out by hand.

// prog is a program that ran cnt times for ns nanoseconds per run.
func prog(name, typ, hook string, nsPerRun, cnt int64) ProgStat {
	return ProgStat{Name: name, Type: typ, Hook: hook, RunNs: nsPerRun * cnt, RunCnt: cnt}
}

// window: the tracepoint fired 100 times in seconds s; the tool's program
// cost toolNs per run, the floor's floorNs; the tracer delivered retrans
// events and reported lost ones.
func window(level string, s float64, toolNs, floorNs, retrans, lost int64, cpu float64) Window {
	return Window{
		Level:       level,
		Run:         1,
		Seconds:     s + 3,
		Loadgen:     map[string]any{"duration_s": s},
		RetransSegs: 100,
		Hooks:       map[string]int64{"retransmit_skb": 100},
		Floor:       []ProgStat{prog("floor_skb", "tracepoint", "retransmit_skb", floorNs, 100)},
		Tool:        []ProgStat{prog("ig_tcpretrans", "tracepoint", "retransmit_skb", toolNs, 100)},
		Counts:      Counts{Events: retrans, Retrans: retrans, RetransSegs: retrans, Lost: lost},
		CPUSec:      cpu,
		HWMKiB:      100 * 1024,
	}
}

// nativeResult: a kernel without kprobes; this gadget costs 1,000 and
// 2,000 ns/run against a 100 ns floor (ratios 10× and 20×), its timer
// program 500 ns; with nobody reading its buffer 300 ns.
func nativeResult() *Result {
	w1 := window("8:50:0", 10, 1000, 100, 100, 0, 0)
	w1.Tool = append(w1.Tool, prog("ig_tlp_timer", "tracepoint", "timer", 500, 10))
	w1.Floor = append(w1.Floor, prog("floor_timer", "tracepoint", "timer", 50, 1000))
	w2 := window("8:50:0", 10, 2000, 100, 100, 0, 0)
	w2.Run = 2
	return &Result{
		Phase: "native", Kernel: "6.9.0-test", CPUModel: "Test CPU", CPUs: 4, Date: "2026-01-02T03:04:05Z",
		Runs: 2, Seconds: 10, Levels: []Level{{Name: "8:50:0", Streams: 8, DropMod: 50}},
		Kprobes: false, FloorSkip: []string{"floor_tlp (no kprobes on this kernel)"}, WallSec: 100,
		Tools: []ToolResult{
			{Name: "ours", Label: "this gadget (cilium/ebpf loader)", Skipped: []string{"ig_tlp_kprobe (no kprobes on this kernel)"},
				Windows: []Window{w1, w2}},
			{Name: "ours-nodrain", Label: "this gadget, ring buffer not read (diagnostic)", Skipped: []string{"ig_tlp_kprobe (no kprobes on this kernel)"},
				Windows: []Window{window("8:50:0", 10, 300, 100, 0, 100, 0)}},
		},
	}
}

// vmResult: two levels. This gadget (4,000 ns/run, floor 400) is loss-free
// at the first (10 retransmissions/s) and loses 10 events at the second
// (20/s); BCC (2,000 ns/run) is loss-free at both; bpftrace failed.
// CPU: ours 1.9 s for 190 events, BCC 1 s for 200.
func vmResult() *Result {
	lv := []Level{{Name: "8:50:0", Streams: 8, DropMod: 50}, {Name: "16:10:400", Streams: 16, DropMod: 10, SynRate: 400}}
	bcc := func(w Window) Window {
		w.Tool = []ProgStat{prog("tracepoint__tcp__tcp_retransmit_skb", "tracepoint", "retransmit_skb", 2000, 100)}
		return w
	}
	return &Result{
		Phase: "vm", Kernel: "6.1.0-test", CPUModel: "QEMU TCG CPU version 2.5+", CPUs: 2, Date: "2026-01-02T03:10:00Z",
		Runs: 1, Seconds: 10, Levels: lv, Kprobes: true, WallSec: 900,
		Tools: []ToolResult{
			{Name: "ours", Label: "this gadget via ig", StartupSec: 30, StartupCPU: 29.5, Windows: []Window{
				window("8:50:0", 10, 4000, 400, 100, 0, 1.0),
				window("16:10:400", 5, 4000, 400, 90, 10, 0.9)}},
			{Name: "bcc", Label: "BCC tcpretrans (bpfcc-tools)", StartupSec: 60, StartupCPU: 50, Windows: []Window{
				bcc(window("8:50:0", 10, 0, 400, 100, 0, 0.5)),
				bcc(window("16:10:400", 5, 0, 400, 100, 0, 0.5))}},
			{Name: "bpftrace", Label: "bpftrace tcpretrans.bt", Error: "bpftrace exited before attaching:\n  ERROR: no BTF"},
		},
	}
}
