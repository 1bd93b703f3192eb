package contract

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEnumNames(t *testing.T) {
	assert.Equal(t, []string{"RETRANS", "LOSS", "SYNACK", "RETRANS_FAILED"}, Type.Names())
	assert.Equal(t, "SYN_RTO", Reason.Name(4))
	assert.Equal(t, "ESTABLISHED", State.Name(1))
	assert.Equal(t, "UNKNOWN", State.Name(0), "no state 0 in include/net/tcp_states.h")
	for _, e := range Enums {
		seen := map[uint64]bool{}
		for _, v := range e.Values {
			assert.False(t, seen[v.Value], "%s: value %d twice", e.CType, v.Value)
			seen[v.Value] = true
		}
	}
}

func TestConfigBytes(t *testing.T) {
	c := Config{Ready: 1, Loss: 0, Synack: 1, Failed: 1, Family: 6, Count: 1, MaxDelayUs: 70000}
	want := []byte{1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(want[4:], 6)
	binary.NativeEndian.PutUint32(want[8:], 1)
	binary.NativeEndian.PutUint32(want[12:], 70000)
	assert.Equal(t, want, c.Bytes())
	assert.Equal(t, Config{Ready: 1, Loss: 1, Synack: 1, MaxDelayUs: 5000}, DefaultConfig())
	assert.Equal(t, map[string]uint64{"ready": 1, "loss": 0, "synack": 1, "failed": 1, "family": 6, "count": 1, "max_delay_us": 70000}, c.Members())
	assert.Equal(t, "loss=false synack=true failed=true family=6 count=true max-delay=70000us", c.String())
}

func TestArrayKeyAndCounter(t *testing.T) {
	key := make([]byte, 4)
	binary.NativeEndian.PutUint32(key, 0)
	assert.Equal(t, key, ArrayKey())
	value := make([]byte, 8)
	binary.NativeEndian.PutUint64(value, 0x0102030405060708)
	assert.Equal(t, uint64(0x0102030405060708), Counter(value))
	assert.Equal(t, uint64(0), Counter(make([]byte, 8)))
}

func TestParamsHaveDefaults(t *testing.T) {
	keys := map[string]bool{}
	for _, p := range Params {
		assert.NotEmpty(t, p.Default, p.Key)
		assert.False(t, keys[p.Key], "%s twice", p.Key)
		keys[p.Key] = true
	}
	assert.Contains(t, LossHooks, Params[0].Default)
	assert.Contains(t, Families, "0")
}
