package main

import (
	"fmt"
	"strings"

	"trace_tcpretrans/bench/harness/stats"
	"trace_tcpretrans/go/contract"
)

// notes are the "How to read this" items. Each is about something in the
// results: a tracer that ran, a hook that was measured, a phase that ran.
func notes(nat, vm *Result) []string {
	n := drainNotes(nat)
	n = append(n, "The floor measures the hook itself: entering and leaving a BPF program on it. Ratios against it are per run, in the same run.")
	if findTool(nat, "ours") != nil {
		n = append(n, "Natively the harness loads the gadget's object with cilium/ebpf, as in test/bpf, and reads its ring buffer itself; ig is not involved.")
	}
	for _, r := range []*Result{nat, vm} {
		n = append(n, hookNotes(r)...)
	}
	if vm != nil {
		n = append(n, vmNotes(nat, vm)...)
	}
	return n
}

// drainNotes compare the native diagnostics (ring buffer not read, read
// every 50 ms) with the normal run; "Where the cost is" has the figures of
// every step.
func drainNotes(nat *Result) []string {
	o, nd, bt := findTool(nat, "ours"), findTool(nat, "ours-nodrain"), findTool(nat, "ours-batched")
	if o == nil || nd == nil {
		return nil
	}
	n := []string{fmt.Sprintf("Natively, this gadget's `tcp_retransmit_skb` program costs %s ns/run with its defaults (`max_delay_us` %d: wake-ups batched) "+
		"while a reader waiting in epoll reads its ring buffer, and %s ns/run when nobody reads it "+
		"(once the buffer is full, every reservation fails and the program returns right after it: what remains is reading the tracepoint's arguments and the socket's "+
		"addresses, looking its owner up in IG's socket map, the reservation attempt and the lost-sample counter). The difference is the successful path: "+
		"the reservation, filling the event (its reads of the socket and the segment) and submitting it, with the wake-ups of the reader that batching leaves. "+
		"\"Where the cost is\" measures these steps one by one.",
		stats.Num(toolCost(o).Med, 0), contract.DefaultConfig().MaxDelayUs, stats.Num(toolCost(nd).Med, 0))}
	if findTool(nat, "compare") != nil {
		n[0] += " The comparison image's object is loaded and read the same way."
	}
	if bt != nil {
		x, _, rx, _ := hookCosts(bt, "retransmit_skb")
		n = append(n, fmt.Sprintf("With the ring buffer read every 50 ms instead of by a reader waiting in epoll (the kernel then seldom finds a reader to wake), "+
			"the same program costs %s ns/run (%s the floor). ig v0.50.1 reads with a waiting reader, as the harness's default does; "+
			"\"Where the cost is\" sets this against the wake-ups that batching leaves and against a wake-up for every event (`max_delay_us` 0, as before batching).",
			stats.Num(x.Med, 0), rx.Format("×", 1)))
	}
	return n
}

// phaseWhere names a phase in a sentence.
func phaseWhere(r *Result) string {
	if r.Phase == "vm" {
		return "In the VM"
	}
	return "Natively"
}

// hookNotes: programs not attached for want of kprobes, the wake-up
// program's event and the timer tracepoint's floor, where a phase shows
// them.
func hookNotes(r *Result) []string {
	if r == nil {
		return nil
	}
	var n []string
	if !r.Kprobes {
		s := fmt.Sprintf("%s the kernel (`%s`) has no kprobes, so ", phaseWhere(r), r.Kernel)
		if names := kprobeSkipped(r); len(names) > 0 {
			s += "the kprobe programs were not attached: " + strings.Join(names, ", ") + "."
		} else {
			s += "no kprobe program was attached."
		}
		n = append(n, s)
	}
	for _, t := range r.Tools {
		if hasHook(t, "cpu_clock") {
			n = append(n, fmt.Sprintf("%s the wake-up program of %s runs on a software cpu-clock perf event on every CPU, with or without retransmissions; "+
				"the floor has no program there, so its rows have no ratio.", phaseWhere(r), toolLabel[t.Name]))
			break
		}
	}
	for _, t := range r.Tools {
		if hasHook(t, "timer") {
			n = append(n, fmt.Sprintf("%s the loss-probe program of %s runs on `timer:timer_expire_entry`; its floor counts every timer of the system, "+
				"so it has no event count to compare with.", phaseWhere(r), toolLabel[t.Name]))
			break
		}
	}
	return n
}

