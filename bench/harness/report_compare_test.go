package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const igOwnImage = igOwnRepo + ":v0.50.1"

// loadError is how a native load of IG's v0.50.1 object fails on a kernel
// of the 6.17 tracepoint layout (loadObjectMode's words).
const loadError = "/b/compare.bpf.o: this kernel has no struct trace_event_raw_tcp_event_sk_skb, the context of ig_tcpretrans (tracepoint/tcp/tcp_retransmit_skb): " +
	"loading the object: load program: bad CO-RE relocation:\n\t0: R1=ctx() R10=fp0"

// withCompare adds the comparison image to both phases: natively its
// object did not load; in the VM it costs 2,000 ns/run on
// tcp_retransmit_skb and 1,000 on its loss-probe kprobe (this gadget: 600
// there, at the first level only), delivers every event, takes 0.5 s of
// CPU per 100 events and 80 MiB, and started in 20 s.
func withCompare(nat, vm *Result) {
	nat.Tools = append(nat.Tools, ToolResult{Name: "compare", Label: "comparison image (cilium/ebpf loader)", Image: igOwnImage, Error: loadError})
	if vm == nil {
		return
	}
	vm.Tools[0].Windows[0].Tool = append(vm.Tools[0].Windows[0].Tool, prog("ig_tlp_kprobe", "kprobe", "tlp", 600, 10))
	theirs := func(w Window) Window {
		w.Tool = append(w.Tool, prog("ig_tcplossprobe", "kprobe", "tlp", 1000, 10))
		w.HWMKiB = 80 * 1024
		return w
	}
	vm.Tools = append(vm.Tools, ToolResult{Name: "compare", Label: "comparison image via ig", Image: igOwnImage, StartupSec: 20, Windows: []Window{
		theirs(window("8:50:0", 10, 2000, 400, 100, 0, 0.5)),
		window("16:10:400", 5, 2000, 400, 100, 0, 0.5)}})
}

func TestCompareDesc(t *testing.T) {
	assert.Equal(t, "IG's own trace_tcpretrans gadget v0.50.1, built from IG's Go module by `make compare-image`", compareDesc(igOwnImage))
	assert.Empty(t, compareDesc("ghcr.io/inspektor-gadget/gadget/trace_tcpretrans:v0.50.1"))
	assert.Empty(t, compareDesc(igOwnRepo+"/x:v1"))
	assert.Empty(t, compareDesc("img"))
}

func TestCompareSection(t *testing.T) {
	nat, vm := nativeResult(), vmResult()
	withCompare(nat, vm)
	vm.Tools[0].StartupSec = 30
	got := render(func(m *md) { writeCompare(m, nat, vm, igOwnImage) })
	require.True(t, strings.HasPrefix(got, "## Against the comparison image\n\n`"+igOwnImage+"`: IG's own trace_tcpretrans gadget v0.50.1, built from IG's Go module by `make compare-image`. "), got)
	head := "| phase | level | measure | this gadget | comparison image | this gadget / comparison image |\n|---|---|---|---|---|---|\n"
	rows := "| native (6.9.0-test) | – | – | | did not load | |\n" +
		"| VM (6.1.0-test) | 8:50:0 | BPF ns per run, tracepoint tcp_retransmit_skb | 4,000 | 2,000 | 2.00× |\n" +
		"| VM (6.1.0-test) | 8:50:0 | BPF ns per run, kprobe tcp_send_loss_probe | 600 | 1,000 | 0.60× |\n" +
		"| VM (6.1.0-test) | 8:50:0 | delivered (events / runs of its `tcp_retransmit_skb` program) | 100.0% | 100.0% | 1.00× |\n" +
		"| VM (6.1.0-test) | 8:50:0 | tracer CPU s per 10k events | 100.000 | 50.000 | 2.00× |\n" +
		"| VM (6.1.0-test) | 8:50:0 | peak RSS MiB | 100 | 80 | 1.25× |\n" +
		"| VM (6.1.0-test) | 16:10:400 | BPF ns per run, tracepoint tcp_retransmit_skb | 4,000 | 2,000 | 2.00× |\n" +
		"| VM (6.1.0-test) | 16:10:400 | delivered (events / runs of its `tcp_retransmit_skb` program) | 90.0% | 100.0% | 0.90× |\n" +
		"| VM (6.1.0-test) | 16:10:400 | tracer CPU s per 10k events | 100.000 | 50.000 | 2.00× |\n" +
		"| VM (6.1.0-test) | 16:10:400 | peak RSS MiB | 100 | 100 | 1.00× |\n" +
		"| VM (6.1.0-test) | – | start-up s (`ig run` until its program is attached, and the 2 s the bench then waits) | 30.0 | 20.0 | 1.50× |\n\n"
	assert.Contains(t, got, head+rows, "the loss-probe hook only where both have a program")
	assert.True(t, strings.HasSuffix(got, "Natively (Linux `6.9.0-test`) the comparison image's object did not load, so this phase has no figure of it: "+
		"/b/compare.bpf.o: this kernel has no struct trace_event_raw_tcp_event_sk_skb, the context of ig_tcpretrans (tracepoint/tcp/tcp_retransmit_skb): "+
		"loading the object: load program: bad CO-RE relocation: 0: R1=ctx() R10=fp0\n\n"), got)
}

