// Package hook decides how trace_tcpretrans sees tail loss probes.
//
// tcp_send_loss_probe() has no tracepoint, so the gadget carries two
// programs for it and attaches at most one (none with --loss=false); IG's
// per-program attach_to configuration disables the others:
//
//   - kprobe: a kprobe on tcp_send_loss_probe(), cheap, on kernels built
//     with CONFIG_KPROBES;
//   - timer: the timer:timer_expire_entry tracepoint, keeping only expiries of
//     a TCP socket's write timer whose pending event is the loss probe. It
//     works without kprobes, at the cost of a comparison on every timer
//     expiry of the system.
//
// An fentry program would be cheaper still, but some kernels refuse to load
// tracing programs, and ig loads every program of a gadget before attaching
// any: one such program would stop the whole gadget there.
package hook

import (
	"errors"
	"strconv"
	"strings"

	"trace_tcpretrans/go/contract"
)

// ParamKey is the parameter users set to choose the hook.
const ParamKey = contract.ParamLossHook

// Disabled is the attach_to value that makes IG skip a program.
const Disabled = "gadget_program_disabled"

// Mode is a way to see tail loss probes.
type Mode string

const (
	Auto   Mode = "auto"
	Kprobe Mode = "kprobe"
	Timer  Mode = "timer"
	// None attaches neither program: LOSS events are off (--loss=false).
	None Mode = "none"
)

// Modes lists the accepted values of the parameter, in the order shown to
// users (contract.LossHooks).
var Modes = []Mode{Auto, Kprobe, Timer}

// Kernel holds what the running kernel offers, as read from its symbols.
type Kernel struct {
	// Kprobes is true when the kernel was built with CONFIG_KPROBES.
	Kprobes bool
	// WriteTimer is true when the TCP write timer callback is a known symbol.
	WriteTimer bool
}

// Parse validates a parameter value.
func Parse(value string) (Mode, error) {
	v := strings.TrimSpace(strings.ToLower(value))
	if v == "" {
		return Auto, nil
	}
	for _, m := range Modes {
		if string(m) == v {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", errors.New("invalid value '" + value + "' for --" + ParamKey + ": allowed values are " + strings.Join(names, ", "))
}

// Choose resolves the requested mode against the kernel. Without LOSS
// events (loss false) no loss-probe program is needed, whatever the kernel.
func Choose(requested Mode, k Kernel, loss bool) (Mode, error) {
	if !loss {
		return None, nil
	}
	noTimer := errors.New("--" + ParamKey + "=timer: this kernel has no tcp_write_timer symbol in /proc/kallsyms; run with --loss=false to trace without LOSS events")
	switch requested {
	case Auto:
		if k.Kprobes {
			return Kprobe, nil
		}
		if !k.WriteTimer {
			return "", errors.New("this kernel has neither kprobes nor a tcp_write_timer symbol to see tail loss probes; run with --loss=false")
		}
		return Timer, nil
	case Kprobe:
		if !k.Kprobes {
			return "", errors.New("--" + ParamKey + "=kprobe: this kernel has no kprobes (built without CONFIG_KPROBES); use --" + ParamKey + "=timer or auto")
		}
		return Kprobe, nil
	case Timer:
		if !k.WriteTimer {
			return "", noTimer
		}
		return Timer, nil
	}
	return "", errors.New("unknown --" + ParamKey + " mode " + strconv.Quote(string(requested)))
}

// Config returns the IG configuration that disables the programs not chosen.
func Config(chosen Mode) map[string]string {
	cfg := map[string]string{}
	for mode, prog := range map[Mode]string{Kprobe: contract.ProgLossKprobe, Timer: contract.ProgLossTimer} {
		if mode != chosen {
			cfg["programs."+prog+".attach_to"] = Disabled
		}
	}
	return cfg
}
