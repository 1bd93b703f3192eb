package main

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProgramsToSkip(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"retrans": {SectionName: "tracepoint/tcp/tcp_retransmit_skb"},
		"timer":   {SectionName: "tracepoint/timer/timer_expire_entry"},
		"tlp":     {SectionName: "kprobe/tcp_send_loss_probe"},
		"other":   {SectionName: "fentry/tcp_sendmsg"},
	}}
	cases := []struct {
		name           string
		kprobes, floor bool
		skip           []string
	}{
		{"kprobes: the kprobe, not the timer", true, false, []string{"other", "timer"}},
		{"no kprobes: the timer", false, false, []string{"other", "tlp"}},
		{"the floor measures every hook", true, true, []string{"other"}},
		{"the floor without kprobes", false, true, []string{"other", "tlp"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			skip, why := programsToSkip(spec, c.kprobes, c.floor)
			slices.Sort(skip)
			assert.Equal(t, c.skip, skip)
			assert.Len(t, why, len(skip), "a reason for each")
		})
	}
}

func TestProgramsToSkipBTFTracepoints(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"ig_tcpretrans": {SectionName: "tp_btf/tcp_retransmit_skb"},
		"ig_synack":     {SectionName: "tp_btf/tcp_retransmit_synack"},
		"ig_tlp_timer":  {SectionName: "tp_btf/timer_expire_entry"},
		"ig_tlp_kprobe": {SectionName: "kprobe/tcp_send_loss_probe"},
		"ig_wakeup":     {SectionName: "perf_event/wakeup"},
	}}
	skip, why := programsToSkip(spec, true, false)
	assert.Equal(t, []string{"ig_tlp_timer"}, skip, "tp_btf and perf_event programs are attached; the timer gives way to the kprobe")
	assert.Equal(t, []string{"ig_tlp_timer (kprobe used for loss probes)"}, why)
	skip, _ = programsToSkip(spec, false, false)
	assert.Equal(t, []string{"ig_tlp_kprobe"}, skip)
}

// tracepointProg is a program of section sec whose first argument is a
// pointer to ctx (a struct; "" for an int), as clang describes it in BTF.
func tracepointProg(sec, ctx string) *ebpf.ProgramSpec {
	var arg btf.Type = &btf.Int{Name: "int", Size: 4}
	if ctx != "" {
		arg = &btf.Pointer{Target: &btf.Const{Type: &btf.Struct{Name: ctx}}}
	}
	fn := &btf.Func{Name: "prog", Type: &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4},
		Params: []btf.FuncParam{{Name: "ctx", Type: arg}}}}
	return &ebpf.ProgramSpec{SectionName: sec, Instructions: asm.Instructions{
		btf.WithFuncMetadata(asm.Mov.Imm(asm.R0, 0), fn), asm.Return()}}
}

func TestMissingContexts(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"ig_tcpretrans":   tracepointProg("tracepoint/tcp/tcp_retransmit_skb", "trace_event_raw_tcp_event_sk_skb"),
		"ig_synack":       tracepointProg("tracepoint/tcp/tcp_retransmit_synack", "trace_event_raw_tcp_retransmit_synack"),
		"ig_btf":          tracepointProg("tp_btf/tcp_retransmit_skb", "sock"),
		"ig_tcplossprobe": tracepointProg("kprobe/tcp_send_loss_probe", "pt_regs"),
		"ig_int":          tracepointProg("tracepoint/timer/timer_expire_entry", ""),
		"ig_nobtf":        {SectionName: "tracepoint/tcp/tcp_retransmit_skb", Instructions: asm.Instructions{asm.Return()}},
		"ig_empty":        {SectionName: "tracepoint/tcp/tcp_retransmit_skb"},
	}}
	kernel := map[string]bool{"trace_event_raw_tcp_retransmit_synack": true, "trace_event_raw_tcp_retransmit_skb": true}
	has := func(name string) bool { return kernel[name] }
	assert.Equal(t, []string{"this kernel has no struct trace_event_raw_tcp_event_sk_skb, the context of ig_tcpretrans (tracepoint/tcp/tcp_retransmit_skb)"},
		missingContexts(spec, has), "only classic tracepoints, by the struct their context points to")
	assert.Empty(t, missingContexts(spec, func(string) bool { return true }))
	assert.Equal(t, "trace_event_raw_tcp_event_sk_skb", contextStruct(spec.Programs["ig_tcpretrans"]))
	assert.Empty(t, contextStruct(spec.Programs["ig_int"]))
	assert.Empty(t, contextStruct(spec.Programs["ig_nobtf"]))
}

// eventSpec is an object's BTF holding only struct event with a type
// field of the given size and a 2-byte segs field after it.
func eventSpec(t *testing.T, typeSize uint32) *ebpf.CollectionSpec {
	enum := &btf.Enum{Name: "tcpretrans_type", Size: typeSize, Values: []btf.EnumValue{{Name: "RETRANS", Value: 0}, {Name: "LOSS", Value: 1}, {Name: "SYNACK", Value: 2}}}
	segs := &btf.Int{Name: "__u16", Size: 2}
	ev := &btf.Struct{Name: "event", Size: 8, Members: []btf.Member{{Name: "type_raw", Type: enum}, {Name: "segs", Type: segs, Offset: btf.Bits(typeSize * 8)}}}
	b, err := btf.NewBuilder([]btf.Type{ev}, nil)
	require.NoError(t, err)
	raw, err := b.Marshal(nil, nil)
	require.NoError(t, err)
	types, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	require.NoError(t, err)
	return &ebpf.CollectionSpec{Types: types}
}

func TestEventCounterTypeSizes(t *testing.T) {
	// This gadget's type is one byte, IG's own a plain (4-byte) enum.
	for _, size := range []uint32{1, 4} {
		c := newEventCounter(eventSpec(t, size))
		assert.Equal(t, []int{0, int(size), int(size)}, []int{c.typeOff, c.typeSize, c.segsOff}, "size %d", size)
		record := func(typ uint32, segs uint16) []byte {
			b := make([]byte, 8)
			if size == 1 {
				b[0] = byte(typ)
			} else {
				binary.NativeEndian.PutUint32(b, typ)
			}
			binary.NativeEndian.PutUint16(b[size:], segs)
			return b
		}
		c.add(record(0, 3))
		c.add(record(1, 0))
		c.add(record(2, 1))
		c.add(make([]byte, size-1)) // too short for the type: a retransmission
		assert.Equal(t, []int64{4, 2, 3, 1, 1}, []int64{c.events.Load(), c.retrans.Load(), c.segs.Load(), c.loss.Load(), c.synack.Load()}, "size %d", size)
	}
	c := newEventCounter(&ebpf.CollectionSpec{})
	c.add([]byte{1})
	assert.Equal(t, int64(1), c.retrans.Load(), "no struct event: every record a retransmission")
}
