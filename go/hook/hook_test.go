package hook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAcceptsEveryMode(t *testing.T) {
	for _, in := range []string{"auto", "kprobe", "timer", "KPROBE", " timer "} {
		m, err := Parse(in)
		require.NoError(t, err, in)
		assert.Contains(t, Modes, m)
	}
	m, err := Parse("")
	require.NoError(t, err)
	assert.Equal(t, Auto, m)
}

func TestParseRejectsUnknownValue(t *testing.T) {
	_, err := Parse("fentry")
	require.Error(t, err)
	assert.Equal(t, `invalid value "fentry" for --loss-probe-hook: allowed values are auto, kprobe, timer`, err.Error())
}

func TestChoose(t *testing.T) {
	all := Kernel{Kprobes: true, WriteTimer: true}
	cases := []struct {
		name    string
		req     Mode
		kernel  Kernel
		want    Mode
		wantErr string
	}{
		{"auto prefers kprobe", Auto, all, Kprobe, ""},
		{"auto without kprobes", Auto, Kernel{WriteTimer: true}, Timer, ""},
		{"auto with nothing", Auto, Kernel{}, "", "neither kprobes nor a tcp_write_timer"},
		{"forced kprobe", Kprobe, all, Kprobe, ""},
		{"forced timer", Timer, all, Timer, ""},
		{"kprobe without kprobes", Kprobe, Kernel{WriteTimer: true}, "", "this kernel has no kprobes"},
		{"timer without symbol", Timer, Kernel{Kprobes: true}, "", "no tcp_write_timer symbol"},
		{"unknown mode", Mode("x"), all, "", "unknown --loss-probe-hook mode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Choose(c.req, c.kernel)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestConfigDisablesTheOtherProgram(t *testing.T) {
	assert.Equal(t, map[string]string{"programs.ig_tlp_timer.attach_to": Disabled}, Config(Kprobe))
	assert.Equal(t, map[string]string{"programs.ig_tlp_kprobe.attach_to": Disabled}, Config(Timer))
}
