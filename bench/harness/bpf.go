package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

// ProgStat is one BPF program as `bpftool prog show -j` reports it.
type ProgStat struct {
	ID       int     `json:"id"`
	Type     string  `json:"type"`
	Name     string  `json:"name"`
	RunNs    int64   `json:"run_time_ns"`
	RunCnt   int64   `json:"run_cnt"`
	Missed   int64   `json:"recursion_misses"`
	Owner    string  `json:"owner,omitempty"` // floor, tool, other
	Hook     string  `json:"hook,omitempty"`  // retransmit_skb, retransmit_synack, timer, tlp
	NsPerRun float64 `json:"ns_per_run,omitempty"`
}

// progStats returns every loaded BPF program with its run statistics.
func progStats() (map[int]ProgStat, error) {
	out, err := exec.Command("bpftool", "prog", "show", "-j").Output()
	if err != nil {
		return nil, fmt.Errorf("bpftool prog show: %w", err)
	}
	var list []ProgStat
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("bpftool prog show: %w", err)
	}
	m := map[int]ProgStat{}
	for _, p := range list {
		m[p.ID] = p
	}
	return m, nil
}

// statsDelta gives the programs that ran between two snapshots.
func statsDelta(before, after map[int]ProgStat) []ProgStat {
	var d []ProgStat
	for id, a := range after {
		b := before[id] // zero if the program is new
		a.RunNs -= b.RunNs
		a.RunCnt -= b.RunCnt
		a.Missed -= b.Missed
		if a.RunCnt <= 0 {
			continue
		}
		a.NsPerRun = float64(a.RunNs) / float64(a.RunCnt)
		d = append(d, a)
	}
	return d
}

func enableStats() error {
	return os.WriteFile("/proc/sys/kernel/bpf_stats_enabled", []byte("1\n"), 0o644)
}

// kprobesAvailable is the gadget's kprobe check (contract.KprobeSymbol in
// /proc/kallsyms).
func kprobesAvailable() bool {
	ok, err := gadgettest.HasKprobes()
	return err == nil && ok
}

// hookOfSection names the hook of an ELF section the way the report does:
// by the tracepoint or function, whatever the kind of program, so that a
// classic tracepoint (tracepoint/tcp/tcp_retransmit_skb) and a BTF one
// (tp_btf/tcp_retransmit_skb) are on the same hook. A perf_event program
// (the gadget's wake-up program) is on a cpu-clock event of every CPU.
func hookOfSection(sec string) string {
	switch {
	case strings.HasPrefix(sec, "perf_event/"):
		return "cpu_clock"
	case strings.HasSuffix(sec, "/tcp_retransmit_skb"):
		return "retransmit_skb"
	case strings.HasSuffix(sec, "/tcp_retransmit_synack"):
		return "retransmit_synack"
	case strings.HasSuffix(sec, "/timer_expire_entry"):
		return "timer"
	case strings.HasSuffix(sec, "/tcp_send_loss_probe"):
		return "tlp"
	}
	return ""
}

// Object is a loaded and attached BPF object whose buffers the bench may
// read.
type Object struct {
	Name    string
	obj     *gadgettest.Object
	IDs     map[int]string    // program id -> hook
	Names   map[string]string // program name -> hook
	Skipped []string
	readers []*gadgettest.Reader
	Events  *eventCounter
}

// Close stops the readers and detaches and unloads the object.
func (o *Object) Close() {
	for _, r := range o.readers {
		if err := r.Close(); err != nil {
			logf("%s: reading its buffer: %v", o.Name, err)
		}
	}
	o.obj.Close()
}

// loadObject loads an object file, attaches its tracepoints (and kprobes if
// the kernel has them) and, when drain is set, reads its ring buffers and
// perf buffers in the background, counting what it reads.
func loadObject(name, path string, drain bool) (*Object, error) {
	return loadObjectMode(name, path, drain, false, nil)
}

