//go:build wasip1

// The wasm operator of trace_tcpretrans: it validates the parameters,
// attaches one of the two tcp_send_loss_probe programs (none with
// --loss=false), sets how often ig_wakeup runs (--max-delay), hands the
// filters to the BPF programs, keeps only the data
// source of the chosen mode (events, or flows with --count) and reports
// flows the count mode could not count. Its logic is in package hook, which
// is tested natively.
package main

import (
	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/go/hook"
	api "trace_tcpretrans/go/igwasm"
)

// filters is validated in gadgetPreStart and written in gadgetStart, once
// the BPF map exists.
var filters contract.Config

// dropped is the count mode's counter of retransmissions that found the
// flow table full; drops remembers how much of it was reported.
var (
	dropped api.Map
	drops   hook.Drops
)

//lint:ignore U1000 exported to ig by go:wasmexport
//go:wasmexport gadgetPreStart
func gadgetPreStart() int32 {
	values := map[string]string{}
	for _, p := range contract.Params {
		key := p.Key
		v, err := api.Param(key, 64)
		if err != nil {
			api.Error("reading --" + key + ": " + err.Error())
			return 1
		}
		values[key] = v
	}
	var err error
	if filters, err = hook.ParseFilters(values); err != nil {
		api.Error(err.Error())
		return 1
	}
	requested, err := hook.Parse(values[hook.ParamKey])
	if err != nil {
		api.Error(err.Error())
		return 1
	}
	kernel := hook.Kernel{
		Kprobes:    api.SymbolExists(contract.KprobeSymbol),
		WriteTimer: api.SymbolExists(contract.WriteTimerSymbol),
	}
	chosen, err := hook.Choose(requested, kernel, filters.Loss == 1)
	if err != nil {
		api.Error(err.Error())
		return 1
	}
	for _, cfg := range []map[string]string{hook.Config(chosen), hook.WakeupConfig(filters)} {
		for key, val := range cfg {
			if err := api.SetConfig(key, val); err != nil {
				api.Error("setting " + key + " to " + val + ": " + err.Error())
				return 1
			}
		}
	}
	api.Debug("tcp_send_loss_probe hooked with " + string(chosen) + " (requested " + string(requested) + ")")
	return selectDataSource(filters.Count == 1)
}

// selectDataSource unreferences the data source this mode leaves empty, so
// that ig does not print it, and in the count mode checks the dropped
// counter after each fetch of flows. (A daemon has chosen which data
// sources to forward to kubectl gadget before gadgetPreStart: there the
// flows data source of an event run stays empty until the run stops;
// gadget.yaml's map-fetch-interval of 0 keeps it so.)
func selectDataSource(count bool) int32 {
	unused := hook.UnusedDataSource(count)
	ds, err := api.GetDataSource(unused)
	if err != nil {
		api.Error("finding the data source " + unused + ": " + err.Error())
		return 1
	}
	if err := ds.Unreference(); err != nil {
		api.Error("disabling the data source " + unused + ": " + err.Error())
		return 1
	}
	if !count {
		return 0
	}
	flows, err := api.GetDataSource(contract.FlowsDataSource)
	if err != nil {
		api.Error("finding the data source " + contract.FlowsDataSource + ": " + err.Error())
		return 1
	}
	err = flows.SubscribeArray(func() {
		value := make([]byte, 8)
		if err := dropped.Lookup(contract.ArrayKey(), value); err != nil {
			api.Warn("reading " + contract.FlowsDroppedMap + ": " + err.Error())
			return
		}
		if msg := drops.Check(contract.Counter(value)); msg != "" {
			api.Warn(msg)
		}
	}, 0)
	if err != nil {
		api.Error("subscribing to " + contract.FlowsDataSource + ": " + err.Error())
		return 1
	}
	return 0
}

//lint:ignore U1000 exported to ig by go:wasmexport
//go:wasmexport gadgetStart
func gadgetStart() int32 {
	m, err := api.GetMap(contract.ConfigMap)
	if err != nil {
		api.Error("finding the BPF map " + contract.ConfigMap + ": " + err.Error())
		return 1
	}
	if err := m.Update(contract.ArrayKey(), filters.Bytes()); err != nil {
		api.Error("writing the filters (" + filters.String() + ") to " + contract.ConfigMap + ": " + err.Error())
		return 1
	}
	if dropped, err = api.GetMap(contract.FlowsDroppedMap); err != nil {
		api.Error("finding the BPF map " + contract.FlowsDroppedMap + ": " + err.Error())
		return 1
	}
	api.Debug("filters: " + filters.String())
	return 0
}

func main() {}
