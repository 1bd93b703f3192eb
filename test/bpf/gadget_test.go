// Package bpf loads the gadget's BPF object (the very file that goes into the
// image) into the running kernel with cilium/ebpf, causes real TCP
// retransmissions in a private network namespace and checks the events.
package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/stretchr/testify/require"
)

var objectPath = flag.String("object", "../../.build/amd64.bpf.o", "BPF object built by 'make build'")

// Event is one decoded record of the gadget's ring buffer, with enums shown
// by the names ig prints.
type Event struct {
	NetnsID      uint32
	Comm         string
	Pid, Tid     uint32
	MntnsID      uint64
	Src, Dst     netip.AddrPort
	Version      uint8
	State        string
	TCPFlags     string
	Type         string
	Reason       string
	Error        uint32
	Seq, Len     uint32
	Segs         uint16
	Backoff      uint8
	SRTT, RTO    uint32
	Cwnd         uint32
	Ssthresh     uint32
	PacketsOut   uint32
	RetransOut   uint32
	LostOut      uint32
	TotalRetrans uint32
	Timestamp    uint64
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s %s->%s %s %s [%s] seq=%d len=%d segs=%d srtt=%dus rto=%dms cwnd=%d ssthresh=%d out=%d retrans=%d lost=%d total=%d backoff=%d err=%d comm=%q pid=%d",
		e.Type, e.Reason, e.Src, e.Dst, e.State, e.TCPFlags, fmt.Sprint(e.Version), e.Seq, e.Len, e.Segs, e.SRTT, e.RTO, e.Cwnd,
		e.Ssthresh, e.PacketsOut, e.RetransOut, e.LostOut, e.TotalRetrans, e.Backoff, e.Error, e.Comm, e.Pid)
}

// Filters is the entry of the tcpretrans_config map that the wasm operator
// writes from --loss, --synack, --failed and --family (go/hook.Filters).
type Filters struct {
	Ready, Loss, Synack, Failed uint8
	Family                      uint32
}

// DefaultFilters are the parameters' defaults.
var DefaultFilters = Filters{Loss: 1, Synack: 1}

// Gadget is the loaded and attached BPF object.
type Gadget struct {
	Coll   *ebpf.Collection
	spec   *ebpf.CollectionSpec
	layout *btf.Struct
	reader *ringbuf.Reader
	events chan Event
	errs   chan error
}

// Options change what is loaded; the zero value is the gadget's defaults.
type Options struct {
	Vars     map[string]any // constants (IG's filters)
	Filters  *Filters       // the parameters' map entry; nil: the defaults
	NoConfig bool           // leave the map entry unwritten, as before ig writes it
	NoAttach []string       // programs to load but not attach
	SkipLoad []string       // programs to leave out entirely
}

func loadSpec(t *testing.T) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec(*objectPath)
	require.NoError(t, err, "loading %s (run 'make build' first)", *objectPath)
	return spec
}

// socketValueTargets returns a BTF spec holding only IG's
// gadget_socket_value, which ig supplies at run time: the object marks it
// preserve_access_index, so its field accesses are CO-RE relocations that
// the kernel's own BTF cannot satisfy.
func socketValueTargets(t *testing.T, spec *ebpf.CollectionSpec) []*btf.Spec {
	t.Helper()
	var sv *btf.Struct
	require.NoError(t, spec.Types.TypeByName("gadget_socket_value", &sv))
	b, err := btf.NewBuilder([]btf.Type{sv}, nil)
	require.NoError(t, err)
	s, err := b.Spec()
	require.NoError(t, err)
	return []*btf.Spec{s}
}

// LoadGadget loads and attaches the object; everything is released when the
// test ends.
func LoadGadget(t *testing.T, opts Options) *Gadget {
	t.Helper()
	spec := loadSpec(t)
	for name, v := range opts.Vars {
		vs, ok := spec.Variables[name]
		require.True(t, ok, "object has no variable %q", name)
		require.NoError(t, vs.Set(v), "setting %s", name)
	}
	for _, p := range opts.SkipLoad {
		delete(spec.Programs, p)
	}

	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{ExtraRelocationTargets: socketValueTargets(t, spec)},
	})
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		t.Fatalf("verifier: %+v", verr)
	}
	require.NoError(t, err)
	t.Cleanup(coll.Close)

	g := &Gadget{Coll: coll, spec: spec, events: make(chan Event, 4096), errs: make(chan error, 1)}
	require.NoError(t, spec.Types.TypeByName("event", &g.layout))

	skip := map[string]bool{}
	for _, p := range opts.NoAttach {
		skip[p] = true
	}
	for name, p := range spec.Programs {
		if skip[name] {
			continue
		}
		l := attach(t, p, coll.Programs[name])
		t.Cleanup(func() { l.Close() })
	}

	if !opts.NoConfig {
		f := DefaultFilters
		if opts.Filters != nil {
			f = *opts.Filters
		}
		g.WriteFilters(t, f)
	}

	g.reader, err = ringbuf.NewReader(coll.Maps["events"])
	require.NoError(t, err)
	t.Cleanup(func() { g.reader.Close() })
	go g.readLoop()
	return g
}

// WriteFilters writes the parameters' map entry, marked ready, as the wasm
// operator does when the gadget starts.
func (g *Gadget) WriteFilters(t *testing.T, f Filters) {
	t.Helper()
	f.Ready = 1
	require.NoError(t, g.Coll.Maps["tcpretrans_config"].Put(uint32(0), f), "writing the filters")
}

