package hook

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"trace_tcpretrans/go/contract"
)

// ParseFilters validates the parameter values (by key) and returns the
// config map entry to write; a missing or empty value takes the
// parameter's default (contract.Params).
func ParseFilters(values map[string]string) (contract.Config, error) {
	c := contract.Config{Ready: 1}
	var err error
	if c.Loss, err = parseBool(contract.ParamLoss, values[contract.ParamLoss]); err != nil {
		return contract.Config{}, err
	}
	if c.Synack, err = parseBool(contract.ParamSynack, values[contract.ParamSynack]); err != nil {
		return contract.Config{}, err
	}
	if c.Failed, err = parseBool(contract.ParamFailed, values[contract.ParamFailed]); err != nil {
		return contract.Config{}, err
	}
	count, err := parseBool(contract.ParamCount, values[contract.ParamCount])
	if err != nil {
		return contract.Config{}, err
	}
	c.Count = uint32(count)
	if c.MaxDelayUs, err = parseDelay(values[contract.ParamMaxDelay]); err != nil {
		return contract.Config{}, err
	}
	v := strings.TrimSpace(values[contract.ParamFamily])
	if v == "" {
		v = defaultOf(contract.ParamFamily)
	}
	switch v {
	case "0", "4", "6":
		f, _ := strconv.ParseUint(v, 10, 32)
		c.Family = uint32(f)
	default:
		return contract.Config{}, fmt.Errorf("invalid value '%s' for --%s: allowed values are %s (0 for both IP versions)",
			values[contract.ParamFamily], contract.ParamFamily, strings.Join(contract.Families, ", "))
	}
	return c, nil
}

// defaultOf returns a parameter's default.
func defaultOf(key string) string {
	for _, p := range contract.Params {
		if p.Key == key {
			return p.Default
		}
	}
	panic("no parameter " + key) // a programming error, caught by the tests
}

func parseBool(key, value string) (uint8, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		v = defaultOf(key)
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return 0, fmt.Errorf("invalid value '%s' for --%s: allowed values are true, false", value, key)
	}
	if b {
		return 1, nil
	}
	return 0, nil
}

// parseDelay validates --max-delay, in microseconds: 0, or a duration from
// contract.MinMaxDelay to contract.MaxDelayLimit.
func parseDelay(value string) (uint32, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		v = defaultOf(contract.ParamMaxDelay)
	}
	d, err := time.ParseDuration(v)
	if err != nil || (d != 0 && (d < contract.MinMaxDelay || d > contract.MaxDelayLimit)) {
		return 0, fmt.Errorf("invalid value '%s' for --%s: give 0 (ig woken for every event) or a duration from %s to %s, such as 5ms",
			value, contract.ParamMaxDelay, contract.MinMaxDelay, contract.MaxDelayLimit)
	}
	return uint32(d / time.Microsecond), nil
}

// WakeupConfig returns the IG configuration of ig_wakeup for the filters:
// its frequency, or disabled where no event waits for it (--max-delay 0,
// --count).
func WakeupConfig(c contract.Config) map[string]string {
	if c.MaxDelayUs == 0 || c.Count != 0 {
		return map[string]string{"programs." + contract.ProgWakeup + ".attach_to": Disabled}
	}
	name := strings.TrimPrefix(contract.WakeupSection, "perf_event/")
	return map[string]string{"programs." + name + ".sampler.frequency": strconv.FormatUint(contract.WakeupHz(c.MaxDelayUs), 10)}
}
