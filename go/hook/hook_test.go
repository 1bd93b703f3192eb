package hook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAcceptsEveryMode(t *testing.T) {
	for _, in := range []string{"auto", "fentry", "kprobe", "KPROBE", " fentry "} {
		m, err := Parse(in)
		require.NoError(t, err, in)
		assert.Contains(t, Modes, m)
	}
	m, err := Parse("")
	require.NoError(t, err)
	assert.Equal(t, Auto, m)
}

func TestParseRejectsUnknownValue(t *testing.T) {
	_, err := Parse("uprobe")
	require.Error(t, err)
	assert.Equal(t, `invalid value "uprobe" for --loss-probe-hook: allowed values are auto, fentry, kprobe`, err.Error())
}

func TestChoose(t *testing.T) {
	cases := []struct {
		name    string
		req     Mode
		kernel  Kernel
		want    Mode
		wantErr string
	}{
		{"auto x86 with kprobes", Auto, Kernel{Kprobes: true, X86_64: true}, Fentry, ""},
		{"auto x86 without kprobes", Auto, Kernel{Kprobes: false, X86_64: true}, Fentry, ""},
		{"auto other arch with kprobes", Auto, Kernel{Kprobes: true}, Kprobe, ""},
		{"auto other arch without kprobes", Auto, Kernel{}, Fentry, ""},
		{"forced kprobe", Kprobe, Kernel{Kprobes: true, X86_64: true}, Kprobe, ""},
		{"forced fentry", Fentry, Kernel{Kprobes: true}, Fentry, ""},
		{"kprobe without kprobes", Kprobe, Kernel{X86_64: true}, "", "this kernel has no kprobes"},
		{"unknown mode", Mode("x"), Kernel{}, "", "unknown --loss-probe-hook mode"},
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
	assert.Equal(t, map[string]string{"programs.ig_tlp_kprobe.attach_to": Disabled}, Config(Fentry))
	assert.Equal(t, map[string]string{"programs.ig_tlp_fentry.attach_to": Disabled}, Config(Kprobe))
}
