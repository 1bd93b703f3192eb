package hook

import (
	"errors"
	"strconv"
	"strings"

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
		return contract.Config{}, errors.New("invalid value '" + values[contract.ParamFamily] + "' for --" + contract.ParamFamily +
			": allowed values are " + strings.Join(contract.Families, ", ") + " (0 for both IP versions)")
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
		return 0, errors.New("invalid value '" + value + "' for --" + key + ": allowed values are true, false")
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
	us, ok := microseconds(v)
	if !ok || (us != 0 && (us < contract.MinMaxDelayUs || us > contract.MaxDelayLimitUs)) {
		return 0, errors.New("invalid value '" + value + "' for --" + contract.ParamMaxDelay +
			": give 0 (ig woken for every event) or a duration from 1ms to 1s, such as 5ms")
	}
	return uint32(us), nil
}

// unitNs is how many nanoseconds each unit of a duration is.
var unitNs = map[string]uint64{"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

// microseconds reads "0" or a number with a unit ("5ms", "1.5ms", "2500us",
// "1s"), as Go's durations are written, in whole microseconds. Parsing it
// here keeps the time package out of the wasm module.
func microseconds(v string) (uint64, bool) {
	if v == "0" {
		return 0, true
	}
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	num, unit := v[:i], v[i:]
	ns, ok := unitNs[unit]
	whole, frac, _ := strings.Cut(num, ".")
	if !ok || whole == "" && frac == "" || strings.Contains(frac, ".") || len(whole) > 10 || len(frac) > 9 {
		return 0, false
	}
	total := uint64(0)
	for _, c := range whole {
		total = total*10 + uint64(c-'0')
	}
	total *= ns
	scale := ns
	for _, c := range frac {
		scale /= 10
		total += uint64(c-'0') * scale
	}
	return total / 1_000, true
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
