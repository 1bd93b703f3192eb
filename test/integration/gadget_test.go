//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

var (
	states  = contract.State.Names()
	reasons = contract.Reason.Names()
	types   = contract.Type.Names()
)

const client = "test-trace-tcpretrans"

func isType(typ string) func(map[string]any) bool {
	return func(e map[string]any) bool { return str(e, "type") == typ }
}

// summary counts events by type and reason, for the test log.
func summary(evs []map[string]any) string {
	c := map[string]int{}
	for _, e := range evs {
		c[str(e, "type")+"/"+str(e, "reason")]++
	}
	return fmt.Sprint(c)
}

// The guide: the gadget traces one lossy container, by name, in JSON.
func TestGuideJSON(t *testing.T) {
	ig := StartIG(t, "--containername", client, "-o", "json")
	LossyClient(t, client, 25)
	LossyClient(t, "other-lossy-client", 25)

	var evs []map[string]any
	for round := 0; round < 8; round++ {
		Fetch(t, "other-lossy-client", 2)
		Fetch(t, client, 5)
		evs = ig.Events(t)
		if count(evs, isType("RETRANS")) > 0 && count(evs, isType("LOSS")) > 0 &&
			count(evs, func(e map[string]any) bool { return str(e, "reason") == "TLP" && str(e, "type") == "RETRANS" }) > 0 {
			break
		}
	}
	time.Sleep(time.Second) // the last events of the last fetch
	evs = ig.Events(t)
	t.Logf("events of %s: %d %s", client, len(evs), summary(evs))
	for _, e := range evs[:min(len(evs), 5)] {
		t.Logf("sample: %v", e)
	}

	require.Positive(t, count(evs, isType("RETRANS")), "RETRANS events")
	require.Positive(t, count(evs, isType("LOSS")), "LOSS events")
	assert.Positive(t, count(evs, func(e map[string]any) bool { return str(e, "reason") == "TLP" && str(e, "type") == "RETRANS" }),
		"a RETRANS caused by a tail loss probe")
	for _, e := range evs {
		assert.Equal(t, client, str(e, "runtime.containerName"), "only the selected container: %v", e)
		assert.Equal(t, "docker", str(e, "runtime.runtimeName"))
		assert.Contains(t, states, str(e, "state"), "state by name: %v", e)
		assert.Contains(t, reasons, str(e, "reason"), "reason by name: %v", e)
		assert.Contains(t, types, str(e, "type"))
		assert.NotEmpty(t, str(e, "timestamp"))
		if str(e, "type") == "RETRANS" {
			assert.Regexp(t, `^(FIN|SYN|RST|PSH|ACK|URG|ECE|CWR)(\|(FIN|SYN|RST|PSH|ACK|URG|ECE|CWR))*$`, str(e, "tcpflags"))
		}
		// The client container's sockets were opened by wget while ig ran.
		if str(e, "dst.port") == "80" {
			assert.Equal(t, "wget", str(e, "proc.comm"), "socket owner: %v", e)
			assert.NotEqual(t, "0", str(e, "proc.pid"))
			assert.Equal(t, webIP, str(e, "dst.addr"))
		}
	}
}

// The guide's table: the default columns, states and reasons by name.
func TestGuideTable(t *testing.T) {
	ig := StartIG(t, "--containername", client)
	LossyClient(t, client, 25)
	var row string
	for round := 0; round < 8 && row == ""; round++ {
		Fetch(t, client, 5)
		for _, l := range ig.Lines() {
			if strings.Contains(l, client) && strings.Contains(l, "RETRANS") {
				row = l
				break
			}
		}
	}
	lines := ig.Lines()
	require.NotEmpty(t, lines)
	for _, l := range lines[:min(len(lines), 8)] {
		t.Logf("table: %s", l)
	}
	header := strings.Fields(lines[0])
	assert.Equal(t, []string{"RUNTIME.CONTAINERNAME", "SRC", "DST", "COMM", "PID", "TID", "STATE", "REASON", "TCPFLAGS", "TYPE", "TIMESTAMP"},
		header, "the guide's columns, in its order")
	require.NotEmpty(t, row, "a RETRANS row of the client container")
	assert.Contains(t, row, "wget")
	found := false
	for _, s := range states {
		found = found || strings.Contains(row, " "+s+" ")
	}
	assert.True(t, found, "state by name in %q", row)
}