func TestCompareSectionNative(t *testing.T) {
	nat := nativeResult()
	nat.Tools[0].StartupSec = 0.2
	nat.Tools = append(nat.Tools, ToolResult{Name: "compare", StartupSec: 0.1, Windows: []Window{window("8:50:0", 10, 500, 100, 100, 0, 0)}})
	got := render(func(m *md) { writeCompare(m, nat, nil, "registry.example.com/g:v1") })
	assert.True(t, strings.HasPrefix(got, "## Against the comparison image\n\n`registry.example.com/g:v1`. Both ran"), got)
	assert.Contains(t, got, "|---|---|---|---|---|---|\n"+
		"| native (6.9.0-test) | 8:50:0 | BPF ns per run, tracepoint tcp_retransmit_skb | 1,500 | 500 | 3.00× |\n"+
		"| native (6.9.0-test) | 8:50:0 | delivered (events / runs of its `tcp_retransmit_skb` program) | 100.0% | 100.0% | 1.00× |\n"+
		"| native (6.9.0-test) | – | start-up s (loading and attaching the object) | 0.2 | 0.1 | 2.00× |\n\n")
	assert.NotContains(t, got, "CPU s", "the native loader is the bench's own process")
	assert.NotContains(t, got, "RSS")
	assert.NotContains(t, got, "timer_expire_entry", "only this gadget has a timer program")
}

func TestCompareSectionMissing(t *testing.T) {
	assert.Empty(t, render(func(m *md) { writeCompare(m, nativeResult(), vmResult(), "") }), "no comparison image: no section")

	got := render(func(m *md) { writeCompare(m, nativeResult(), vmResult(), igOwnImage) })
	assert.Contains(t, got, "| native (6.9.0-test) | – | – | | not measured | |\n| VM (6.1.0-test) | – | – | | not measured | |\n\n")

	vm := vmResult()
	withCompare(nativeResult(), vm)
	vm.Tools[len(vm.Tools)-1] = ToolResult{Name: "compare", Error: "ig run " + igOwnImage + " exited before attaching: boom"}
	got = render(func(m *md) { writeCompare(m, nativeResult(), vm, igOwnImage) })
	assert.Contains(t, got, "| VM (6.1.0-test) | – | – | | did not run | |\n")
	assert.Contains(t, got, "In the VM (Linux `6.1.0-test`) `ig run` of the comparison image failed, so this phase has no figure of it: ig run "+igOwnImage+" exited before attaching: boom\n\n")

	vm = vmResult()
	withCompare(nativeResult(), vm)
	vm.Tools[0].Error = "ig run img exited before attaching"
	got = render(func(m *md) { writeCompare(m, nativeResult(), vm, igOwnImage) })
	assert.Contains(t, got, "| VM (6.1.0-test) | – | – | did not run | | |\n")
}

func TestWriteReportCompareFirst(t *testing.T) {
	nat, vm := nativeResult(), vmResult()
	withCompare(nat, vm)
	got := writeReport(reportInput{Nat: nat, VM: vm, CompareImage: igOwnImage, Command: "make bench"})
	hdr := strings.Index(got, "| comparison image | `"+igOwnImage+"` (IG's own trace_tcpretrans gadget v0.50.1, built from IG's Go module by `make compare-image`) |\n")
	cmp := strings.Index(got, "## Against the comparison image")
	goals := strings.Index(got, "## Goals")
	require.GreaterOrEqual(t, hdr, 0)
	assert.Less(t, hdr, cmp, "the header first")
	assert.Less(t, cmp, goals, "then the comparison, before every other section")
	assert.Equal(t, cmp, strings.Index(got, "\n## ")+1, "the first section")
	assert.Contains(t, got, "Natively (Linux `6.9.0-test`) the comparison image's object did not load")

	got = writeReport(reportInput{Nat: nativeResult(), VM: vmResult(), Command: "make bench COMPARE_IMAGE="})
	assert.NotContains(t, got, "## Against the comparison image")
}

func TestCompareSectionObjectsInVM(t *testing.T) {
	nat, vm := nativeResult(), vmResult()
	withCompare(nat, vm)
	vm.Tools = append(vm.Tools,
		ToolResult{Name: "obj-ours", Windows: []Window{window("8:50:0", 10, 3000, 300, 100, 0, 0)}},
		ToolResult{Name: "obj-compare", Windows: []Window{window("8:50:0", 10, 6000, 300, 100, 0, 0)}})
	got := render(func(m *md) { writeCompare(m, nat, vm, igOwnImage) })
	assert.Contains(t, got, "| VM (6.1.0-test), objects without ig | 8:50:0 | BPF ns per run, tracepoint tcp_retransmit_skb | 3,000 | 6,000 | 0.50× |\n"+
		"| VM (6.1.0-test), objects without ig | 8:50:0 | delivered (events / runs of its `tcp_retransmit_skb` program) | 100.0% | 100.0% | 1.00× |\n\n")
	assert.NotContains(t, got, "objects without ig | 8:50:0 | tracer CPU", "the harness is not the tracer's process")
	assert.NotContains(t, got, "objects without ig | – |", "no ig start-up")
}
