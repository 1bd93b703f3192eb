package main

import (
	"encoding/binary"
	"strings"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"trace_tcpretrans/go/contract"
)

// Counts of what a tracer delivered.
type Counts struct {
	Events      int64 `json:"events"`
	Retrans     int64 `json:"retrans"`      // RETRANS events (or retransmit lines)
	RetransSegs int64 `json:"retrans_segs"` // sum of their segs, where known
	Loss        int64 `json:"loss"`         // LOSS / tail loss probe events
	Synack      int64 `json:"synack"`
	Lost        int64 `json:"lost"` // events the tracer says it lost
}

func (c Counts) sub(b Counts) Counts {
	return Counts{c.Events - b.Events, c.Retrans - b.Retrans, c.RetransSegs - b.RetransSegs,
		c.Loss - b.Loss, c.Synack - b.Synack, c.Lost - b.Lost}
}

type eventCounter struct {
	events, retrans, segs, loss, synack, lost atomic.Int64

	typeOff, segsOff         int // -1 when the record has no such field
	typeSize                 int // bytes of the type field: 1 (ours), 4 (IG's own, a plain enum)
	retransV, lossV, synackV uint64
}

// newEventCounter finds the type and segs fields of the object's struct
// event, if it has them (ours does; other gadgets may not), and the values
// of the types by name.
func newEventCounter(spec *ebpf.CollectionSpec) *eventCounter {
	c := &eventCounter{typeOff: -1, segsOff: -1, retransV: 0, lossV: 1, synackV: 2}
	var ev *btf.Struct
	if spec.Types == nil || spec.Types.TypeByName(contract.EventStruct, &ev) != nil {
		return c
	}
	for _, m := range ev.Members {
		switch m.Name {
		case contract.Type.Field, "type":
			if e, ok := btf.UnderlyingType(m.Type).(*btf.Enum); ok && (e.Size == 1 || e.Size == 2 || e.Size == 4) {
				c.typeOff, c.typeSize = int(m.Offset.Bytes()), int(e.Size)
				for _, v := range e.Values {
					switch v.Name {
					case "RETRANS":
						c.retransV = v.Value
					case "LOSS":
						c.lossV = v.Value
					case "SYNACK":
						c.synackV = v.Value
					}
				}
			}
		case "segs":
			if sz, err := btf.Sizeof(m.Type); err == nil && sz == 2 {
				c.segsOff = int(m.Offset.Bytes())
			}
		}
	}
	return c
}

func (c *eventCounter) add(raw []byte) {
	c.events.Add(1)
	if c.typeOff < 0 || c.typeOff+c.typeSize > len(raw) {
		c.retrans.Add(1)
		return
	}
	var typ uint64
	switch c.typeSize {
	case 1:
		typ = uint64(raw[c.typeOff])
	case 2:
		typ = uint64(binary.NativeEndian.Uint16(raw[c.typeOff:]))
	default:
		typ = uint64(binary.NativeEndian.Uint32(raw[c.typeOff:]))
	}
	switch typ {
	case c.retransV:
		c.retrans.Add(1)
		if c.segsOff >= 0 && c.segsOff+2 <= len(raw) {
			c.segs.Add(int64(binary.NativeEndian.Uint16(raw[c.segsOff:])))
		}
	case c.lossV:
		c.loss.Add(1)
	case c.synackV:
		c.synack.Add(1)
	}
}

// snapshot reads the counters and IG's per-CPU lost-samples maps (what
// failed ring-buffer reservations left behind).
func (o *Object) snapshot() Counts {
	c := o.Events
	n := Counts{Events: c.events.Load(), Retrans: c.retrans.Load(), RetransSegs: c.segs.Load(),
		Loss: c.loss.Load(), Synack: c.synack.Load(), Lost: c.lost.Load()}
	for name, m := range o.obj.Coll.Maps {
		if !strings.HasSuffix(name, "_lost_samples") || m.Type() != ebpf.PerCPUArray {
			continue
		}
		var vals []uint64
		if err := m.Lookup(uint32(0), &vals); err == nil {
			for _, v := range vals {
				n.Lost += int64(v)
			}
		}
	}
	return n
}