// kprobeSkipped lists, once each, the programs of a phase left out because
// its kernel has no kprobes.
func kprobeSkipped(r *Result) []string {
	var names []string
	seen := map[string]bool{}
	add := func(skipped []string) {
		for _, s := range skipped {
			name, why, _ := strings.Cut(s, " (")
			if strings.HasPrefix(why, "no kprobes") && !seen[name] {
				seen[name] = true
				names = append(names, "`"+name+"`")
			}
		}
	}
	for _, t := range r.Tools {
		add(t.Skipped)
	}
	add(r.FloorSkip)
	return names
}

// vmFloorNote compares the floor in the VM with the floor natively.
func vmFloorNote(nat, vm *Result) string {
	cpu := fmt.Sprintf("CPU \"%s\"", vm.CPUModel)
	if strings.Contains(vm.CPUModel, "TCG") {
		cpu = "an emulated " + cpu
	}
	s := fmt.Sprintf("The VM runs another kernel (`%s`) on %s: ", vm.Kernel, cpu)
	_, fN, _, _ := hookCosts(findTool(nat, "ours"), "retransmit_skb")
	_, fV, _, _ := hookCosts(findTool(vm, "ours"), "retransmit_skb")
	if fN.N > 0 && fV.N > 0 {
		s += fmt.Sprintf("the floor's program on `tcp_retransmit_skb` costs %s ns/run there against %s natively (%s); ",
			stats.Num(fV.Med, 0), stats.Num(fN.Med, 0), stats.Ratio(fV.Med, fN.Med))
	}
	return s + "compare tracers with each other within the VM, not with native figures."
}

// vmNotes are about the tracers that ran in the VM.
func vmNotes(nat, vm *Result) []string {
	n := []string{vmFloorNote(nat, vm)}
	ig := ran(vm, "ours") || ran(vm, "compare")
	bcc, bt := ran(vm, "bcc"), ran(vm, "bpftrace")
	if bcc {
		n = append(n, "BCC's tcpretrans runs with `-l` (tail loss probes too, like this gadget's LOSS events).")
	}
	if bt {
		n = append(n, "bpftrace's tcpretrans.bt has only a kprobe on the function `tcp_retransmit_skb()`; "+
			"retransmissions sent by tail loss probes call `__tcp_retransmit_skb()` directly (where the tracepoint is), so it does not see them: its hook coverage is below 100% by design, not by loss.")
	}
	var lost, procs []string
	for _, x := range []struct {
		ran        bool
		lost, proc string
	}{{ig, "ig reports lost ring-buffer events on stderr (`reading event: lost N samples`)", "ig"},
		{bcc, "BCC prints `Possibly lost N samples`", "python3 for BCC"},
		{bt, "bpftrace prints `Lost N events`", "bpftrace"}} {
		if x.ran {
			lost, procs = append(lost, x.lost), append(procs, x.proc)
		}
	}
	if len(lost) > 0 {
		n = append(n, strings.Join(lost, "; ")+". These are added up per run.",
			"CPU per event counts only the tracer's process ("+strings.Join(procs, ", ")+"), not the BPF programs' time in the kernel, which is in the BPF cost tables.")
	}
	for _, t := range vm.Tools {
		if t.Error != "" {
			n = append(n, fmt.Sprintf("%s did not run in the VM: %s", toolLabel[t.Name], oneLine(t.Error)))
		}
	}
	return n
}

// ran tells whether a tracer of a phase started (and so has measurements).
func ran(r *Result, name string) bool {
	t := findTool(r, name)
	return t != nil && t.Error == ""
}