func attach(t *testing.T, p *ebpf.ProgramSpec, prog *ebpf.Program) link.Link {
	t.Helper()
	var l link.Link
	var err error
	switch {
	case strings.HasPrefix(p.SectionName, "tracepoint/"):
		parts := strings.Split(p.AttachTo, "/")
		require.Len(t, parts, 2, p.SectionName)
		l, err = link.Tracepoint(parts[0], parts[1], prog, nil)
	case strings.HasPrefix(p.SectionName, "kprobe/"):
		l, err = link.Kprobe(p.AttachTo, prog, nil)
	default:
		t.Fatalf("no attach rule for section %q", p.SectionName)
	}
	require.NoError(t, err, "attaching %s", p.Name)
	return l
}

func (g *Gadget) readLoop() {
	for {
		rec, err := g.reader.Read()
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				g.errs <- err
			}
			close(g.events)
			return
		}
		ev, err := g.decode(rec.RawSample)
		if err != nil {
			g.errs <- err
			close(g.events)
			return
		}
		g.events <- ev
	}
}

// Collect gathers events until done reports true for the events so far or
// the timeout passes; it returns what it gathered either way.
func (g *Gadget) Collect(t *testing.T, timeout time.Duration, done func([]Event) bool) []Event {
	t.Helper()
	var got []Event
	deadline := time.After(timeout)
	for {
		if done != nil && done(got) {
			return got
		}
		select {
		case ev, ok := <-g.events:
			if !ok {
				select {
				case err := <-g.errs:
					t.Fatalf("reading ring buffer: %v", err)
				default:
				}
				return got
			}
			got = append(got, ev)
		case <-deadline:
			return got
		}
	}
}

// decode reads a record by the member offsets of the object's own struct
// event, so a layout change in program.bpf.c can't go unnoticed.
func (g *Gadget) decode(raw []byte) (Event, error) {
	if int(g.layout.Size) != len(raw) {
		return Event{}, fmt.Errorf("record has %d bytes, struct event %d", len(raw), g.layout.Size)
	}
	f := flatten(g.layout, "", 0)
	u := func(name string) uint64 {
		m, ok := f[name]
		if !ok {
			panic("no member " + name)
		}
		b := raw[m.off : m.off+m.size]
		switch m.size {
		case 1:
			return uint64(b[0])
		case 2:
			return uint64(binary.LittleEndian.Uint16(b))
		case 4:
			return uint64(binary.LittleEndian.Uint32(b))
		case 8:
			return binary.LittleEndian.Uint64(b)
		}
		panic(fmt.Sprintf("member %s has size %d", name, m.size))
	}
	str := func(name string) string {
		m := f[name]
		b := raw[m.off : m.off+m.size]
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	addr := func(prefix string) netip.AddrPort {
		m := f[prefix+".addr_raw"]
		b := raw[m.off : m.off+16]
		port := uint16(u(prefix + ".port"))
		if u(prefix+".version") == 4 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), port)
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b)), port)
	}
	ev := Event{
		Timestamp:    u("timestamp_raw"),
		NetnsID:      uint32(u("netns_id")),
		Comm:         str("proc.comm"),
		Pid:          uint32(u("proc.pid")),
		Tid:          uint32(u("proc.tid")),
		MntnsID:      u("proc.mntns_id"),
		Src:          addr("src"),
		Dst:          addr("dst"),
		Version:      uint8(u("src.version")),
		State:        enumName(f["state_raw"], u("state_raw")),
		TCPFlags:     flagNames(f["tcpflags_raw"], u("tcpflags_raw")),
		Type:         enumName(f["type_raw"], u("type_raw")),
		Reason:       enumName(f["reason_raw"], u("reason_raw")),
		Error:        uint32(u("error_raw")),
		Seq:          uint32(u("seq")),
		Len:          uint32(u("len")),
		Segs:         uint16(u("segs")),
		Backoff:      uint8(u("backoff")),
		SRTT:         uint32(u("srtt")),
		RTO:          uint32(u("rto")),
		Cwnd:         uint32(u("cwnd")),
		Ssthresh:     uint32(u("ssthresh")),
		PacketsOut:   uint32(u("packets_out")),
		RetransOut:   uint32(u("retrans_out")),
		LostOut:      uint32(u("lost_out")),
		TotalRetrans: uint32(u("total_retrans")),
	}
	return ev, nil
}

type member struct {
	off, size int
	typ       btf.Type
}

// flatten maps "a.b.c" paths of a struct to offsets, sizes and types.
func flatten(s *btf.Struct, prefix string, base int) map[string]member {
	out := map[string]member{}
	for _, m := range s.Members {
		name := prefix + m.Name
		off := base + int(m.Offset.Bytes())
		typ := btf.UnderlyingType(m.Type)
		if inner, ok := typ.(*btf.Struct); ok {
			for k, v := range flatten(inner, name+".", off) {
				out[k] = v
			}
			continue
		}
		size, err := btf.Sizeof(typ)
		if err != nil {
			panic(err)
		}
		out[name] = member{off: off, size: size, typ: typ}
	}
	return out
}

func enumName(m member, v uint64) string {
	e, ok := m.typ.(*btf.Enum)
	if !ok {
		panic(fmt.Sprintf("%v is not an enum", m.typ))
	}
	for _, val := range e.Values {
		if val.Value == v {
			return val.Name
		}
	}
	return "UNKNOWN"
}

func flagNames(m member, v uint64) string {
	e := m.typ.(*btf.Enum)
	var names []string
	for _, val := range e.Values {
		if v&val.Value == val.Value {
			names = append(names, val.Name)
		}
	}
	return strings.Join(names, "|")
}
