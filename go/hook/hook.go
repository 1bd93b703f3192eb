// Package hook decides how trace_tcpretrans attaches to tcp_send_loss_probe.
//
// The tail-loss-probe function has no tracepoint, so the gadget carries two
// programs for it: an fentry program (BPF trampoline) and a kprobe program.
// Exactly one of them is attached; the other is disabled through IG's
// per-program attach_to configuration.
package hook

import (
	"fmt"
	"strings"
)

// ParamKey is the parameter users set to choose the hook.
const ParamKey = "loss-probe-hook"

// Program names in program.bpf.c.
const (
	FentryProgram = "ig_tlp_fentry"
	KprobeProgram = "ig_tlp_kprobe"
)

// Disabled is the attach_to value that makes IG skip a program.
const Disabled = "gadget_program_disabled"

// Mode is a way to hook tcp_send_loss_probe.
type Mode string

const (
	Auto   Mode = "auto"
	Fentry Mode = "fentry"
	Kprobe Mode = "kprobe"
)

// Modes lists the accepted values of the parameter, in the order shown to users.
var Modes = []Mode{Auto, Fentry, Kprobe}

// Kernel holds what the running kernel offers, as read from its symbols.
type Kernel struct {
	// Kprobes is true when the kernel was built with CONFIG_KPROBES.
	Kprobes bool
	// X86_64 is true on x86-64, where every kernel with BTF has BPF trampolines.
	X86_64 bool
}

// Symbols whose presence in /proc/kallsyms tells the facts above.
const (
	KprobeSymbol = "register_kprobe"
	X86Symbol    = "__x64_sys_getpid"
)

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
	return "", fmt.Errorf("invalid value %q for --%s: allowed values are %s",
		value, ParamKey, strings.Join(names, ", "))
}

// Choose resolves the requested mode against the kernel.
func Choose(requested Mode, k Kernel) (Mode, error) {
	switch requested {
	case Auto:
		// fentry costs less than a kprobe; prefer it where trampolines are
		// known to work, and use it as the only choice without kprobes.
		if k.X86_64 || !k.Kprobes {
			return Fentry, nil
		}
		return Kprobe, nil
	case Fentry:
		return Fentry, nil
	case Kprobe:
		if !k.Kprobes {
			return "", fmt.Errorf("--%s=kprobe: this kernel has no kprobes (built without CONFIG_KPROBES); use --%s=fentry or auto",
				ParamKey, ParamKey)
		}
		return Kprobe, nil
	}
	return "", fmt.Errorf("unknown --%s mode %q", ParamKey, requested)
}

// Config returns the IG configuration that disables the program not chosen.
func Config(chosen Mode) map[string]string {
	off := KprobeProgram
	if chosen == Kprobe {
		off = FentryProgram
	}
	return map[string]string{"programs." + off + ".attach_to": Disabled}
}
