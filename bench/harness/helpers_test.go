package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"trace_tcpretrans/go/contract"
)

func TestStatsDelta(t *testing.T) {
	before := map[int]ProgStat{
		1: {ID: 1, Name: "a", RunNs: 100, RunCnt: 1},
		2: {ID: 2, Name: "idle", RunNs: 50, RunCnt: 5},
	}
	after := map[int]ProgStat{
		1: {ID: 1, Name: "a", RunNs: 1100, RunCnt: 11, Missed: 2},
		2: {ID: 2, Name: "idle", RunNs: 50, RunCnt: 5},
		3: {ID: 3, Name: "new", RunNs: 300, RunCnt: 3},
	}
	d := statsDelta(before, after)
	sort.Slice(d, func(i, j int) bool { return d[i].ID < d[j].ID })
	assert.Equal(t, []ProgStat{
		{ID: 1, Name: "a", RunNs: 1000, RunCnt: 10, Missed: 2, NsPerRun: 100},
		{ID: 3, Name: "new", RunNs: 300, RunCnt: 3, NsPerRun: 100},
	}, d)
	assert.Empty(t, statsDelta(after, after), "nothing ran")
}

func TestHookOfSection(t *testing.T) {
	tests := map[string]string{
		"tracepoint/tcp/tcp_retransmit_skb":    "retransmit_skb",
		"tracepoint/tcp/tcp_retransmit_synack": "retransmit_synack",
		"tracepoint/timer/timer_expire_entry":  "timer",
		"tp_btf/tcp_retransmit_skb":            "retransmit_skb",
		"tp_btf/tcp_retransmit_synack":         "retransmit_synack",
		"tp_btf/timer_expire_entry":            "timer",
		"kprobe/tcp_send_loss_probe":           "tlp",
		"perf_event/wakeup":                    "cpu_clock",
		"kprobe/tcp_connect":                   "",
		"tcp_retransmit_skb":                   "",
	}
	for sec, want := range tests {
		assert.Equal(t, want, hookOfSection(sec), sec)
	}
}