// netns creates a network namespace with loopback up and an nftables
// ruleset, removed when the test ends.
func netns(t *testing.T, rules string) *gadgettest.Netns {
	t.Helper()
	ns, err := gadgettest.NewNetns("it")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ns.Close() })
	require.NoError(t, ns.Nft(rules))
	return ns
}

const synDrop = "table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp dport { 9001, 9002 } tcp flags & (syn|ack) == syn drop\n }\n}\n"

// connect tries a TCP connection from the namespace with bash's /dev/tcp.
func connect(ns *gadgettest.Netns, host string, port, secs int) *exec.Cmd {
	cmd := ns.Command("timeout", fmt.Sprint(secs), "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", host, port))
	_ = cmd.Start()
	return cmd
}

// Host processes (not in containers) are shown with --host; SYN
// retransmissions over IPv4 and IPv6 with their owner.
func TestHostSYNRetransmits(t *testing.T) {
	ig := StartIG(t, "--host", "-o", "json")
	ns := netns(t, synDrop)
	c4 := connect(ns, "127.0.0.1", 9001, 4)
	c6 := connect(ns, "::1", 9002, 4)
	defer c4.Wait()
	defer c6.Wait()
	syn := func(port string) func(map[string]any) bool {
		return func(e map[string]any) bool { return str(e, "dst.port") == port && str(e, "reason") == "SYN_RTO" }
	}
	evs := ig.WaitEvents(t, 20*time.Second, func(evs []map[string]any) bool {
		return count(evs, syn("9001")) > 0 && count(evs, syn("9002")) > 0
	})
	require.Positive(t, count(evs, syn("9001")), "IPv4 SYN retransmission")
	require.Positive(t, count(evs, syn("9002")), "IPv6 SYN retransmission")
	for _, e := range evs {
		if !syn("9001")(e) && !syn("9002")(e) {
			continue
		}
		t.Logf("event: %v", e)
		assert.Equal(t, "RETRANS", str(e, "type"))
		assert.Equal(t, "SYN_SENT", str(e, "state"))
		assert.Equal(t, "SYN", str(e, "tcpflags"))
		assert.Equal(t, "bash", str(e, "proc.comm"), "the socket's owner")
		if str(e, "dst.port") == "9002" {
			assert.Equal(t, "::1", str(e, "dst.addr"))
		} else {
			assert.Equal(t, "127.0.0.1", str(e, "dst.addr"))
		}
	}
}

// listen9100 starts a listener (busybox httpd) on 127.0.0.1:9100 in the
// namespace for at most 20 s and waits until it listens.
func listen9100(t *testing.T, ns *gadgettest.Netns) {
	t.Helper()
	srv := ns.Command("timeout", "20", "busybox", "httpd", "-f", "-p", "127.0.0.1:9100", "-h", "/tmp")
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	require.Eventually(t, func() bool {
		return strings.Contains(sh(t, "ip netns exec "+ns.Name+" ss -Hltn 'sport = :9100'"), "9100")
	}, 10*time.Second, 100*time.Millisecond)
}

