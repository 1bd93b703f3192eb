// Package gadgettest loads the gadget's BPF object (the file that goes into
// the image) outside ig, the way ig does: with IG's socket map types,
// attached by section, with the parameters' map entry written. It decodes
// events by the object's own BTF and makes private network namespaces for
// the traffic. test/bpf, test/contract and bench/ share it; its functions
// return errors and leave assertions to the caller.
package gadgettest

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"trace_tcpretrans/go/contract"
)

// Options change what is loaded; the zero value loads and attaches every
// program and writes the parameters' defaults.
type Options struct {
	Vars     map[string]any   // values of the object's global variables (IG's filters)
	Config   *contract.Config // the parameters' map entry; nil: the defaults
	NoConfig bool             // leave the entry unwritten, as before the wasm operator runs
	NoAttach []string         // programs to load but not attach
	Skip     []string         // programs neither loaded nor attached
}

// Object is a loaded BPF object and the links of its attached programs.
type Object struct {
	Spec  *ebpf.CollectionSpec
	Coll  *ebpf.Collection
	Links map[string]io.Closer // by program name
}

// LoadSpec reads an object file.
func LoadSpec(path string) (*ebpf.CollectionSpec, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, fmt.Errorf("reading the BPF object %s (run 'make build' first): %w", path, err)
	}
	return spec, nil
}

// Load loads the object at path, attaches its programs and, if it has the
// gadget's config map, writes the entry.
func Load(path string, opts Options) (*Object, error) {
	spec, err := LoadSpec(path)
	if err != nil {
		return nil, err
	}
	return LoadFromSpec(spec, opts)
}

// LoadFromSpec is Load for a spec already read (and possibly changed).
func LoadFromSpec(spec *ebpf.CollectionSpec, opts Options) (*Object, error) {
	for name, v := range opts.Vars {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("the object has no variable %q", name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	for _, p := range opts.Skip {
		delete(spec.Programs, p)
	}
	targets, err := SocketValueTargets(spec)
	if err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{ExtraRelocationTargets: targets},
	})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("loading the object: %s", firstLines(fmt.Sprintf("%+v", verr), 40))
		}
		return nil, fmt.Errorf("loading the object: %w", err)
	}
	o := &Object{Spec: spec, Coll: coll, Links: map[string]io.Closer{}}
	c := contract.DefaultConfig()
	if opts.Config != nil {
		c = *opts.Config
	}
	if _, ok := spec.Maps[contract.ConfigMap]; ok && !opts.NoConfig {
		if err := o.WriteConfig(c); err != nil {
			o.Close()
			return nil, err
		}
	}
	for name, p := range spec.Programs {
		if slices.Contains(opts.NoAttach, name) {
			continue
		}
		// As the wasm operator does: no wake-up program where no event
		// waits for it.
		if name == contract.ProgWakeup && (c.MaxDelayUs == 0 || c.Count != 0) {
			continue
		}
		l, err := Attach(p, coll.Programs[name], c)
		if err != nil {
			o.Close()
			return nil, err
		}
		o.Links[name] = l
	}
	return o, nil
}

// Close detaches and unloads everything.
func (o *Object) Close() {
	for _, l := range o.Links {
		l.Close()
	}
	o.Coll.Close()
}

// WriteConfig writes the parameters' map entry, marked ready, as the wasm
// operator does when the gadget starts. The bytes follow the object's own
// struct config, so an object whose layout differs from contract.Config
// (an older image in the benchmark) gets its members by name.
func (o *Object) WriteConfig(c contract.Config) error {
	c.Ready = 1
	st, err := ConfigLayout(o.Spec)
	if err != nil {
		return err
	}
	val, err := EncodeByName(st, c.Members())
	if err != nil {
		return err
	}
	if err := o.Coll.Maps[contract.ConfigMap].Put(uint32(0), val); err != nil {
		return fmt.Errorf("writing %s: %w", contract.ConfigMap, err)
	}
	return nil
}