func TestParseLevels(t *testing.T) {
	tests := []struct {
		in   string
		want []Level
		err  string
	}{
		{"8:50:0", []Level{{Name: "8:50:0", Streams: 8, DropMod: 50}}, ""},
		{"8:50:0,16:10:400", []Level{{Name: "8:50:0", Streams: 8, DropMod: 50}, {Name: "16:10:400", Streams: 16, DropMod: 10, SynRate: 400}}, ""},
		{" 1:2:3  4:5:6,", []Level{{Name: "1:2:3", Streams: 1, DropMod: 2, SynRate: 3}, {Name: "4:5:6", Streams: 4, DropMod: 5, SynRate: 6}}, ""},
		{"8:50", nil, "want streams:dropmod:synrate"},
		{"8:1:0", nil, "drop modulus must be at least 2"},
		{"a:50:0", nil, "is not a count"},
		{"-1:50:0", nil, "is not a count"},
		{"", nil, "no levels"},
	}
	for _, tt := range tests {
		got, err := parseLevels(tt.in)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestCountsSub(t *testing.T) {
	a := Counts{Events: 10, Retrans: 8, RetransSegs: 9, Loss: 1, Synack: 1, Lost: 3}
	b := Counts{Events: 4, Retrans: 3, RetransSegs: 3, Loss: 1, Lost: 1}
	assert.Equal(t, Counts{Events: 6, Retrans: 5, RetransSegs: 6, Synack: 1, Lost: 2}, a.sub(b))
}

func TestAssignPrograms(t *testing.T) {
	w := Window{Hooks: map[string]int64{}}
	ran := []ProgStat{
		{ID: 1, Name: "floor_skb", RunCnt: 100},
		{ID: 2, Name: "floor_timer", RunCnt: 50},
		{ID: 3, Name: "old", RunCnt: 7},
		{ID: 4, Name: "ig_tcpretrans", RunCnt: 99},
	}
	floor := map[int]string{1: "retransmit_skb", 2: "timer"}
	baseline := map[int]ProgStat{3: {ID: 3}}
	hookOf := func(p ProgStat) string {
		if p.Name == "ig_tcpretrans" {
			return "retransmit_skb"
		}
		return ""
	}
	assignPrograms(&w, ran, floor, baseline, hookOf)
	assert.Equal(t, map[string]int64{"retransmit_skb": 100, "timer": 50}, w.Hooks)
	assert.Equal(t, []ProgStat{
		{ID: 1, Name: "floor_skb", RunCnt: 100, Owner: "floor", Hook: "retransmit_skb"},
		{ID: 2, Name: "floor_timer", RunCnt: 50, Owner: "floor", Hook: "timer"},
	}, w.Floor)
	assert.Equal(t, []ProgStat{{ID: 4, Name: "ig_tcpretrans", RunCnt: 99, Owner: "tool", Hook: "retransmit_skb"}}, w.Tool)
}

func TestMeasureFlags(t *testing.T) {
	f, err := parseMeasureFlags("vm", []string{"-out", "o.json", "-floor", "f.o", "-image", "r/g:v", "-levels", "8:50:0,16:10:400", "-runs", "5", "-seconds", "7", "-tools", "ours,bcc"})
	require.NoError(t, err)
	assert.Empty(t, f.variants, "no variants by default")
	assert.Equal(t, "o.json", f.out)
	assert.Equal(t, 5, f.runs)
	assert.Equal(t, 7, f.secs)
	assert.Len(t, f.levels, 2)
	assert.Equal(t, "bin/ig", f.ig, "default")
	assert.Equal(t, "/usr/sbin/tcpretrans-bpfcc", f.bcc, "default")
	assert.True(t, f.want("ours"))
	assert.True(t, f.want("bcc"))
	assert.False(t, f.want("bpftrace"))
	assert.False(t, f.want("our"), "no prefix match")

	f.only = ""
	assert.True(t, f.want("bpftrace"), "no -tools: every tool")

	f, err = parseMeasureFlags("native", []string{"-out", "o.json", "-floor", "f.o", "-variants", ".build/bench", "-tools", "ours,ours-wake-each,ours-no-owner"})
	require.NoError(t, err)
	assert.Equal(t, ".build/bench", f.variants)
	assert.True(t, f.want("ours-no-owner"))
	assert.False(t, f.want("ours-no-event"))

	_, err = parseMeasureFlags("native", []string{"-floor", "f.o"})
	assert.EqualError(t, err, "-out and -floor are required")
	_, err = parseMeasureFlags("vm", []string{"-out", "o", "-floor", "f.o"})
	assert.ErrorContains(t, err, "-image is required")
	_, err = parseMeasureFlags("native", []string{"-out", "o", "-floor", "f.o", "-levels", "8:1:0"})
	assert.ErrorContains(t, err, "drop modulus")
}

func TestNativeTools(t *testing.T) {
	names := func(es []toolEntry) []string {
		var n []string
		for _, e := range es {
			n = append(n, e.res.Name)
		}
		return n
	}
	f := &measureFlags{object: "o.bpf.o", only: "ours,compare,ours-wake-each,ours-no-owner,ours-no-reads,ours-no-event,ours-nodrain,ours-batched"}
	assert.Equal(t, []string{"ours", "ours-wake-each", "ours-nodrain", "ours-batched"}, names(nativeTools(f)), "no comparison object, no -variants")
	f.compareObj, f.compareImage, f.variants = "c.bpf.o", "img:v1", "/v"
	es := nativeTools(f)
	assert.Equal(t, []string{"ours", "ours-wake-each", "ours-no-owner", "ours-no-reads", "ours-no-event", "ours-nodrain", "ours-batched", "compare"}, names(es))
	assert.Equal(t, ToolResult{Name: "compare", Label: "comparison image (cilium/ebpf loader)", Image: "img:v1", Command: "c.bpf.o"}, es[7].res)
	batched := es[6].tool.(*objectTool)
	assert.True(t, batched.drain && batched.batched)
	assert.False(t, es[5].tool.(*objectTool).drain, "nobody reads the diagnostic's buffer")

	ours, wake := es[0].tool.(*objectTool), es[1].tool.(*objectTool)
	assert.Nil(t, ours.config, "this gadget: the parameters' defaults")
	want := contract.DefaultConfig()
	want.MaxDelayUs = 0
	require.NotNil(t, wake.config)
	assert.Equal(t, want, *wake.config, "the defaults but max_delay_us 0")
	assert.Equal(t, objectTool{name: "ours-wake-each", path: "o.bpf.o", drain: true, config: wake.config}, *wake, "the same object, read the same way")

	for i, v := range []struct{ name, path, label string }{
		{"ours-no-owner", "/v/leave-out-owner.bpf.o", "this gadget without the socket-owner lookup (BENCH_LEAVE_OUT=1)"},
		{"ours-no-reads", "/v/leave-out-reads.bpf.o", "this gadget without the socket and segment reads (BENCH_LEAVE_OUT=2)"},
		{"ours-no-event", "/v/leave-out-event.bpf.o", "this gadget without the event: nothing reserved (BENCH_LEAVE_OUT=4)"},
	} {
		e := es[2+i]
		assert.Equal(t, ToolResult{Name: v.name, Label: v.label, Command: v.path}, e.res)
		assert.Equal(t, objectTool{name: v.name, path: v.path, drain: true}, *e.tool.(*objectTool), "defaults, a waiting reader")
	}

	f.only = "ours-no-reads"
	assert.Equal(t, []string{"ours", "ours-no-reads"}, names(nativeTools(f)), "one variant")
	f.only = "compare"
	assert.Equal(t, []string{"ours", "compare"}, names(nativeTools(f)), "this gadget is always measured")
}

func TestOursIGTools(t *testing.T) {
	names := map[string]string{"ig_tcpretrans": "retransmit_skb"}
	f := &measureFlags{ig: "bin/ig", image: "r/g:v"}
	es := oursIGTools(f, names)
	var got []string
	for _, e := range es {
		got = append(got, e.res.Name)
	}
	assert.Equal(t, []string{"ours", "ours-wake-each", "ours-metrics", "ours-count"}, got, "the batched default, then a wake-up for every event")
	assert.Equal(t, ToolResult{Name: "ours-wake-each", Label: "this gadget via ig --max-delay 0", Image: "r/g:v",
		Command: "bin/ig run r/g:v --verify-image=false --host --max-delay 0 -o json"}, es[1].res)
	wake := es[1].tool.(*procTool)
	assert.Equal(t, "ig run r/g:v --max-delay 0", wake.label)
	assert.Equal(t, "ig_tcpretrans", wake.waitName, "ready once its program is in the kernel")
	assert.Equal(t, "retransmit_skb", wake.HookOf(ProgStat{Name: "ig_tcpretrans"}))
	var c Counts
	wake.classify(`{"type":"RETRANS","segs":1}`, &c)
	assert.Equal(t, Counts{Events: 1, Retrans: 1, RetransSegs: 1}, c, "events counted as ours")
	assert.Equal(t, "bin/ig run r/g:v --verify-image=false --host -o json", es[0].res.Command, "ours keeps the default --max-delay")

	f.only = "ours,ours-count"
	es = oursIGTools(f, names)
	require.Len(t, es, 2)
	assert.Equal(t, "ours-count", es[1].res.Name)
}

func TestFirstNameFor(t *testing.T) {
	names := map[string]string{"ig_tcpretrans": "retransmit_skb", "ig_tlp_kprobe": "tlp"}
	assert.Equal(t, "ig_tcpretrans", firstNameFor(names, "retransmit_skb"))
	assert.Equal(t, "ig_tlp_kprobe", firstNameFor(names, "tlp"))
	assert.Equal(t, "ig_tcpretrans", firstNameFor(map[string]string{"x": "tlp"}, "retransmit_skb"), "default")
	assert.Equal(t, "ig_tcpretrans", firstNameFor(nil, "timer"), "default")
}

func TestEBPFLayer(t *testing.T) {
	blobs := map[string][]byte{
		"index.json": []byte(`{"manifests":[
			{"digest":"sha256:arm","platform":{"architecture":"arm64"}},
			{"digest":"sha256:missing"},
			{"digest":"sha256:amd","platform":{"architecture":"amd64"}}]}`),
		"blobs/sha256/arm": []byte(`{"layers":[{"mediaType":"application/vnd.gadget.ebpf.program.v1+binary","digest":"sha256:armprog"}]}`),
		"blobs/sha256/amd": []byte(`{"layers":[{"mediaType":"application/vnd.gadget.config.v1+yaml","digest":"sha256:cfg"},
			{"mediaType":"application/vnd.gadget.ebpf.program.v1+binary","digest":"sha256:prog"}]}`),
		"blobs/sha256/armprog": []byte("ELF arm64"),
		"blobs/sha256/prog":    []byte("ELF amd64"),
		"blobs/sha256/cfg":     []byte("name: x"),
	}
	got, err := ebpfLayer(blobs, blobs["index.json"], 0)
	require.NoError(t, err)
	assert.Equal(t, "ELF amd64", string(got))

	got, err = ebpfLayer(blobs, []byte(`{"layers":[{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:cfg"}]}`), 0)
	assert.NoError(t, err)
	assert.Nil(t, got, "no eBPF layer")

	loop := map[string][]byte{"blobs/sha256/self": []byte(`{"manifests":[{"digest":"sha256:self"}]}`)}
	got, err = ebpfLayer(loop, loop["blobs/sha256/self"], 0)
	assert.NoError(t, err)
	assert.Nil(t, got, "depth is bounded")

	_, err = ebpfLayer(blobs, []byte("not json"), 0)
	assert.Error(t, err)
	assert.Equal(t, "blobs/sha256/abc:def", blobPath("sha256:abc:def"))
}

func TestCPUInfo(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	assert.Equal(t, "AMD EPYC 7B13", modelName(info))
	assert.Equal(t, 2, processorCount(info))
	assert.Equal(t, "?", modelName(""))
	assert.Equal(t, 0, processorCount(""))
	assert.Equal(t, 1, processorCount("processor\t: 0\n"))
}

func TestProcParsing(t *testing.T) {
	stat := "1234 (ig (run) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 5000"
	assert.Equal(t, 4.0, statCPU(stat))
	assert.Equal(t, 0.0, statCPU("1234 (short) S 1 2"))
	assert.Equal(t, 0.0, statCPU("garbage"))
	assert.Equal(t, int64(123904), statusHWM("Name:\tig\nVmPeak:\t  200000 kB\nVmHWM:\t  123904 kB\nVmRSS:\t 1 kB\n"))
	assert.Equal(t, int64(0), statusHWM("Name:\tig\n"))
	assert.Equal(t, int64(0), statusHWM("VmHWM:"))
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		f     func(string, *Counts)
		lines []string
		want  Counts
	}{
		{"ig", classifyIG, []string{
			`{"type":"RETRANS","segs":2,"src":"127.0.0.1:9500"}`,
			`{"type": "RETRANS", "segs": 3}`,
			`{"type":"LOSS","segs":1}`,
			`{"type":"SYNACK"}`,
			`{"src":"x"}`,
			`RUNTIME.CONTAINERNAME  SRC`,
		}, Counts{Events: 5, Retrans: 3, RetransSegs: 5, Loss: 1, Synack: 1}},
		{"BCC", classifyBCC, []string{
			"Tracing retransmits ... Hit Ctrl-C to end",
			"TIME     PID    IP LADDR:LPORT          T> RADDR:RPORT          STATE",
			"06:08:06 0      4  127.0.0.1:9500       R> 127.0.0.1:43210      ESTABLISHED",
			"06:08:07 0      4  127.0.0.1:9500       L> 127.0.0.1:43210      ESTABLISHED",
			"06:08:08 0      4  127.0.0.1:43212      R> 127.0.0.1:9501       SYN_SENT",
		}, Counts{Events: 3, Retrans: 2, Loss: 1}},
		{"bpftrace", classifyBpftrace, []string{
			"Attaching 2 probes...",
			"Tracing tcp retransmits. Hit Ctrl-C to end.",
			"TIME     PID               LADDR:LPORT           RADDR:RPORT  STATE",
			"06:08:06 0         127.0.0.1:9500        127.0.0.1:43210  ESTABLISHED",
			"06:08:07 0         127.0.0.1:9500        127.0.0.1:43210  ESTABLISHED",
		}, Counts{Events: 2, Retrans: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Counts
			for _, l := range tt.lines {
				tt.f(l, &c)
			}
			assert.Equal(t, tt.want, c)
		})
	}
}

func TestProcToolScan(t *testing.T) {
	bcc := bccTool("/usr/sbin/tcpretrans-bpfcc", "/k")
	assert.Equal(t, []string{"/usr/sbin/tcpretrans-bpfcc", "-l"}, bcc.argv)
	assert.Contains(t, bcc.env, "BCC_KERNEL_SOURCE=/k")
	bcc.readyCh = make(chan struct{})
	bcc.scan(strings.NewReader("Tracing retransmits ... Hit Ctrl-C to end\n"+
		"06:08:06 0      4  127.0.0.1:9500       R> 127.0.0.1:43210      ESTABLISHED\n"+
		"Possibly lost 5 samples\n"), false)
	bcc.scan(strings.NewReader("Possibly lost 2 samples\nsome warning\n"), true)
	select {
	case <-bcc.readyCh:
	default:
		t.Fatal("the banner did not make the tool ready")
	}
	assert.Equal(t, Counts{Events: 1, Retrans: 1, Lost: 7}, bcc.Counts())
	assert.Equal(t, "some warning", bcc.tail[len(bcc.tail)-1])

	ig := igTool("bin/ig", "img", nil)
	ig.readyCh = make(chan struct{})
	var in strings.Builder
	for i := 0; i < 50; i++ {
		in.WriteString(`{"type":"RETRANS","segs":1}` + "\n")
	}
	ig.scan(strings.NewReader(in.String()), false)
	var errs strings.Builder
	for i := 0; i < 45; i++ {
		errs.WriteString("line\n")
	}
	errs.WriteString("reading event: lost 9 samples\n")
	ig.scan(strings.NewReader(errs.String()), true)
	assert.Equal(t, Counts{Events: 50, Retrans: 50, RetransSegs: 50, Lost: 9}, ig.Counts())
	assert.Len(t, ig.tail, 40, "the tail keeps the last 40 lines, not JSON events")
	assert.Equal(t, "reading event: lost 9 samples", ig.tail[39])
}

func TestProcToolHookOf(t *testing.T) {
	ig := igTool("bin/ig", "img", map[string]string{"ig_tcpretrans": "retransmit_skb", "ig_tlp_timer": "timer"})
	assert.Equal(t, []string{"bin/ig", "run", "img", "--verify-image=false", "--host", "-o", "json"}, ig.argv)
	tests := map[string]string{
		"ig_tcpretrans":                       "retransmit_skb",
		"ig_tlp_timer":                        "timer",
		"trace_tlp":                           "tlp",
		"tracepoint__tcp__tcp_retransmit_skb": "retransmit_skb",
		"tcp_retransmit_":                     "retransmit_skb",
		"trace_synack":                        "retransmit_synack",
		"ig_sk_cleanup":                       "",
	}
	for name, want := range tests {
		assert.Equal(t, want, ig.HookOf(ProgStat{Name: name}), name)
	}

	// Without the object's names: this gadget's programs and IG's own by
	// their names, whatever their type (tp_btf programs are "tracing").
	ig = igTool("bin/ig", "img", nil)
	for name, want := range map[string]string{"ig_tcpretrans": "retransmit_skb", "ig_synack": "retransmit_synack", "ig_tcplossprobe": "tlp"} {
		assert.Equal(t, want, ig.HookOf(ProgStat{Name: name, Type: "tracing"}), name)
	}
}