func TestSYNACKRetransmit(t *testing.T) {
	ig := StartIG(t, "--host", "-o", "json")
	ns := netns(t, "table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 9100 tcp flags & (syn|ack) == ack drop\n }\n}\n")
	listen9100(t, ns)
	c := connect(ns, "127.0.0.1", 9100, 4)
	defer c.Wait()
	evs := ig.WaitEvents(t, 20*time.Second, func(evs []map[string]any) bool { return count(evs, isType("SYNACK")) > 0 })
	var sa map[string]any
	for _, e := range evs {
		if str(e, "type") == "SYNACK" {
			sa = e
			break
		}
	}
	require.NotNil(t, sa, "a SYNACK event")
	t.Logf("event: %v", sa)
	assert.Equal(t, "9100", str(sa, "src.port"))
	assert.Equal(t, "SYNACK_RTO", str(sa, "reason"))
	assert.Equal(t, "NEW_SYN_RECV", str(sa, "state"))
	assert.Equal(t, "SYN|ACK", str(sa, "tcpflags"))
	assert.Equal(t, "busybox", str(sa, "proc.comm"), "the listener's owner")
}

// SYN-ACKs lost on the way to the client: the listener answers the client's
// repeated SYN (DUP_SYN) and retransmits on its own timer (SYNACK_RTO).
func TestDupSYN(t *testing.T) {
	ig := StartIG(t, "--host", "-o", "json")
	ns := netns(t, "table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp sport 9100 tcp flags & (syn|ack) == syn|ack drop\n }\n}\n")
	listen9100(t, ns)
	c := connect(ns, "127.0.0.1", 9100, 6)
	defer c.Wait()
	synack := func(reason string) func(map[string]any) bool {
		return func(e map[string]any) bool { return str(e, "type") == "SYNACK" && str(e, "reason") == reason }
	}
	evs := ig.WaitEvents(t, 20*time.Second, func(evs []map[string]any) bool {
		return count(evs, synack("DUP_SYN")) > 0 && count(evs, synack("SYNACK_RTO")) > 0
	})
	t.Logf("events: %s", summary(evs))
	require.Positive(t, count(evs, synack("DUP_SYN")), "SYN-ACK answering a repeated SYN")
	require.Positive(t, count(evs, synack("SYNACK_RTO")), "SYN-ACK retransmitted by the request's timer")
	for _, e := range evs {
		if synack("DUP_SYN")(e) {
			t.Logf("event: %v", e)
			assert.Equal(t, "9100", str(e, "src.port"))
			assert.Equal(t, "NEW_SYN_RECV", str(e, "state"))
			assert.Equal(t, "busybox", str(e, "proc.comm"), "the listener's owner")
		}
	}
}

// -F filters on the names users see, --fields picks the table's columns
// (ig v0.50.1 applies --fields to the table only; JSON has every field).
func TestFilterAndFields(t *testing.T) {
	// With two data sources (events, and the count mode's flows), ig names
	// the filter by data source: --filter.tcpretrans, no -F.
	ig := StartIG(t, "--host", "--filter."+contract.DataSource, "reason==SYN_RTO", "--fields", "dst,reason,type,rto,backoff,srtt")
	ns := netns(t, synDrop)
	c := connect(ns, "127.0.0.1", 9001, 4)
	defer c.Wait()
	ig.WaitLines(t, 20*time.Second, func(lines []string) bool { return len(lines) >= 3 })
	lines := ig.Lines()
	require.GreaterOrEqual(t, len(lines), 2, "a header and rows: %q", lines)
	assert.Equal(t, []string{"DST", "REASON", "TYPE", "RTO", "BACKOFF", "SRTT"}, strings.Fields(lines[0]))
	for _, l := range lines[1:] {
		t.Logf("row: %s", l)
		f := strings.Fields(l)
		require.Len(t, f, 6, "row %q", l)
		assert.Equal(t, "127.0.0.1:9001", f[0])
		assert.Equal(t, "SYN_RTO", f[1], "only rows that pass -F")
		assert.Equal(t, "RETRANS", f[2])
		backoff, err := strconv.Atoi(f[4])
		require.NoError(t, err, "backoff %q", f[4])
		// 0 while HZ is not known yet: only within seconds of 300 s of
		// uptime, and never after the first second of events.
		if f[3] != "0" {
			assert.Equal(t, strconv.Itoa(1000<<backoff), f[3], "SYN RTO in ms: 1 s, doubled on each backoff")
		}
		assert.Equal(t, "0", f[5], "no RTT sample before the handshake")
	}
}

