package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"trace_tcpretrans/go/contract"
)

// measureFlags are the flags of `bench native` and `bench vm`.
type measureFlags struct {
	object, compareObj, compareImage, image string
	floorObj, loadgen, ig                   string
	bcc, bccKsrc, bpftrace, btScript        string
	variants                                string // directory of the BENCH_LEAVE_OUT objects (native)
	levels                                  []Level
	runs, secs                              int
	out, only                               string
}

func parseMeasureFlags(phase string, args []string) (*measureFlags, error) {
	f := &measureFlags{}
	fs := flag.NewFlagSet(phase, flag.ExitOnError)
	fs.StringVar(&f.object, "object", ".build/amd64.bpf.o", "this gadget's BPF object (native)")
	fs.StringVar(&f.variants, "variants", "", "directory of this gadget's objects built with BENCH_LEAVE_OUT (leave-out-owner.bpf.o, leave-out-reads.bpf.o, leave-out-event.bpf.o; empty: not measured; in the VM they are measured with this gadget's and the comparison's objects, without ig, as obj-*)")
	fs.StringVar(&f.compareObj, "compare-object", "", "BPF object of the comparison image (native: loaded; vm: program names)")
	fs.StringVar(&f.compareImage, "compare-image", "", "comparison image in ig's local store (vm)")
	fs.StringVar(&f.image, "image", "", "this gadget's image in ig's local store (vm; make bench passes $(IMAGE))")
	fs.StringVar(&f.floorObj, "floor", "", "the floor's BPF object (bench/floor.bpf.c)")
	fs.StringVar(&f.loadgen, "loadgen", ".build/loadgen", "the load generator (test/loadgen)")
	fs.StringVar(&f.ig, "ig", "bin/ig", "ig binary (vm)")
	fs.StringVar(&f.bcc, "bcc", "/usr/sbin/tcpretrans-bpfcc", "BCC's tcpretrans (vm; empty to skip)")
	fs.StringVar(&f.bccKsrc, "bcc-kernel-source", "", "kernel headers for BCC (BCC_KERNEL_SOURCE)")
	fs.StringVar(&f.bpftrace, "bpftrace", "/usr/bin/bpftrace", "bpftrace (vm; empty to skip)")
	fs.StringVar(&f.btScript, "bpftrace-script", "/usr/sbin/tcpretrans.bt", "bpftrace's tcpretrans.bt")
	levels := fs.String("levels", "8:50:0", "workload levels streams:dropmod:synrate,...")
	fs.IntVar(&f.runs, "runs", 3, "runs per level and tool")
	fs.IntVar(&f.secs, "seconds", 20, "workload seconds per run")
	fs.StringVar(&f.out, "out", "", "JSON result file")
	fs.StringVar(&f.only, "tools", "", "comma-separated subset of tools to run (ours,ours-wake-each,ours-metrics,ours-count,compare,bcc,bpftrace,ours-no-owner,ours-no-reads,ours-no-event,ours-nodrain,ours-batched; in the VM also obj-ours,obj-ours-no-owner,obj-ours-no-reads,obj-ours-no-event,obj-compare)")
	_ = fs.Parse(args)
	if f.out == "" || f.floorObj == "" {
		return nil, fmt.Errorf("-out and -floor are required")
	}
	if phase == "vm" && f.image == "" {
		return nil, fmt.Errorf("-image is required in the VM (make bench passes it)")
	}
	var err error
	f.levels, err = parseLevels(*levels)
	return f, err
}

// want tells whether -tools selects a tool (all when -tools is empty).
func (f *measureFlags) want(name string) bool {
	return f.only == "" || strings.Contains(","+f.only+",", ","+name+",")
}

// toolEntry is a tool to measure and its result so far.
type toolEntry struct {
	res  ToolResult
	tool Tool
}

