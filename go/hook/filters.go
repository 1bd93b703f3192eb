package hook

import (
	"fmt"
	"strconv"
	"strings"
)

// Keys of the parameters that choose which events the gadget emits.
const (
	LossKey   = "loss"
	SynackKey = "synack"
	FailedKey = "failed"
	FamilyKey = "family"
)

// ConfigMap is the BPF map (program.bpf.c, tcpretrans_config) that receives
// the filters when the gadget starts.
const ConfigMap = "tcpretrans_config"

// Filters is the value of ConfigMap's only entry, laid out as program.bpf.c's
// struct config: four bytes, then a 32-bit family. The wasm API writes it
// with encoding/binary in the host's byte order.
type Filters struct {
	Ready  uint8 // 1 once written; the BPF programs emit nothing before
	Loss   uint8 // LOSS events of tail loss probes
	Synack uint8 // SYNACK events of listeners
	Failed uint8 // RETRANS_FAILED events (Linux 6.17 and later)
	Family uint32
}

// Families lists the accepted values of --family.
var Families = []string{"0", "4", "6"}

// ParseFilters validates the parameter values (by key) and returns the
// filters to write; a missing or empty value takes the default.
func ParseFilters(values map[string]string) (Filters, error) {
	f := Filters{Ready: 1}
	var err error
	if f.Loss, err = parseBool(LossKey, values[LossKey], true); err != nil {
		return Filters{}, err
	}
	if f.Synack, err = parseBool(SynackKey, values[SynackKey], true); err != nil {
		return Filters{}, err
	}
	if f.Failed, err = parseBool(FailedKey, values[FailedKey], false); err != nil {
		return Filters{}, err
	}
	switch v := strings.TrimSpace(values[FamilyKey]); v {
	case "", "0":
		f.Family = 0
	case "4":
		f.Family = 4
	case "6":
		f.Family = 6
	default:
		return Filters{}, fmt.Errorf("invalid value '%s' for --%s: allowed values are %s (0 for both IP versions)",
			values[FamilyKey], FamilyKey, strings.Join(Families, ", "))
	}
	return f, nil
}

func parseBool(key, value string, def bool) (uint8, error) {
	v := strings.TrimSpace(value)
	b := def
	if v != "" {
		var err error
		if b, err = strconv.ParseBool(v); err != nil {
			return 0, fmt.Errorf("invalid value '%s' for --%s: allowed values are true, false", value, key)
		}
	}
	if b {
		return 1, nil
	}
	return 0, nil
}

// String describes the filters for the log.
func (f Filters) String() string {
	return fmt.Sprintf("loss=%t synack=%t failed=%t family=%d", f.Loss == 1, f.Synack == 1, f.Failed == 1, f.Family)
}