func TestFamilyParam(t *testing.T) {
	ig := StartIG(t, "--host", "-o", "json", "--family", "6")
	ns := netns(t, synDrop)
	c4 := connect(ns, "127.0.0.1", 9001, 4)
	c6 := connect(ns, "::1", 9002, 4)
	defer c4.Wait()
	defer c6.Wait()
	ig.WaitEvents(t, 20*time.Second, func(evs []map[string]any) bool {
		return count(evs, func(e map[string]any) bool { return str(e, "dst.port") == "9002" }) > 0
	})
	c4.Wait() // the IPv4 attempts are over: none of them may show
	evs := ig.Events(t)
	assert.Positive(t, count(evs, func(e map[string]any) bool { return str(e, "dst.port") == "9002" }))
	assert.Zero(t, count(evs, func(e map[string]any) bool { return str(e, "dst.port") == "9001" }), "IPv4 filtered out")
}

// Both ways of seeing tail loss probes give LOSS events on these kernels.
func TestLossProbeHooks(t *testing.T) {
	for _, hook := range []string{"kprobe", "timer"} {
		t.Run(hook, func(t *testing.T) {
			ig := StartIG(t, "--containername", client, "-o", "json", "--loss-probe-hook", hook)
			LossyClient(t, client, 25)
			var evs []map[string]any
			for round := 0; round < 8 && count(evs, isType("LOSS")) == 0; round++ {
				Fetch(t, client, 5)
				evs = ig.Events(t)
			}
			t.Logf("%s: %s", hook, summary(evs))
			assert.Positive(t, count(evs, isType("LOSS")), "LOSS events with --loss-probe-hook=%s", hook)
			on := attachedPrograms(t)
			prog := map[string]string{"kprobe": contract.ProgLossKprobe, "timer": contract.ProgLossTimer}
			other := map[string]string{"kprobe": "timer", "timer": "kprobe"}[hook]
			assert.True(t, on[prog[hook]], "%s attached: %v", prog[hook], on)
			assert.False(t, on[prog[other]], "%s not attached: %v", prog[other], on)
			ig.Stop(t)
			assertDetached(t)
		})
	}
}

var gadgetPrograms = contract.Programs

// assertDetached checks that none of the gadget's programs, and not its
// config map (names are cut to 15 characters by the kernel), is left.
func assertDetached(t *testing.T) {
	t.Helper()
	out := sh(t, "bpftool prog show")
	for _, p := range gadgetPrograms {
		assert.NotContains(t, out, "name "+p, "program %s left after ig exited", p)
	}
	assert.NotContains(t, sh(t, "bpftool map show"), "name "+contract.ConfigMap[:15], "config map left after ig exited")
}

type bpfObject struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	ProgID int    `json:"prog_id"`
}

// attachedPrograms names the gadget's programs that are attached now: those
// that a tracepoint or kprobe perf event runs.
func attachedPrograms(t *testing.T) map[string]bool {
	t.Helper()
	names := map[int]string{}
	for _, p := range bpftoolJSON(t, "prog") {
		names[p.ID] = p.Name
	}
	on := map[string]bool{}
	for _, p := range bpftoolJSON(t, "perf") {
		if slices.Contains(gadgetPrograms, names[p.ProgID]) {
			on[names[p.ProgID]] = true
		}
	}
	return on
}

func bpftoolJSON(t *testing.T, what string) []bpfObject {
	t.Helper()
	var objs []bpfObject
	require.NoError(t, json.Unmarshal([]byte(sh(t, "bpftool -j "+what+" show")), &objs), what)
	return objs
}