// cmdMeasure measures the floor and every tool of a phase, one tool after
// the other, and writes the Result as JSON.
func cmdMeasure(phase string, args []string) error {
	f, err := parseMeasureFlags(phase, args)
	if err != nil {
		return err
	}
	start := time.Now()
	res := &Result{Phase: phase, Kernel: uname(), CPUModel: cpuModel(), CPUs: cpuCount(),
		Date: time.Now().UTC().Format(time.RFC3339), Runs: f.runs, Seconds: f.secs, Levels: f.levels,
		Kprobes: kprobesAvailable()}
	restore, err := enableStatsRestorable()
	if err != nil {
		return fmt.Errorf("kernel.bpf_stats_enabled: %w", err)
	}
	defer restore()
	floor, err := loadObject("floor", f.floorObj, false)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer floor.Close()
	res.FloorSkip = floor.Skipped
	logf("%s: kernel %s, floor attached on %v", phase, res.Kernel, floor.Names)

	var tools []toolEntry
	if phase == "native" {
		tools = nativeTools(f)
	} else if tools, err = vmTools(f); err != nil {
		return err
	}
	for i := range tools {
		res.Tools = append(res.Tools, measureTool(phase, &tools[i], floor, f))
	}
	res.WallSec = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(res, "", "  ")
	return os.WriteFile(f.out, b, 0o644)
}

// enableStatsRestorable sets kernel.bpf_stats_enabled and returns what
// puts back its previous value.
func enableStatsRestorable() (func(), error) {
	const path = "/proc/sys/kernel/bpf_stats_enabled"
	old, _ := os.ReadFile(path)
	if err := enableStats(); err != nil {
		return nil, err
	}
	return func() {
		if len(old) > 0 {
			_ = os.WriteFile(path, old, 0o644)
		}
	}, nil
}

// leaveOut is an object built from program.bpf.c with -DBENCH_LEAVE_OUT=bit,
// which leaves out one step of an event (see program.bpf.c): without is
// that step.
type leaveOut struct {
	name, file, without string
	bit                 int
}

// label is the variant's label in the result.
func (v leaveOut) label() string {
	return fmt.Sprintf("this gadget without %s (BENCH_LEAVE_OUT=%d)", v.without, v.bit)
}

// leaveOuts are the variants `bench native -variants DIR` loads from DIR
// (bench/run.sh builds them), each measured like this gadget: default
// parameters, ring buffer read by a waiting reader.
var leaveOuts = []leaveOut{
	{"ours-no-owner", "leave-out-owner.bpf.o", "the socket-owner lookup", 1},
	{"ours-no-reads", "leave-out-reads.bpf.o", "the socket and segment reads", 2},
	{"ours-no-event", "leave-out-event.bpf.o", "the event: nothing reserved", 4},
}

// wakeEachConfig is the parameters' defaults with max_delay_us 0: the
// reader is woken for every event (--max-delay 0).
func wakeEachConfig() *contract.Config {
	c := contract.DefaultConfig()
	c.MaxDelayUs = 0
	return &c
}

// nativeTools: this gadget's object loaded in this process, the same with
// a wake-up for every event, the BENCH_LEAVE_OUT variants (with
// -variants), the two diagnostics and the comparison image's object.
func nativeTools(f *measureFlags) []toolEntry {
	tools := []toolEntry{{ToolResult{Name: "ours", Label: "this gadget (cilium/ebpf loader)", Command: f.object},
		&objectTool{name: "ours", path: f.object, drain: true}}}
	if f.want("ours-wake-each") {
		// The same object and reader with max_delay_us 0: every event
		// that finds the reader waiting wakes it, as before batching.
		tools = append(tools, toolEntry{ToolResult{Name: "ours-wake-each", Label: "this gadget, max_delay_us 0: the reader woken for every event (cilium/ebpf loader)", Command: f.object},
			&objectTool{name: "ours-wake-each", path: f.object, drain: true, config: wakeEachConfig()}})
	}
	if f.variants != "" {
		for _, v := range leaveOuts {
			if !f.want(v.name) {
				continue
			}
			path := filepath.Join(f.variants, v.file)
			tools = append(tools, toolEntry{ToolResult{Name: v.name, Label: v.label(), Command: path},
				&objectTool{name: v.name, path: path, drain: true}})
		}
	}
	if f.want("ours-nodrain") {
		// A diagnostic: the same object with nobody reading its ring
		// buffer, so reservations fail once it is full and events cost
		// only the work before the reservation.
		tools = append(tools, toolEntry{ToolResult{Name: "ours-nodrain", Label: "this gadget, ring buffer not read (diagnostic)", Command: f.object},
			&objectTool{name: "ours-nodrain", path: f.object}})
	}
	if f.want("ours-batched") {
		// Another diagnostic: the ring buffer read every 50 ms, so
		// that submits seldom find a reader to wake.
		tools = append(tools, toolEntry{ToolResult{Name: "ours-batched", Label: "this gadget, ring buffer read every 50 ms (diagnostic)", Command: f.object},
			&objectTool{name: "ours-batched", path: f.object, drain: true, batched: true}})
	}
	if f.compareObj != "" && f.want("compare") {
		tools = append(tools, toolEntry{ToolResult{Name: "compare", Label: "comparison image (cilium/ebpf loader)", Image: f.compareImage, Command: f.compareObj},
			&objectTool{name: "compare", path: f.compareObj, drain: true}})
	}
	return tools
}

