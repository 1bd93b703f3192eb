// The wasm operator of trace_tcpretrans: it validates --loss-probe-hook and
// attaches exactly one of the two tcp_send_loss_probe programs. Its logic is
// in package hook, which is tested natively.
package main

import (
	api "github.com/inspektor-gadget/inspektor-gadget/wasmapi/go"

	"trace_tcpretrans/go/hook"
)

//go:wasmexport gadgetPreStart
func gadgetPreStart() int32 {
	value, err := api.GetParamValue(hook.ParamKey, 64)
	if err != nil {
		api.Errorf("reading --%s: %s", hook.ParamKey, err)
		return 1
	}
	requested, err := hook.Parse(value)
	if err != nil {
		api.Errorf("%s", err)
		return 1
	}
	kernel := hook.Kernel{
		Kprobes:    api.KallsymsSymbolExists(hook.KprobeSymbol),
		WriteTimer: api.KallsymsSymbolExists(hook.WriteTimerSymbol),
	}
	chosen, err := hook.Choose(requested, kernel)
	if err != nil {
		api.Errorf("%s", err)
		return 1
	}
	for key, val := range hook.Config(chosen) {
		if err := api.SetConfig(key, val); err != nil {
			api.Errorf("setting %s: %s", key, err)
			return 1
		}
	}
	api.Debugf("tcp_send_loss_probe hooked with %s (requested %s)", chosen, requested)
	return 0
}

func main() {}