// Attach attaches a program by its ELF section, as ig does for the kinds
// of section the gadget uses; c sets the frequency of a perf_event program.
func Attach(p *ebpf.ProgramSpec, prog *ebpf.Program, c contract.Config) (io.Closer, error) {
	var l io.Closer
	var err error
	switch {
	case strings.HasPrefix(p.SectionName, "tracepoint/"):
		group, name, ok := strings.Cut(p.AttachTo, "/")
		if !ok {
			return nil, fmt.Errorf("%s: section %q names no tracepoint", p.Name, p.SectionName)
		}
		l, err = link.Tracepoint(group, name, prog, nil)
	case strings.HasPrefix(p.SectionName, "kprobe/"):
		l, err = link.Kprobe(p.AttachTo, prog, nil)
	case strings.HasPrefix(p.SectionName, "tp_btf/"):
		l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	case strings.HasPrefix(p.SectionName, "perf_event/"):
		if c.MaxDelayUs == 0 {
			return nil, fmt.Errorf("%s: no frequency without a max-delay", p.Name)
		}
		l, err = attachCPUClock(prog, contract.WakeupHz(c.MaxDelayUs))
	default:
		return nil, fmt.Errorf("%s: no attach rule for section %q", p.Name, p.SectionName)
	}
	if err != nil {
		return nil, fmt.Errorf("attaching %s: %w", p.Name, err)
	}
	return l, nil
}

// cpuClock is a perf_event program attached to a software cpu-clock event
// on every CPU.
type cpuClock []int

// attachCPUClock attaches prog to a cpu-clock event sampled hz times a
// second on every CPU, as ig does for the gadget.yaml settings of ig_wakeup
// (software, count_sw_cpu_clock, sample_raw), CPUs counted as ig counts them.
func attachCPUClock(prog *ebpf.Program, hz uint64) (io.Closer, error) {
	var fds cpuClock
	for cpu := range runtime.NumCPU() {
		fd, err := unix.PerfEventOpen(&unix.PerfEventAttr{
			Type:        unix.PERF_TYPE_SOFTWARE,
			Config:      unix.PERF_COUNT_SW_CPU_CLOCK,
			Sample_type: unix.PERF_SAMPLE_RAW,
			Sample:      hz,
			Bits:        unix.PerfBitFreq,
		}, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err == nil {
			fds = append(fds, fd)
			err = unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog.FD())
		}
		if err == nil {
			err = unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0)
		}
		if err != nil {
			fds.Close()
			return nil, fmt.Errorf("cpu-clock perf event on CPU %d: %w", cpu, err)
		}
	}
	return fds, nil
}

// Close detaches the program from every CPU.
func (c cpuClock) Close() error {
	for _, fd := range c {
		unix.Close(fd)
	}
	return nil
}

// SocketValueTargets returns a BTF spec holding only IG's
// gadget_socket_value, which ig supplies at run time: the object marks it
// preserve_access_index, so its field accesses are CO-RE relocations that
// the kernel's own BTF cannot satisfy. Objects without it need none.
func SocketValueTargets(spec *ebpf.CollectionSpec) ([]*btf.Spec, error) {
	var sv *btf.Struct
	if spec.Types == nil || spec.Types.TypeByName("gadget_socket_value", &sv) != nil {
		return nil, nil
	}
	b, err := btf.NewBuilder([]btf.Type{sv}, nil)
	if err != nil {
		return nil, fmt.Errorf("gadget_socket_value: %w", err)
	}
	s, err := b.Spec()
	if err != nil {
		return nil, fmt.Errorf("gadget_socket_value: %w", err)
	}
	return []*btf.Spec{s}, nil
}

// firstLines keeps the first and last n/2 lines of a long text.
func firstLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = append(l[:n/2], append([]string{"..."}, l[len(l)-n/2:]...)...)
	}
	return strings.Join(l, "\n")
}