// vmTools: this gadget and the comparison image run by ig, BCC and bpftrace.
func vmTools(f *measureFlags) ([]toolEntry, error) {
	oursNames, err := objectProgNames(f.object)
	if err != nil {
		return nil, err
	}
	tools := oursIGTools(f, oursNames)
	if f.compareImage != "" && f.want("compare") {
		// Without its object's names, hooks are guessed from the names
		// bpftool shows (procTool.HookOf): the comparison is not lost.
		names := map[string]string{}
		if f.compareObj != "" {
			if names, err = objectProgNames(f.compareObj); err != nil {
				logf("vm: the comparison image's program names: %v", err)
				names = map[string]string{}
			}
		}
		t := igTool(f.ig, f.compareImage, names)
		t.waitPrograms(firstNameFor(names, "retransmit_skb"))
		tools = append(tools, toolEntry{ToolResult{Name: "compare", Label: "comparison image via ig", Image: f.compareImage, Command: strings.Join(t.argv, " ")}, t})
	}
	tools = append(tools, vmObjectTools(f)...)
	if f.bcc != "" && f.want("bcc") {
		t := bccTool(f.bcc, f.bccKsrc)
		tools = append(tools, toolEntry{ToolResult{Name: "bcc", Label: "BCC tcpretrans (bpfcc-tools)", Command: "BCC_KERNEL_SOURCE=" + f.bccKsrc + " " + strings.Join(t.argv, " ")}, t})
	}
	if f.bpftrace != "" && f.want("bpftrace") {
		t := bpftraceTool(f.bpftrace, f.btScript)
		tools = append(tools, toolEntry{ToolResult{Name: "bpftrace", Label: "bpftrace tcpretrans.bt", Command: strings.Join(t.argv, " ")}, t})
	}
	return tools, nil
}

// vmObjectTools (with -variants): in the VM, without ig, this gadget's
// object, its BENCH_LEAVE_OUT variants and the comparison's object, each
// loaded and read by the harness as natively: where the cost is in the
// guest's kernel, and the objects against each other without ig's side.
func vmObjectTools(f *measureFlags) []toolEntry {
	if f.variants == "" {
		return nil
	}
	type obj struct{ name, label, path string }
	objs := []obj{{"obj-ours", "this gadget's object (cilium/ebpf loader)", f.object}}
	for _, v := range leaveOuts {
		objs = append(objs, obj{"obj-" + v.name, v.label() + " (cilium/ebpf loader)", filepath.Join(f.variants, v.file)})
	}
	if f.compareObj != "" {
		objs = append(objs, obj{"obj-compare", "comparison image's object (cilium/ebpf loader)", f.compareObj})
	}
	var tools []toolEntry
	for _, o := range objs {
		if f.want(o.name) {
			tools = append(tools, toolEntry{ToolResult{Name: o.name, Label: o.label, Command: o.path},
				&objectTool{name: o.name, path: o.path, drain: true}})
		}
	}
	return tools
}

// oursIGTools: this gadget run by ig, in vmTools' order: its event stream,
// the same with ig woken for every event (--max-delay 0, against the
// batched wake-ups of the default), with Prometheus metrics on, and in
// count mode: what these cost next to the event stream, in the same run.
// names are its object's program names.
func oursIGTools(f *measureFlags, names map[string]string) []toolEntry {
	var tools []toolEntry
	for _, m := range []struct {
		name, label string
		make        func(ig, image string, names map[string]string) *procTool
	}{
		{"ours", "this gadget via ig", func(ig, image string, names map[string]string) *procTool { return igTool(ig, image, names) }},
		{"ours-wake-each", "this gadget via ig --max-delay 0", igWakeEachTool},
		{"ours-metrics", "this gadget via ig, with metrics (otel-metrics)", igMetricsTool},
		{"ours-count", "this gadget via ig --count", igCountTool},
	} {
		if f.want(m.name) {
			t := m.make(f.ig, f.image, names)
			t.waitPrograms(firstNameFor(names, "retransmit_skb"))
			tools = append(tools, toolEntry{ToolResult{Name: m.name, Label: m.label, Image: f.image, Command: strings.Join(t.argv, " ")}, t})
		}
	}
	return tools
}