// After ig exits, no program, link or map of the gadget remains.
func TestCleanDetach(t *testing.T) {
	ig := StartIG(t, "--host")
	ours := map[int]bool{}
	for _, p := range bpftoolJSON(t, "prog") {
		if slices.Contains(gadgetPrograms, p.Name) {
			ours[p.ID] = true
		}
	}
	links := 0
	for _, l := range bpftoolJSON(t, "link") {
		if ours[l.ProgID] {
			links++
		}
	}
	t.Logf("while running: %d programs of the gadget, %d BPF links to them", len(ours), links)
	require.GreaterOrEqual(t, len(ours), 3, "the tracepoint programs and one loss-probe program")
	// Kernels before 5.15 attach perf events without BPF links: links may be 0.

	ig.Stop(t)
	assertDetached(t)
	for _, l := range bpftoolJSON(t, "link") {
		assert.False(t, ours[l.ProgID], "link %d to program %d left after ig exited", l.ID, l.ProgID)
	}
	for _, p := range bpftoolJSON(t, "prog") {
		assert.False(t, ours[p.ID], "program %d (%s) left after ig exited", p.ID, p.Name)
	}
}

func TestBadParams(t *testing.T) {
	cases := []struct {
		args []string
		want []string // what the message names: the parameter and the allowed values
	}{
		{[]string{"--family", "5"}, []string{"family", `5`, "0, 4, 6"}},
		{[]string{"--loss-probe-hook", "fentry"}, []string{"loss-probe-hook", "fentry", "auto, kprobe, timer"}},
		{[]string{"--loss=maybe"}, []string{"loss", "maybe"}},
		{[]string{"--synack=2"}, []string{"synack", "2"}},
		{[]string{"--no-such-flag"}, []string{"unknown flag: --no-such-flag"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out := igFails(t, 60*time.Second, append([]string{"run", *image, "--verify-image=false", "--host"}, c.args...)...)
			for _, w := range c.want {
				assert.Contains(t, out, w)
			}
			assertDetached(t)
		})
	}
}

// --loss=false and --synack=false remove those events and nothing else.
func TestLossAndSynackOff(t *testing.T) {
	t.Run("synack", func(t *testing.T) {
		ig := StartIG(t, "--host", "-o", "json", "--synack=false")
		ns := netns(t, "table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 9100 tcp flags & (syn|ack) == ack drop\n  tcp dport 9001 tcp flags & (syn|ack) == syn drop\n }\n}\n")
		listen9100(t, ns)
		c := connect(ns, "127.0.0.1", 9100, 5)
		control := connect(ns, "127.0.0.1", 9001, 5)
		defer c.Wait()
		defer control.Wait()
		ig.WaitEvents(t, 20*time.Second, func(evs []map[string]any) bool {
			return count(evs, func(e map[string]any) bool { return str(e, "dst.port") == "9001" }) >= 2
		})
		c.Wait() // the connection's attempts are over: none may show as SYNACK
		evs := ig.Events(t)
		t.Logf("events: %s", summary(evs))
		assert.GreaterOrEqual(t, count(evs, func(e map[string]any) bool { return str(e, "dst.port") == "9001" }), 2, "control SYN retransmissions")
		assert.Zero(t, count(evs, isType("SYNACK")), "no SYNACK events with --synack=false")
	})
	t.Run("loss", func(t *testing.T) {
		ig := StartIG(t, "--containername", client, "-o", "json", "--loss=false")
		LossyClient(t, client, 25)
		var evs []map[string]any
		for round := 0; round < 4 && count(evs, func(e map[string]any) bool { return str(e, "reason") == "TLP" }) == 0; round++ {
			Fetch(t, client, 5)
			evs = ig.Events(t)
		}
		t.Logf("events: %s", summary(evs))
		assert.Positive(t, count(evs, isType("RETRANS")), "RETRANS events")
		assert.Zero(t, count(evs, isType("LOSS")), "no LOSS events with --loss=false")
		on := attachedPrograms(t)
		assert.True(t, on[contract.ProgRetransmit], "%s attached: %v", contract.ProgRetransmit, on)
		assert.False(t, on[contract.ProgLossKprobe] || on[contract.ProgLossTimer], "no loss-probe program attached with --loss=false: %v", on)
	})
}
