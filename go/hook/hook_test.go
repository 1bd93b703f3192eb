package hook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"trace_tcpretrans/go/contract"
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

func TestModesAreTheContracts(t *testing.T) {
	var names []string
	for _, m := range Modes {
		names = append(names, string(m))
	}
	assert.Equal(t, contract.LossHooks, names)
	assert.Equal(t, string(Auto), defaultOf(ParamKey), "the parameter's default")
}

func TestParseRejectsUnknownValue(t *testing.T) {
	_, err := Parse("fentry")
	require.Error(t, err)
	assert.Equal(t, `invalid value 'fentry' for --loss-probe-hook: allowed values are auto, kprobe, timer`, err.Error())
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
			got, err := Choose(c.req, c.kernel, true)
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

// With --loss=false no hook is needed: no error about the kernel's lack of
// kprobes or of a write timer (advising --loss=false) is ever shown.
func TestChooseWithoutLoss(t *testing.T) {
	for _, req := range Modes {
		for _, k := range []Kernel{{}, {Kprobes: true}, {WriteTimer: true}, {Kprobes: true, WriteTimer: true}} {
			got, err := Choose(req, k, false)
			require.NoError(t, err, "%s %+v", req, k)
			assert.Equal(t, None, got)
		}
	}
}

func TestConfigDisablesTheOtherProgram(t *testing.T) {
	assert.Equal(t, map[string]string{"programs.ig_tlp_timer.attach_to": Disabled}, Config(Kprobe))
	assert.Equal(t, map[string]string{"programs.ig_tlp_kprobe.attach_to": Disabled}, Config(Timer))
	assert.Equal(t, map[string]string{
		"programs.ig_tlp_timer.attach_to":  Disabled,
		"programs.ig_tlp_kprobe.attach_to": Disabled,
	}, Config(None), "--loss=false attaches neither")
}

func TestParseFiltersDefaults(t *testing.T) {
	f, err := ParseFilters(map[string]string{})
	require.NoError(t, err)
	assert.Equal(t, contract.Config{Ready: 1, Loss: 1, Synack: 1, Failed: 0, Family: 0, MaxDelayUs: 5000}, f)
	assert.Equal(t, contract.DefaultConfig(), f)
	assert.Equal(t, []byte{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x13, 0, 0}, f.Bytes(), "the layout of struct config")
}

func TestParseFiltersValues(t *testing.T) {
	f, err := ParseFilters(map[string]string{contract.ParamLoss: "false", contract.ParamSynack: "0", contract.ParamFailed: "true", contract.ParamFamily: "6", contract.ParamCount: "true", contract.ParamMaxDelay: "250ms"})
	require.NoError(t, err)
	assert.Equal(t, contract.Config{Ready: 1, Loss: 0, Synack: 0, Failed: 1, Family: 6, Count: 1, MaxDelayUs: 250000}, f)
	assert.Equal(t, []byte{1, 0, 0, 1, 6, 0, 0, 0, 1, 0, 0, 0, 0x90, 0xd0, 0x03, 0}, f.Bytes())
	assert.Equal(t, "loss=false synack=false failed=true family=6 count=true max-delay=250000us", f.String())
}

func TestParseMaxDelay(t *testing.T) {
	for value, want := range map[string]uint32{"0": 0, "0s": 0, "0.0ms": 0, "1ms": 1000, " 20ms ": 20000, "1s": 1000000, "2500us": 2500, "2500µs": 2500, "1.5ms": 1500, ".5s": 500000, "1000000ns": 1000, "0.001s": 1000} {
		f, err := ParseFilters(map[string]string{contract.ParamMaxDelay: value})
		require.NoError(t, err, value)
		assert.Equal(t, want, f.MaxDelayUs, value)
	}
	for _, value := range []string{"2s", "-1ms", "5", "soon", "999us", "ms", ".ms", "1..5ms", "1.2.3ms", "5 ms", "5m", "1h", "99999999999s", "1ms500us"} {
		_, err := ParseFilters(map[string]string{contract.ParamMaxDelay: value})
		require.Error(t, err, value)
		assert.Equal(t, "invalid value '"+value+"' for --max-delay: give 0 (ig woken for every event) or a duration from 1ms to 1s, such as 5ms", err.Error())
	}
}

func TestWakeupConfig(t *testing.T) {
	c := contract.DefaultConfig()
	assert.Equal(t, map[string]string{"programs.wakeup.sampler.frequency": "400"}, WakeupConfig(c), "5 ms: every 2.5 ms")
	c.MaxDelayUs = 1_000_000
	assert.Equal(t, map[string]string{"programs.wakeup.sampler.frequency": "2"}, WakeupConfig(c))
	c.MaxDelayUs = 0
	assert.Equal(t, map[string]string{"programs.ig_wakeup.attach_to": Disabled}, WakeupConfig(c), "a wake-up per event")
	c = contract.DefaultConfig()
	c.Count = 1
	assert.Equal(t, map[string]string{"programs.ig_wakeup.attach_to": Disabled}, WakeupConfig(c), "no event in the count mode")
}

func TestParseFiltersRejectsBadValues(t *testing.T) {
	cases := map[string]string{
		contract.ParamFamily: "invalid value '5' for --family: allowed values are 0, 4, 6 (0 for both IP versions)",
		contract.ParamLoss:   "invalid value '5' for --loss: allowed values are true, false",
		contract.ParamSynack: "invalid value '5' for --synack: allowed values are true, false",
		contract.ParamFailed: "invalid value '5' for --failed: allowed values are true, false",
		contract.ParamCount:  "invalid value '5' for --count: allowed values are true, false",
	}
	for key, want := range cases {
		_, err := ParseFilters(map[string]string{key: "5"})
		require.Error(t, err, key)
		assert.Equal(t, want, err.Error())
	}
}

func TestDropsReportsGrowthOnce(t *testing.T) {
	var d Drops
	assert.Empty(t, d.Check(0), "nothing dropped")
	assert.Equal(t, "count mode: 3 retransmissions of new flows were not counted: the flow table (8192 flows) was full; print and empty it more often with --map-fetch-interval", d.Check(3))
	assert.Empty(t, d.Check(3), "reported already")
	assert.Contains(t, d.Check(10), ": 7 retransmissions")
}

func TestUnusedDataSource(t *testing.T) {
	assert.Equal(t, contract.FlowsDataSource, UnusedDataSource(false))
	assert.Equal(t, contract.DataSource, UnusedDataSource(true))
}