// measureTool starts a tool, runs every level f.runs times with it and
// stops it.
func measureTool(phase string, e *toolEntry, floor *Object, f *measureFlags) ToolResult {
	logf("%s: starting %s", phase, e.res.Label)
	before, _ := progStats()
	t0 := time.Now()
	if err := e.tool.Start(); err != nil {
		e.res.Error = err.Error()
		logf("%s: %s failed: %v", phase, e.res.Label, err)
		e.tool.Stop()
		return e.res
	}
	e.res.StartupSec = time.Since(t0).Seconds()
	if ot, ok := e.tool.(*objectTool); ok {
		e.res.Skipped = ot.obj.Skipped
	}
	if pid := e.tool.Pid(); pid > 0 {
		e.res.StartupCPU = procCPU(pid)
	}
	logf("%s: %s attached in %.1fs", phase, e.res.Label, e.res.StartupSec)
	for _, lv := range f.levels {
		for r := 1; r <= f.runs; r++ {
			w := runWindow(e.tool, floor, before, lv, r, time.Duration(f.secs)*time.Second, f.loadgen)
			logf("%s: %s level %s run %d: hooks=%v retrans_segs=%d events=%d retrans=%d loss=%d lost=%d cpu=%.2fs err=%s",
				phase, e.res.Name, lv.Name, r, w.Hooks, w.RetransSegs, w.Counts.Events, w.Counts.Retrans, w.Counts.Loss, w.Counts.Lost, w.CPUSec, w.Error)
			e.res.Windows = append(e.res.Windows, w)
		}
	}
	if pid := e.tool.Pid(); pid > 0 {
		e.res.HWMKiB = procHWM(pid)
	}
	e.res.Tail = e.tool.Stop()
	time.Sleep(time.Second)
	return e.res
}

// runWindow runs the workload once and measures everything around it.
func runWindow(t Tool, floor *Object, baseline map[int]ProgStat, lv Level, run int, d time.Duration, loadgen string) Window {
	w := Window{Level: lv.Name, Run: run, Hooks: map[string]int64{}}
	ns, err := newNetns(lv)
	if err != nil {
		w.Error = err.Error()
		return w
	}
	defer ns.Delete()
	c0 := t.Counts()
	pid := t.Pid()
	cpu0 := procCPU(pid)
	s0, err := progStats()
	if err != nil {
		w.Error = err.Error()
		return w
	}
	t0 := time.Now()
	w.Loadgen, err = ns.runLoad(loadgen, lv, d)
	if err != nil {
		w.Error = err.Error()
	}
	// Let the tracer drain what it has not delivered yet.
	time.Sleep(3 * time.Second)
	s1, err := progStats()
	if err != nil {
		w.Error = err.Error()
		return w
	}
	w.Seconds = time.Since(t0).Seconds()
	w.Counts = t.Counts().sub(c0)
	if pid > 0 {
		w.CPUSec = procCPU(pid) - cpu0
		w.HWMKiB = procHWM(pid)
	}
	w.RetransSegs, _ = ns.retransSegs()
	assignPrograms(&w, statsDelta(s0, s1), floor.IDs, baseline, t.HookOf)
	return w
}

// assignPrograms sorts the programs that ran in a window: the floor's
// (counted per hook in w.Hooks), the tool's (those not loaded before it
// started), and the rest, which are dropped.
func assignPrograms(w *Window, ran []ProgStat, floorIDs map[int]string, baseline map[int]ProgStat, hookOf func(ProgStat) string) {
	for _, p := range ran {
		if h, ok := floorIDs[p.ID]; ok {
			p.Owner, p.Hook = "floor", h
			w.Floor = append(w.Floor, p)
			w.Hooks[h] += p.RunCnt
			continue
		}
		if _, old := baseline[p.ID]; old {
			continue // not the tool's: present before it started
		}
		p.Owner, p.Hook = "tool", hookOf(p)
		w.Tool = append(w.Tool, p)
	}
}
