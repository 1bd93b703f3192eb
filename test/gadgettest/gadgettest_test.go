package gadgettest

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const snmp = `Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 1234
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 12 3 9 0 2 5000 6000 42 0 7 0
Udp: InDatagrams NoPorts
Udp: 5 6
`

func TestSNMPField(t *testing.T) {
	cases := []struct {
		proto, field string
		want         int64
		err          bool
	}{
		{"Tcp", "RetransSegs", 42, false},
		{"Tcp", "ActiveOpens", 12, false},
		{"Tcp", "MaxConn", -1, false},
		{"Udp", "NoPorts", 6, false},
		{"Ip", "InReceives", 1234, false},
		{"Tcp", "Nonexistent", 0, true},
		{"Sctp", "RetransSegs", 0, true},
	}
	for _, c := range cases {
		got, err := SNMPField(snmp, c.proto, c.field)
		if c.err {
			assert.Error(t, err, "%s %s", c.proto, c.field)
			continue
		}
		require.NoError(t, err, "%s %s", c.proto, c.field)
		assert.Equal(t, c.want, got, "%s %s", c.proto, c.field)
	}
}

func TestEncodeByName(t *testing.T) {
	u8, u16, u32 := &btf.Int{Size: 1}, &btf.Int{Size: 2}, &btf.Int{Size: 4}
	st := &btf.Struct{Name: "s", Size: 8, Members: []btf.Member{
		{Name: "a", Type: u8, Offset: 0},
		{Name: "b", Type: u16, Offset: 16},
		{Name: "c", Type: u32, Offset: 32},
	}}
	got, err := EncodeByName(st, map[string]uint64{"a": 0x11, "b": 0x2233, "c": 0x44556677, "unused": 9})
	require.NoError(t, err)
	want := make([]byte, 8)
	want[0] = 0x11
	binary.NativeEndian.PutUint16(want[2:], 0x2233)
	binary.NativeEndian.PutUint32(want[4:], 0x44556677)
	assert.Equal(t, want, got)

	_, err = EncodeByName(st, map[string]uint64{"a": 1, "b": 2})
	assert.ErrorContains(t, err, `no value for member "c"`)
}

func TestIntegersRoundTrip(t *testing.T) {
	for _, size := range []int{1, 2, 4, 8} {
		b := make([]byte, size)
		v := uint64(0x0102030405060708) >> (64 - 8*size)
		require.NoError(t, PutUint(b, v))
		got, err := Uint(b)
		require.NoError(t, err)
		assert.Equal(t, v, got, "%d bytes", size)
	}
	assert.Error(t, PutUint(make([]byte, 3), 1))
	_, err := Uint(make([]byte, 16))
	assert.Error(t, err)
}

func TestDecodeRejectsWrongSize(t *testing.T) {
	d := &Decoder{size: 8, members: map[string]Member{}}
	_, err := d.Decode(make([]byte, 7))
	assert.ErrorContains(t, err, "record has 7 bytes")
	// A record of the right size without the gadget's members is an
	// error too, not a panic.
	_, err = d.Decode(make([]byte, 8))
	assert.ErrorContains(t, err, "has no member")
}
