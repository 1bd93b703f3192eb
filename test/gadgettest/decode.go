package gadgettest

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"trace_tcpretrans/go/contract"
)

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
	// Received is when a reader got the record (CLOCK_BOOTTIME, as
	// Timestamp), set by readers that measure delivery latency.
	Received uint64
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s %s->%s %s %s [%d] seq=%d len=%d segs=%d srtt=%dus rto=%dms cwnd=%d ssthresh=%d out=%d retrans=%d lost=%d total=%d backoff=%d err=%d comm=%q pid=%d",
		e.Type, e.Reason, e.Src, e.Dst, e.State, e.TCPFlags, e.Version, e.Seq, e.Len, e.Segs, e.SRTT, e.RTO, e.Cwnd,
		e.Ssthresh, e.PacketsOut, e.RetransOut, e.LostOut, e.TotalRetrans, e.Backoff, e.Error, e.Comm, e.Pid)
}

// Member is a leaf member of a struct, found by its dotted path.
type Member struct {
	Off, Size int
	Type      btf.Type
}

// Decoder reads records by the member offsets of the object's own struct
// event, in the host's byte order, so that a layout change in program.bpf.c
// cannot go unnoticed.
type Decoder struct {
	size    int
	members map[string]Member
}

// NewDecoder reads the layout of struct event from the object.
func NewDecoder(spec *ebpf.CollectionSpec) (*Decoder, error) {
	var ev *btf.Struct
	if spec.Types == nil {
		return nil, fmt.Errorf("the object has no BTF")
	}
	if err := spec.Types.TypeByName(contract.EventStruct, &ev); err != nil {
		return nil, fmt.Errorf("struct %s: %w", contract.EventStruct, err)
	}
	members, err := Flatten(ev)
	if err != nil {
		return nil, err
	}
	return &Decoder{size: int(ev.Size), members: members}, nil
}

// Flatten maps the "a.b.c" paths of a struct's leaf members to their
// offsets, sizes and types.
func Flatten(s *btf.Struct) (map[string]Member, error) {
	out := map[string]Member{}
	var walk func(s *btf.Struct, prefix string, base int) error
	walk = func(s *btf.Struct, prefix string, base int) error {
		for _, m := range s.Members {
			name := prefix + m.Name
			off := base + int(m.Offset.Bytes())
			typ := btf.UnderlyingType(m.Type)
			if inner, ok := typ.(*btf.Struct); ok {
				if err := walk(inner, name+".", off); err != nil {
					return err
				}
				continue
			}
			size, err := btf.Sizeof(typ)
			if err != nil {
				return fmt.Errorf("member %s: %w", name, err)
			}
			out[name] = Member{Off: off, Size: size, Type: typ}
		}
		return nil
	}
	return out, walk(s, "", 0)
}

// recordReader reads members of one record, keeping the first error.
type recordReader struct {
	d   *Decoder
	raw []byte
	err error
}

func (r *recordReader) member(name string) (Member, []byte, bool) {
	m, ok := r.d.members[name]
	if !ok {
		if r.err == nil {
			r.err = fmt.Errorf("struct %s has no member %s", contract.EventStruct, name)
		}
		return Member{}, nil, false
	}
	return m, r.raw[m.Off : m.Off+m.Size], true
}

func (r *recordReader) uint(name string) uint64 {
	_, b, ok := r.member(name)
	if !ok {
		return 0
	}
	v, err := Uint(b)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("member %s: %w", name, err)
	}
	return v
}

func (r *recordReader) str(name string) string {
	_, b, ok := r.member(name)
	if !ok {
		return ""
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func (r *recordReader) addr(prefix string) netip.AddrPort {
	_, b, ok := r.member(prefix + ".addr_raw")
	if !ok || len(b) < 16 {
		return netip.AddrPort{}
	}
	port := uint16(r.uint(prefix + ".port"))
	if r.uint(prefix+".version") == 4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), port)
}

// enum names a value by the member's BTF enum; flags joins the names of
// the bits set, as ig prints an enum whose name ends in _set.
func (r *recordReader) enum(name string, flags bool) string {
	m, _, ok := r.member(name)
	if !ok {
		return ""
	}
	v := r.uint(name)
	e, ok := m.Type.(*btf.Enum)
	if !ok {
		if r.err == nil {
			r.err = fmt.Errorf("member %s is %v, not an enum", name, m.Type)
		}
		return ""
	}
	var names []string
	for _, val := range e.Values {
		if flags && v&val.Value == val.Value && val.Value != 0 {
			names = append(names, val.Name)
		}
		if !flags && val.Value == v {
			return val.Name
		}
	}
	if !flags {
		return "UNKNOWN"
	}
	return strings.Join(names, "|")
}

// Decode reads one record.
func (d *Decoder) Decode(raw []byte) (Event, error) {
	if len(raw) != d.size {
		return Event{}, fmt.Errorf("record has %d bytes, struct %s %d", len(raw), contract.EventStruct, d.size)
	}
	r := &recordReader{d: d, raw: raw}
	ev := Event{
		Timestamp:    r.uint("timestamp_raw"),
		NetnsID:      uint32(r.uint("netns_id")),
		Comm:         r.str("proc.comm"),
		Pid:          uint32(r.uint("proc.pid")),
		Tid:          uint32(r.uint("proc.tid")),
		MntnsID:      r.uint("proc.mntns_id"),
		Src:          r.addr("src"),
		Dst:          r.addr("dst"),
		Version:      uint8(r.uint("src.version")),
		State:        r.enum(contract.State.Field, false),
		TCPFlags:     r.enum(contract.TCPFlags.Field, true),
		Type:         r.enum(contract.Type.Field, false),
		Reason:       r.enum(contract.Reason.Field, false),
		Error:        uint32(r.uint("error_raw")),
		Seq:          uint32(r.uint("seq")),
		Len:          uint32(r.uint("len")),
		Segs:         uint16(r.uint("segs")),
		Backoff:      uint8(r.uint("backoff")),
		SRTT:         uint32(r.uint("srtt")),
		RTO:          uint32(r.uint("rto")),
		Cwnd:         uint32(r.uint("cwnd")),
		Ssthresh:     uint32(r.uint("ssthresh")),
		PacketsOut:   uint32(r.uint("packets_out")),
		RetransOut:   uint32(r.uint("retrans_out")),
		LostOut:      uint32(r.uint("lost_out")),
		TotalRetrans: uint32(r.uint("total_retrans")),
	}
	return ev, r.err
}
