package hook

import (
	"strconv"

	"trace_tcpretrans/go/contract"
)

// UnusedDataSource names the data source a run does not fill: the flows
// without the count mode, the events with it. The wasm operator
// unreferences it so that ig neither prints nor forwards it.
func UnusedDataSource(count bool) string {
	if count {
		return contract.DataSource
	}
	return contract.FlowsDataSource
}

// Drops follows the count mode's counter of retransmissions that found the
// flow table full (contract.FlowsDroppedMap), which only grows.
type Drops struct {
	reported uint64
}

// Check takes the counter's value after a fetch of the flows and returns a
// warning for what was dropped since the last warning, or "".
func (d *Drops) Check(total uint64) string {
	if total <= d.reported {
		return ""
	}
	n := total - d.reported
	d.reported = total
	return "count mode: " + strconv.FormatUint(n, 10) + " retransmissions of new flows were not counted: the flow table (" +
		strconv.Itoa(contract.MaxFlows) + " flows) was full; print and empty it more often with --map-fetch-interval"
}
