package bpf

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

// member reads an integer member of a record by its dotted path
// ("src.port") in the record's layout (gadgettest.Flatten).
func member(t *testing.T, layout map[string]gadgettest.Member, raw []byte, path string) uint64 {
	t.Helper()
	m, ok := layout[path]
	require.True(t, ok, "no member %s", path)
	v, err := gadgettest.Uint(raw[m.Off : m.Off+m.Size])
	require.NoError(t, err, path)
	return v
}

// The count mode (config count=1) adds each retransmission to its flow in
// tcpretrans_flows instead of emitting an event; a flow that finds the
// table full is counted in tcpretrans_flows_dropped. The table is shrunk to
// two flows and three connections retransmit their SYNs.
func TestCountModeCountsPerFlow(t *testing.T) {
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropSYN, 9020))
	spec, err := gadgettest.LoadSpec(*objectPath)
	require.NoError(t, err)
	spec.Maps[contract.FlowsMap].MaxEntries = 2
	cfg := contract.DefaultConfig()
	cfg.Count = 1
	opts := defaults
	opts.Config = &cfg
	o, err := gadgettest.LoadFromSpec(spec, opts)
	require.NoError(t, err)
	t.Cleanup(o.Close)
	var events atomic.Int64
	rd, err := gadgettest.Read(o.Coll.Maps[contract.EventsMap], gadgettest.ReadOptions{}, func([]byte) { events.Add(1) })
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rd.Close()) })

	var ports []uint64
	for range 3 {
		ports = append(ports, uint64(connectRaw(t, ns, netip.AddrPortFrom(lo4, 9020), unix.AF_INET, 0)))
	}
	flows, dropped := o.Coll.Maps[contract.FlowsMap], o.Coll.Maps[contract.FlowsDroppedMap]
	keyT, err := gadgettest.Flatten(spec.Maps[contract.FlowsMap].Key.(*btf.Struct))
	require.NoError(t, err)
	valT, err := gadgettest.Flatten(spec.Maps[contract.FlowsMap].Value.(*btf.Struct))
	require.NoError(t, err)
	read := func() (map[uint64][]byte, map[uint64][]byte, uint64) {
		keys, vals := map[uint64][]byte{}, map[uint64][]byte{}
		var k, v []byte
		it := flows.Iterate()
		for it.Next(&k, &v) {
			port := member(t, keyT, k, "src.port")
			keys[port], vals[port] = slices.Clone(k), slices.Clone(v)
		}
		require.NoError(t, it.Err())
		var d uint64
		require.NoError(t, dropped.Lookup(uint32(0), &d))
		return keys, vals, d
	}
	// Two SYN retransmissions per connection come within 4 s (1 s, then
	// 2 s more, or 1 s with tcp_syn_linear_timeouts).
	var keys, vals map[uint64][]byte
	var d uint64
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		keys, vals, d = read()
		var syns uint64
		for _, v := range vals {
			syns += member(t, valT, v, "syn_rto")
		}
		if len(keys) == 2 && d >= 2 && syns >= 4 {
			break
		}
	}
	require.Len(t, keys, 2, "the table holds two flows")
	assert.GreaterOrEqual(t, d, uint64(2), "the third flow's retransmissions are counted as dropped")
	var missing int
	for _, p := range ports {
		k, ok := keys[p]
		if !ok {
			missing++
			continue
		}
		v := vals[p]
		t.Logf("flow :%d: retrans=%d segs=%d syn_rto=%d last_state=%d", p, member(t, valT, v, "retrans"),
			member(t, valT, v, "segs"), member(t, valT, v, "syn_rto"), member(t, valT, v, "last_state_raw"))
		assert.EqualValues(t, ns.Inode, member(t, keyT, k, "netns_id"))
		assert.EqualValues(t, 9020, member(t, keyT, k, "dst.port"))
		assert.EqualValues(t, 4, member(t, keyT, k, "src.version"))
		assert.EqualValues(t, unix.IPPROTO_TCP, member(t, keyT, k, "dst.proto_raw"))
		n := member(t, valT, v, "retrans")
		assert.GreaterOrEqual(t, n, uint64(2))
		assert.Equal(t, n, member(t, valT, v, "syn_rto"), "every retransmission a SYN_RTO")
		assert.Equal(t, n, member(t, valT, v, "segs"), "a SYN is one segment")
		for _, m := range []string{"other", "rto", "fast_recovery", "tlp", "synack_rto", "dup_syn", "loss", "failed"} {
			assert.Zero(t, member(t, valT, v, m), m)
		}
		assert.EqualValues(t, 2, member(t, valT, v, "last_state_raw"), "SYN_SENT")
	}
	assert.Equal(t, 1, missing, "one connection found the table full")
	assert.Zero(t, events.Load(), "no event in the ring buffer in the count mode")
}
