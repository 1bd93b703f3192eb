// Command bench measures what tracing TCP retransmissions costs: the BPF
// cost per event of this gadget against an empty program on the same hooks
// (the floor) and against other tracers, and end to end, in a Debian kernel
// under QEMU, the events delivered, lost, CPU and memory of ig, BCC's
// tcpretrans and bpftrace's tcpretrans.bt on the same workload.
//
//	bench native -object .build/amd64.bpf.o -floor F.o -loadgen L -out native.json
//	bench vm     -floor F.o -loadgen L -ig bin/ig -out vm.json      (inside the VM)
//	bench extract -ig bin/ig -image IMG -out obj.o                  (BPF object of an image)
//	bench report -native native.json -vm vm.json -dir bench/results
//
// The workload (test/loadgen) runs in a network namespace made for each
// window, with nftables dropping packets at input; nothing leaves loopback.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench native|vm|extract|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "native":
		err = cmdMeasure("native", os.Args[2:])
	case "vm":
		err = cmdMeasure("vm", os.Args[2:])
	case "extract":
		err = cmdExtract(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Window is one bounded run of the workload at one level with one tool.
type Window struct {
	Level       string         `json:"level"`
	Run         int            `json:"run"`
	Seconds     float64        `json:"seconds"`
	Loadgen     map[string]any `json:"loadgen,omitempty"`
	RetransSegs int64          `json:"retrans_segs"` // Tcp RetransSegs of the namespace
	Hooks       map[string]int64 `json:"hooks"`      // how often each hook fired (floor run_cnt)
	Floor       []ProgStat     `json:"floor"`
	Tool        []ProgStat     `json:"tool"`
	Counts      Counts         `json:"counts"`
	CPUSec      float64        `json:"cpu_s"`
	HWMKiB      int64          `json:"hwm_kib"`
	Error       string         `json:"error,omitempty"`
}

// ToolResult is every window of one tool.
type ToolResult struct {
	Name       string   `json:"name"` // ours, compare, bcc, bpftrace
	Label      string   `json:"label"`
	Image      string   `json:"image,omitempty"`
	Command    string   `json:"command,omitempty"`
	Error      string   `json:"error,omitempty"`
	Skipped    []string `json:"skipped,omitempty"`
	StartupSec float64  `json:"startup_s"`
	StartupCPU float64  `json:"startup_cpu_s"`
	HWMKiB     int64    `json:"hwm_kib"`
	Tail       string   `json:"tail,omitempty"`
	Windows    []Window `json:"windows"`
}

// Result is one phase (native or vm).
type Result struct {
	Phase     string       `json:"phase"`
	Kernel    string       `json:"kernel"`
	CPUModel  string       `json:"cpu_model"`
	CPUs      int          `json:"cpus"`
	Date      string       `json:"date"`
	Runs      int          `json:"runs"`
	Seconds   int          `json:"seconds"`
	Levels    []Level      `json:"levels"`
	Kprobes   bool         `json:"kprobes"`
	FloorSkip []string     `json:"floor_skipped,omitempty"`
	Tools     []ToolResult `json:"tools"`
	Notes     []string     `json:"notes,omitempty"`
	WallSec   float64      `json:"wall_s"`
}

func cmdMeasure(phase string, args []string) error {
	fs := flag.NewFlagSet(phase, flag.ExitOnError)
	object := fs.String("object", ".build/amd64.bpf.o", "this gadget's BPF object (native)")
	compareObj := fs.String("compare-object", "", "BPF object of the comparison image (native: loaded; vm: program names)")
	compareImage := fs.String("compare-image", "", "comparison image in ig's local store (vm)")
	image := fs.String("image", "trace_tcpretrans:latest", "this gadget's image (vm)")
	floorObj := fs.String("floor", "", "the floor's BPF object (bench/floor.bpf.c)")
	loadgen := fs.String("loadgen", ".build/loadgen", "the load generator (test/loadgen)")
	ig := fs.String("ig", "bin/ig", "ig binary (vm)")
	bcc := fs.String("bcc", "/usr/sbin/tcpretrans-bpfcc", "BCC's tcpretrans (vm; empty to skip)")
	bccKsrc := fs.String("bcc-kernel-source", "", "kernel headers for BCC (BCC_KERNEL_SOURCE)")
	bpftrace := fs.String("bpftrace", "/usr/bin/bpftrace", "bpftrace (vm; empty to skip)")
	btScript := fs.String("bpftrace-script", "/usr/sbin/tcpretrans.bt", "bpftrace's tcpretrans.bt")
	levelsF := fs.String("levels", "8:50:0", "workload levels streams:dropmod:synrate,...")
	runs := fs.Int("runs", 3, "runs per level and tool")
	secs := fs.Int("seconds", 20, "workload seconds per run")
	out := fs.String("out", "", "JSON result file")
	only := fs.String("tools", "", "comma-separated subset of tools to run (ours,compare,bcc,bpftrace,ours-nodrain,ours-batched)")
	_ = fs.Parse(args)
	if *out == "" || *floorObj == "" {
		return fmt.Errorf("-out and -floor are required")
	}
	levels, err := parseLevels(*levelsF)
	if err != nil {
		return err
	}
	start := time.Now()
	res := &Result{Phase: phase, Kernel: uname(), CPUModel: cpuModel(), CPUs: cpuCount(),
		Date: time.Now().UTC().Format(time.RFC3339), Runs: *runs, Seconds: *secs, Levels: levels,
		Kprobes: kprobesAvailable()}
	oldStats, _ := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	if err := enableStats(); err != nil {
		return fmt.Errorf("kernel.bpf_stats_enabled: %w", err)
	}
	if len(oldStats) > 0 {
		defer os.WriteFile("/proc/sys/kernel/bpf_stats_enabled", oldStats, 0o644)
	}
	floor, err := loadObject("floor", *floorObj, false)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer floor.Close()
	res.FloorSkip = floor.Skipped
	logf("%s: kernel %s, floor attached on %v", phase, res.Kernel, floor.Names)

	want := func(n string) bool { return *only == "" || strings.Contains(","+*only+",", ","+n+",") }
	type entry struct {
		res  ToolResult
		tool Tool
	}
	var tools []entry
	if phase == "native" {
		tools = append(tools, entry{ToolResult{Name: "ours", Label: "this gadget (cilium/ebpf loader)", Command: *object},
			&objectTool{name: "ours", path: *object, drain: true}})
		if want("ours-nodrain") {
			// A diagnostic: the same object with nobody reading its ring
			// buffer, so reservations fail once it is full and events cost
			// only the work before the reservation.
			tools = append(tools, entry{ToolResult{Name: "ours-nodrain", Label: "this gadget, ring buffer not read (diagnostic)", Command: *object},
				&objectTool{name: "ours-nodrain", path: *object}})
		}
		if want("ours-batched") {
			// Another diagnostic: the ring buffer read every 50 ms, so
			// that submits seldom find a reader to wake.
			tools = append(tools, entry{ToolResult{Name: "ours-batched", Label: "this gadget, ring buffer read every 50 ms (diagnostic)", Command: *object},
				&objectTool{name: "ours-batched", path: *object, drain: true, batched: true}})
		}
		if *compareObj != "" && want("compare") {
			tools = append(tools, entry{ToolResult{Name: "compare", Label: "comparison image (cilium/ebpf loader)", Image: *compareImage, Command: *compareObj},
				&objectTool{name: "compare", path: *compareObj, drain: true}})
		}
	} else {
		oursNames, err := objectProgNames(*object)
		if err != nil {
			return err
		}
		if want("ours") {
			t := igTool(*ig, *image, oursNames)
			t.waitPrograms(firstNameFor(oursNames, "retransmit_skb"))
			tools = append(tools, entry{ToolResult{Name: "ours", Label: "this gadget via ig", Image: *image, Command: strings.Join(t.argv, " ")}, t})
		}
		if *compareImage != "" && want("compare") {
			names := map[string]string{}
			if *compareObj != "" {
				if names, err = objectProgNames(*compareObj); err != nil {
					return err
				}
			}
			t := igTool(*ig, *compareImage, names)
			t.waitPrograms(firstNameFor(names, "retransmit_skb"))
			tools = append(tools, entry{ToolResult{Name: "compare", Label: "comparison image via ig", Image: *compareImage, Command: strings.Join(t.argv, " ")}, t})
		}
		if *bcc != "" && want("bcc") {
			t := bccTool(*bcc, *bccKsrc)
			tools = append(tools, entry{ToolResult{Name: "bcc", Label: "BCC tcpretrans (bpfcc-tools)", Command: "BCC_KERNEL_SOURCE=" + *bccKsrc + " " + strings.Join(t.argv, " ")}, t})
		}
		if *bpftrace != "" && want("bpftrace") {
			t := bpftraceTool(*bpftrace, *btScript)
			tools = append(tools, entry{ToolResult{Name: "bpftrace", Label: "bpftrace tcpretrans.bt", Command: strings.Join(t.argv, " ")}, t})
		}
	}

	for i := range tools {
		e := &tools[i]
		logf("%s: starting %s", phase, e.res.Label)
		before, _ := progStats()
		t0 := time.Now()
		if err := e.tool.Start(); err != nil {
			e.res.Error = err.Error()
			logf("%s: %s failed: %v", phase, e.res.Label, err)
			e.tool.Stop()
			res.Tools = append(res.Tools, e.res)
			continue
		}
		e.res.StartupSec = time.Since(t0).Seconds()
		if ot, ok := e.tool.(*objectTool); ok {
			e.res.Skipped = ot.obj.Skipped
		}
		if pid := e.tool.Pid(); pid > 0 {
			e.res.StartupCPU = procCPU(pid)
		}
		logf("%s: %s attached in %.1fs", phase, e.res.Label, e.res.StartupSec)
		for _, lv := range levels {
			for r := 1; r <= *runs; r++ {
				w := runWindow(e.tool, floor, before, lv, r, time.Duration(*secs)*time.Second, *loadgen)
				logf("%s: %s level %s run %d: hooks=%v retrans_segs=%d events=%d retrans=%d loss=%d lost=%d cpu=%.2fs err=%s",
					phase, e.res.Name, lv.Name, r, w.Hooks, w.RetransSegs, w.Counts.Events, w.Counts.Retrans, w.Counts.Loss, w.Counts.Lost, w.CPUSec, w.Error)
				e.res.Windows = append(e.res.Windows, w)
			}
		}
		if pid := e.tool.Pid(); pid > 0 {
			e.res.HWMKiB = procHWM(pid)
		}
		e.res.Tail = e.tool.Stop()
		res.Tools = append(res.Tools, e.res)
		time.Sleep(time.Second)
	}
	res.WallSec = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(res, "", "  ")
	return os.WriteFile(*out, b, 0o644)
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
	for _, p := range statsDelta(s0, s1) {
		if h, ok := floor.IDs[p.ID]; ok {
			p.Owner, p.Hook = "floor", h
			w.Floor = append(w.Floor, p)
			w.Hooks[h] += p.RunCnt
			continue
		}
		if _, old := baseline[p.ID]; old {
			continue // not the tool's: present before it started
		}
		p.Owner, p.Hook = "tool", t.HookOf(p)
		w.Tool = append(w.Tool, p)
	}
	return w
}

func uname() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "?"
}

func cpuCount() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + map[bool]int{true: 1}[strings.HasPrefix(string(b), "processor")]
}

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
