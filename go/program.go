// The wasm operator of trace_tcpretrans: it validates the parameters,
// attaches one of the two tcp_send_loss_probe programs (none with
// --loss=false), and hands the event filters to the BPF programs. Its logic is in package hook, which is
// tested natively.
package main

import (
	api "github.com/inspektor-gadget/inspektor-gadget/wasmapi/go"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/go/hook"
)

// filters is validated in gadgetPreStart and written in gadgetStart, once
// the BPF map exists.
var filters contract.Config

//lint:ignore U1000 exported to ig by go:wasmexport
//go:wasmexport gadgetPreStart
func gadgetPreStart() int32 {
	values := map[string]string{}
	for _, p := range contract.Params {
		key := p.Key
		v, err := api.GetParamValue(key, 64)
		if err != nil {
			api.Errorf("reading --%s: %s", key, err)
			return 1
		}
		values[key] = v
	}
	var err error
	if filters, err = hook.ParseFilters(values); err != nil {
		api.Errorf("%s", err)
		return 1
	}
	requested, err := hook.Parse(values[hook.ParamKey])
	if err != nil {
		api.Errorf("%s", err)
		return 1
	}
	kernel := hook.Kernel{
		Kprobes:    api.KallsymsSymbolExists(contract.KprobeSymbol),
		WriteTimer: api.KallsymsSymbolExists(contract.WriteTimerSymbol),
	}
	chosen, err := hook.Choose(requested, kernel, filters.Loss == 1)
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

//lint:ignore U1000 exported to ig by go:wasmexport
//go:wasmexport gadgetStart
func gadgetStart() int32 {
	m, err := api.GetMap(contract.ConfigMap)
	if err != nil {
		api.Errorf("finding the BPF map %s: %s", contract.ConfigMap, err)
		return 1
	}
	if err := m.Put(uint32(0), filters.Bytes()); err != nil {
		api.Errorf("writing the filters (%s) to %s: %s", filters, contract.ConfigMap, err)
		return 1
	}
	api.Debugf("filters: %s", filters)
	return 0
}

func main() {}
