// Command bench measures what tracing TCP retransmissions costs: the BPF
// cost per event of this gadget against an empty program on the same hooks
// (the floor) and against other tracers, and end to end, in a Debian kernel
// under QEMU, the events delivered, lost, CPU and memory of ig, BCC's
// tcpretrans and bpftrace's tcpretrans.bt on the same workload.
//
//	bench native -object .build/amd64.bpf.o [-variants DIR] -floor F.o -loadgen L -out native.json
//	bench vm     -floor F.o -loadgen L -ig bin/ig -out vm.json      (inside the VM)
//	bench extract -ig bin/ig -image IMG -out obj.o                  (BPF object of an image)
//	bench report -native native.json -vm vm.json -dir bench/results
//
// The workload (test/loadgen) runs in a network namespace made for each
// window, with nftables dropping packets at input; nothing leaves loopback.
package main

import (
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
	Level       string           `json:"level"`
	Run         int              `json:"run"`
	Seconds     float64          `json:"seconds"`
	Loadgen     map[string]any   `json:"loadgen,omitempty"`
	RetransSegs int64            `json:"retrans_segs"` // Tcp RetransSegs of the namespace
	Hooks       map[string]int64 `json:"hooks"`        // how often each hook fired (floor run_cnt)
	Floor       []ProgStat       `json:"floor"`
	Tool        []ProgStat       `json:"tool"`
	Counts      Counts           `json:"counts"`
	CPUSec      float64          `json:"cpu_s"`
	HWMKiB      int64            `json:"hwm_kib"`
	Error       string           `json:"error,omitempty"`
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

func uname() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return modelName(string(b))
}

func cpuCount() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return processorCount(string(b))
}

// modelName is the first "model name" of /proc/cpuinfo, "?" if none.
func modelName(cpuinfo string) string {
	for _, l := range strings.Split(cpuinfo, "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "?"
}

// processorCount counts the "processor" lines of /proc/cpuinfo.
func processorCount(cpuinfo string) int {
	n := strings.Count(cpuinfo, "\nprocessor")
	if strings.HasPrefix(cpuinfo, "processor") {
		n++
	}
	return n
}

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
