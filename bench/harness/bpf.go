package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
)

// ProgStat is one BPF program as `bpftool prog show -j` reports it.
type ProgStat struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	RunNs   int64  `json:"run_time_ns"`
	RunCnt  int64  `json:"run_cnt"`
	Missed  int64  `json:"recursion_misses"`
	Owner   string `json:"owner,omitempty"` // floor, tool, other
	Hook    string `json:"hook,omitempty"`  // retransmit_skb, retransmit_synack, timer, tlp
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

func kprobesAvailable() bool {
	for _, p := range []string{"/sys/bus/event_source/devices/kprobe", "/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// hookOfSection names the hook of an ELF section the way the report does.
func hookOfSection(sec string) string {
	switch {
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

// Object is a loaded and attached BPF object.
type Object struct {
	Name     string
	coll     *ebpf.Collection
	links    []link.Link
	IDs      map[int]string // program id -> hook
	Names    map[string]string
	Skipped  []string
	readers  []func() error
	Events   *eventCounter
}

func (o *Object) Close() {
	for _, l := range o.links {
		l.Close()
	}
	for _, c := range o.readers {
		_ = c()
	}
	if o.coll != nil {
		o.coll.Close()
	}
}

// socketValueTargets: IG's gadget_socket_value is marked
// preserve_access_index and supplied by ig at run time; outside ig the
// relocations against it need a BTF spec that holds only that struct.
func socketValueTargets(spec *ebpf.CollectionSpec) []*btf.Spec {
	var sv *btf.Struct
	if spec.Types == nil || spec.Types.TypeByName("gadget_socket_value", &sv) != nil {
		return nil
	}
	b, err := btf.NewBuilder([]btf.Type{sv}, nil)
	if err != nil {
		return nil
	}
	s, err := b.Spec()
	if err != nil {
		return nil
	}
	return []*btf.Spec{s}
}

// loadObject loads an object file, attaches its tracepoints (and kprobes if
// the kernel has them) and, when drain is set, reads its ring buffers and
// perf buffers in the background, counting what it reads.
func loadObject(name, path string, drain bool) (*Object, error) {
	return loadObjectMode(name, path, drain, false)
}

// loadObjectMode: batched makes the ring-buffer reader poll every 50 ms
// instead of sleeping in epoll, so that the kernel rarely has a reader to
// wake (it wakes one only when the reader has caught up).
func loadObjectMode(name, path string, drain, batched bool) (*Object, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, err
	}
	kp := kprobesAvailable()
	o := &Object{Name: name, IDs: map[int]string{}, Names: map[string]string{}}
	// Like the gadget's "auto" loss-probe hook: the kprobe where kprobes
	// exist, else the timer tracepoint; never both.
	hasKprobeTLP := false
	for _, p := range spec.Programs {
		if hookOfSection(p.SectionName) == "tlp" {
			hasKprobeTLP = true
		}
	}
	attach := map[string]bool{}
	for n, p := range spec.Programs {
		h := hookOfSection(p.SectionName)
		switch {
		case strings.HasPrefix(p.SectionName, "kprobe/") || strings.HasPrefix(p.SectionName, "kretprobe/"):
			if !kp {
				o.Skipped = append(o.Skipped, n+" (no kprobes on this kernel)")
				continue
			}
		case strings.HasPrefix(p.SectionName, "tracepoint/"):
			if h == "timer" && hasKprobeTLP && kp && name != "floor" {
				o.Skipped = append(o.Skipped, n+" (kprobe used for loss probes)")
				continue
			}
		default:
			o.Skipped = append(o.Skipped, n+" (section "+p.SectionName+" not attached by the bench)")
			continue
		}
		attach[n] = true
	}
	// Programs that are not attached are not loaded either, so that a
	// kprobe program does not count.
	for n := range spec.Programs {
		if !attach[n] {
			delete(spec.Programs, n)
		}
	}
	o.coll, err = ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{ExtraRelocationTargets: socketValueTargets(spec)},
	})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("loading %s: %v", path, firstLines(fmt.Sprintf("%+v", verr), 20))
		}
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if err := writeConfig(o.coll, spec); err != nil {
		o.Close()
		return nil, err
	}
	for n, p := range spec.Programs {
		prog := o.coll.Programs[n]
		var l link.Link
		if strings.HasPrefix(p.SectionName, "tracepoint/") {
			parts := strings.SplitN(strings.TrimPrefix(p.SectionName, "tracepoint/"), "/", 2)
			l, err = link.Tracepoint(parts[0], parts[1], prog, nil)
		} else {
			l, err = link.Kprobe(p.AttachTo, prog, nil)
		}
		if err != nil {
			o.Close()
			return nil, fmt.Errorf("attaching %s: %w", n, err)
		}
		o.links = append(o.links, l)
		info, err := prog.Info()
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
		for mn, m := range o.coll.Maps {
			switch m.Type() {
			case ebpf.RingBuf:
				r, err := ringbuf.NewReader(m)
				if err != nil {
					o.Close()
					return nil, fmt.Errorf("ring buffer %s: %w", mn, err)
				}
				o.readers = append(o.readers, r.Close)
				go func() {
					var rec ringbuf.Record
					for {
						if batched {
							time.Sleep(50 * time.Millisecond)
							r.SetDeadline(time.Now())
						}
						err := r.ReadInto(&rec)
						if batched && errors.Is(err, os.ErrDeadlineExceeded) {
							continue
						}
						if err != nil {
							return
						}
						o.Events.add(rec.RawSample)
						// Empty the buffer before sleeping again.
						for batched {
							if err := r.ReadInto(&rec); err != nil {
								break
							}
							o.Events.add(rec.RawSample)
						}
					}
				}()
			case ebpf.PerfEventArray:
				r, err := perf.NewReader(m, 256*os.Getpagesize())
				if err != nil {
					o.Close()
					return nil, fmt.Errorf("perf buffer %s: %w", mn, err)
				}
				o.readers = append(o.readers, r.Close)
				go func() {
					var rec perf.Record
					for r.ReadInto(&rec) == nil {
						if rec.LostSamples > 0 {
							o.Events.lost.Add(int64(rec.LostSamples))
							continue
						}
						o.Events.add(rec.RawSample)
					}
				}()
			}
		}
	}
	return o, nil
}

func firstLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = append(l[:n/2], append([]string{"..."}, l[len(l)-n/2:]...)...)
	}
	return strings.Join(l, "\n")
}

// configDefaults are the values ig's wasm operator writes into the gadget's
// tcpretrans_config map when no flag is given (go/hook.Filters): ready, tail
// loss probes and SYN-ACKs reported, failed attempts not, both families.
var configDefaults = map[string]uint64{"ready": 1, "loss": 1, "synack": 1, "failed": 0, "family": 0}

// writeConfig fills the gadget's config map, if the object has one, from its
// BTF layout, as ig's wasm operator does at start; without it the gadget
// emits nothing.
func writeConfig(coll *ebpf.Collection, spec *ebpf.CollectionSpec) error {
	ms, ok := spec.Maps["tcpretrans_config"]
	if !ok {
		return nil
	}
	st, ok := btf.UnderlyingType(ms.Value).(*btf.Struct)
	if !ok {
		return fmt.Errorf("tcpretrans_config: value is not a struct")
	}
	val := make([]byte, st.Size)
	for _, m := range st.Members {
		v, ok := configDefaults[m.Name]
		if !ok {
			return fmt.Errorf("tcpretrans_config: unknown member %q (update bench/harness)", m.Name)
		}
		sz, err := btf.Sizeof(m.Type)
		if err != nil {
			return err
		}
		off := int(m.Offset.Bytes())
		for i := 0; i < sz; i++ {
			val[off+i] = byte(v >> (8 * i)) // little endian
		}
	}
	return coll.Maps["tcpretrans_config"].Put(uint32(0), val)
}