// loadObjectMode: batched makes the ring-buffer reader poll every 50 ms
// instead of sleeping in epoll, so that the kernel rarely has a reader to
// wake (it wakes one only when the reader has caught up); cfg is the
// gadget's parameters' map entry (nil: the defaults, as ig writes them).
func loadObjectMode(name, path string, drain, batched bool, cfg *contract.Config) (*Object, error) {
	spec, err := gadgettest.LoadSpec(path)
	if err != nil {
		return nil, err
	}
	o := &Object{Name: name, IDs: map[int]string{}, Names: map[string]string{}}
	// Programs that are not attached are not loaded either, so that a
	// kprobe program does not count.
	var skip []string
	skip, o.Skipped = programsToSkip(spec, kprobesAvailable(), name == "floor")
	// gadgettest attaches every program it loads as ig does: classic
	// and BTF tracepoints, kprobes, perf_event programs.
	o.obj, err = gadgettest.LoadFromSpec(spec, gadgettest.Options{Skip: skip, Config: cfg})
	if err != nil {
		if why := missingContexts(spec, kernelHasStruct); len(why) > 0 {
			return nil, fmt.Errorf("%s: %s: %w", path, strings.Join(why, "; "), err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for n, p := range spec.Programs {
		info, err := o.obj.Coll.Programs[n].Info()
		if err != nil {
			o.Close()
			return nil, err
		}
		id, _ := info.ID()
		o.IDs[int(id)] = hookOfSection(p.SectionName)
		o.Names[n] = hookOfSection(p.SectionName)
	}
	o.Events = newEventCounter(spec)
	if drain {
		if err := o.drain(batched); err != nil {
			o.Close()
			return nil, err
		}
	}
	return o, nil
}

// programsToSkip follows the gadget's "auto" loss-probe hook: the kprobe
// where kprobes exist, else the timer tracepoint, never both (the floor
// attaches both, to measure each hook). It returns the programs to leave
// out and why.
func programsToSkip(spec *ebpf.CollectionSpec, kprobes, floor bool) (skip, why []string) {
	hasKprobeTLP := false
	for _, p := range spec.Programs {
		if hookOfSection(p.SectionName) == "tlp" {
			hasKprobeTLP = true
		}
	}
	for n, p := range spec.Programs {
		reason := ""
		switch {
		case strings.HasPrefix(p.SectionName, "kprobe/") || strings.HasPrefix(p.SectionName, "kretprobe/"):
			if !kprobes {
				reason = "no kprobes on this kernel"
			}
		case strings.HasPrefix(p.SectionName, "tracepoint/") || strings.HasPrefix(p.SectionName, "tp_btf/"):
			if hookOfSection(p.SectionName) == "timer" && hasKprobeTLP && kprobes && !floor {
				reason = "kprobe used for loss probes"
			}
		case strings.HasPrefix(p.SectionName, "perf_event/"):
			// gadgettest attaches it as ig does: to a cpu-clock event
			// on every CPU at the frequency of the max-delay, not at
			// all with max-delay 0.
		default:
			reason = "section " + p.SectionName + " not attached by the bench"
		}
		if reason != "" {
			skip = append(skip, n)
			why = append(why, n+" ("+reason+")")
		}
	}
	return skip, why
}

// missingContexts explains why a classic tracepoint program cannot load:
// the struct its context points to (its first argument, the tracepoint's
// record, such as trace_event_raw_tcp_event_sk_skb) is not in the kernel's
// BTF, so CO-RE cannot relocate the program's reads of it. A kernel changes
// these structs when it changes a tracepoint's fields. has tells whether
// the kernel has a struct of that name.
func missingContexts(spec *ebpf.CollectionSpec, has func(name string) bool) []string {
	var why []string
	for n, p := range spec.Programs {
		if !strings.HasPrefix(p.SectionName, "tracepoint/") || len(p.Instructions) == 0 {
			continue
		}
		if st := contextStruct(p); st != "" && !has(st) {
			why = append(why, fmt.Sprintf("this kernel has no struct %s, the context of %s (%s)", st, n, p.SectionName))
		}
	}
	slices.Sort(why)
	return why
}

// contextStruct is the name of the struct a program's first argument
// points to, from the object's BTF; "" if unknown.
func contextStruct(p *ebpf.ProgramSpec) string {
	fn := btf.FuncMetadata(&p.Instructions[0])
	if fn == nil {
		return ""
	}
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok || len(proto.Params) == 0 {
		return ""
	}
	ptr, ok := btf.UnderlyingType(proto.Params[0].Type).(*btf.Pointer)
	if !ok {
		return ""
	}
	if st, ok := btf.UnderlyingType(ptr.Target).(*btf.Struct); ok {
		return st.Name
	}
	return ""
}

// kernelHasStruct looks a struct up in the running kernel's BTF; true when
// that BTF cannot be read (nothing is known to be missing).
func kernelHasStruct(name string) bool {
	k, err := btf.LoadKernelSpec()
	if err != nil {
		return true
	}
	var st *btf.Struct
	return k.TypeByName(name, &st) == nil
}

// drain reads every ring buffer and perf buffer of the object, counting
// what it reads.
func (o *Object) drain(batched bool) error {
	opts := gadgettest.ReadOptions{Lost: func(n uint64) { o.Events.lost.Add(int64(n)) }}
	if batched {
		opts.Batch = 50 * time.Millisecond
	}
	for mn, m := range o.obj.Coll.Maps {
		if m.Type() != ebpf.RingBuf && m.Type() != ebpf.PerfEventArray {
			continue
		}
		r, err := gadgettest.Read(m, opts, o.Events.add)
		if err != nil {
			return fmt.Errorf("%s: %w", mn, err)
		}
		o.readers = append(o.readers, r)
	}
	return nil
}
