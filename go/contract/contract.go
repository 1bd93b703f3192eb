// Package contract is the one place where the names and layouts shared by
// the gadget's parts are defined: program.bpf.c and gadget.yaml on one side,
// the wasm operator (go/), the tests (test/) and the benchmark (bench/) on
// the other. Every name a Go file needs to find something in the BPF object
// or in ig's output comes from here; test/contract checks each of them
// against the built object's BTF and against gadget.yaml.
package contract

import "strconv"

// The gadget. Its image reference (registry, repository, tag) is the
// Makefile's (REGISTRY, GADGET = Name, VERSION): commands take it as a flag.
const (
	Name       = "trace_tcpretrans"
	DataSource = "tcpretrans" // gadget.yaml datasources key, GADGET_TRACER's name
	// FlowsDataSource is the count mode's (--count): GADGET_MAPITER's name.
	FlowsDataSource = "flows"
)

// Objects of program.bpf.c.
const (
	EventsMap    = "events"            // GADGET_TRACER_MAP ring buffer
	ConfigMap    = "tcpretrans_config" // array of one struct config
	EventStruct  = "event"
	ConfigStruct = "config"
	// The count mode's hash map of flows (struct flow_key to struct
	// flow_counts), its size, and the array of one counter of
	// retransmissions not counted because it was full.
	FlowsMap        = "tcpretrans_flows"
	FlowKeyStruct   = "flow_key"
	FlowCountStruct = "flow_counts"
	MaxFlows        = 8192
	FlowsDroppedMap = "tcpretrans_flows_dropped"
	// EventsSize is the ring buffer's size in bytes; a quarter of it
	// pending wakes the reader at once.
	EventsSize = 1024 * 1024
)

// BPF program names, as bpftool and ig's attach_to configuration show them.
const (
	ProgRetransmit = "ig_tcpretrans" // tp_btf tcp_retransmit_skb
	ProgLossKprobe = "ig_tlp_kprobe" // kprobe tcp_send_loss_probe
	ProgLossTimer  = "ig_tlp_timer"  // tracepoint timer:timer_expire_entry
	ProgSynack     = "ig_synack"     // tp_btf tcp_retransmit_synack
	ProgWakeup     = "ig_wakeup"     // perf_event: software cpu-clock on every CPU
	// WakeupSection is ig_wakeup's section; ig's configuration of the perf
	// event goes by its name (programs.wakeup.sampler.frequency).
	WakeupSection = "perf_event/wakeup"
)

// Programs lists every program of the object.
var Programs = []string{ProgRetransmit, ProgLossKprobe, ProgLossTimer, ProgSynack, ProgWakeup}

// Kernel symbols whose presence in /proc/kallsyms the gadget's parts test.
const (
	// KprobeSymbol exists when the kernel was built with CONFIG_KPROBES:
	// the one kprobe check of the wasm operator, the tests, the benchmark
	// and scripts/run.sh.
	KprobeSymbol = "register_kprobe"
	// WriteTimerSymbol is the TCP write timer's callback (ig_tlp_timer).
	WriteTimerSymbol = "tcp_write_timer"
)

// Parameter keys (gadget.yaml params.ebpf) and their defaults.
const (
	ParamLossHook = "loss-probe-hook"
	ParamLoss     = "loss"
	ParamSynack   = "synack"
	ParamFailed   = "failed"
	ParamFamily   = "family"
	ParamCount    = "count"
	ParamMaxDelay = "max-delay"
)

// The accepted --max-delay values, in microseconds: 0 (a wake-up per event)
// or between MinMaxDelayUs and MaxDelayLimitUs.
const (
	MinMaxDelayUs   = 1_000     // 1ms
	MaxDelayLimitUs = 1_000_000 // 1s
)

// WakeupHz is the frequency of ig_wakeup on each CPU for a --max-delay of
// maxDelayUs microseconds (not 0): two runs per max-delay.
func WakeupHz(maxDelayUs uint32) uint64 {
	return 2_000_000 / uint64(maxDelayUs)
}

// Param is one of the gadget's parameters.
type Param struct {
	Key     string
	Default string
}

// Params lists the parameters in gadget.yaml's order.
var Params = []Param{
	{ParamLossHook, "auto"},
	{ParamLoss, "true"},
	{ParamSynack, "true"},
	{ParamFailed, "false"},
	{ParamFamily, "0"},
	{ParamCount, "false"},
	{ParamMaxDelay, "5ms"},
}

// LossHooks are the accepted values of --loss-probe-hook, in the order
// shown to users; Families those of --family.
var (
	LossHooks = []string{"auto", "kprobe", "timer"}
	Families  = []string{"0", "4", "6"}
)

// EnumValue is one value of a C enum of program.bpf.c.
type EnumValue struct {
	Name  string
	Value uint64
}

// Enum is a C enum of program.bpf.c whose names ig prints in a column.
type Enum struct {
	CType  string // C enum name
	Field  string // struct event member, hidden; ig shows it without _raw
	Values []EnumValue
}

// The event's enums.
var (
	Type = Enum{"tcpretrans_type", "type_raw", []EnumValue{
		{"RETRANS", 0}, {"LOSS", 1}, {"SYNACK", 2}, {"RETRANS_FAILED", 3},
	}}
	Reason = Enum{"tcpretrans_reason", "reason_raw", []EnumValue{
		{"OTHER", 0}, {"RTO", 1}, {"FAST_RECOVERY", 2}, {"TLP", 3},
		{"SYN_RTO", 4}, {"SYNACK_RTO", 5}, {"DUP_SYN", 6},
	}}
	State = Enum{"tcpretrans_state", "state_raw", []EnumValue{
		{"ESTABLISHED", 1}, {"SYN_SENT", 2}, {"SYN_RECV", 3}, {"FIN_WAIT1", 4},
		{"FIN_WAIT2", 5}, {"TIME_WAIT", 6}, {"CLOSE", 7}, {"CLOSE_WAIT", 8},
		{"LAST_ACK", 9}, {"LISTEN", 10}, {"CLOSING", 11}, {"NEW_SYN_RECV", 12},
		{"BOUND_INACTIVE", 13},
	}}
	// TCPFlags is a bit set: ig joins the names of the bits set with "|".
	TCPFlags = Enum{"tcp_flags_set", "tcpflags_raw", []EnumValue{
		{"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04}, {"PSH", 0x08},
		{"ACK", 0x10}, {"URG", 0x20}, {"ECE", 0x40}, {"CWR", 0x80},
	}}
	Enums = []Enum{Type, Reason, State, TCPFlags}
)

// Names returns the enum's names in value order, as gadget.yaml's
// value.one-of lists them.
func (e Enum) Names() []string {
	n := make([]string, len(e.Values))
	for i, v := range e.Values {
		n[i] = v.Name
	}
	return n
}

// Name returns the name of value v, or "UNKNOWN".
func (e Enum) Name(v uint64) string {
	for _, ev := range e.Values {
		if ev.Value == v {
			return ev.Name
		}
	}
	return "UNKNOWN"
}

// Config is the only entry of ConfigMap, laid out as program.bpf.c's
// struct config. The wasm operator writes Bytes() when the gadget starts;
// until then the programs emit nothing.
type Config struct {
	Ready  uint8 // 1 once written
	Loss   uint8 // LOSS events of tail loss probes
	Synack uint8 // SYNACK events of listeners
	Failed uint8 // RETRANS_FAILED events (Linux 6.17 and later)
	Family uint32
	Count  uint32 // 1: count per flow (tcpretrans_flows) instead of emitting events
	// MaxDelayUs is --max-delay in microseconds: how long an event may
	// wait for the reader's wake-up; 0 wakes the reader for every event.
	MaxDelayUs uint32
}

// DefaultConfig is what the parameters' defaults give.
func DefaultConfig() Config {
	return Config{Ready: 1, Loss: 1, Synack: 1, MaxDelayUs: 5000}
}

// Members returns the values by struct config's member names: the
// encoding of objects whose layout differs from Config (an older image
// compared in the benchmark) goes by name and the object's BTF.
func (c Config) Members() map[string]uint64 {
	return map[string]uint64{
		"ready": uint64(c.Ready), "loss": uint64(c.Loss), "synack": uint64(c.Synack),
		"failed": uint64(c.Failed), "family": uint64(c.Family), "count": uint64(c.Count),
		"max_delay_us": uint64(c.MaxDelayUs),
	}
}

// Bytes encodes the entry as the kernel reads it: in little-endian order,
// the order of every architecture ig supports (amd64, arm64) and of wasm.
// It is written field by field so that the wasm module needs neither
// encoding/binary nor reflect.
func (c Config) Bytes() []byte {
	b := []byte{c.Ready, c.Loss, c.Synack, c.Failed}
	for _, v := range []uint32{c.Family, c.Count, c.MaxDelayUs} {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return b
}

// ArrayKey is the key of the one entry of ConfigMap and of
// FlowsDroppedMap (a __u32 0), as the kernel reads it.
func ArrayKey() []byte { return []byte{0, 0, 0, 0} }

// Counter decodes a __u64 read from a BPF map (little-endian, as Bytes).
func Counter(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// String describes the entry for logs.
func (c Config) String() string {
	flag := func(v uint8) string { return strconv.FormatBool(v == 1) }
	return "loss=" + flag(c.Loss) + " synack=" + flag(c.Synack) + " failed=" + flag(c.Failed) +
		" family=" + strconv.FormatUint(uint64(c.Family), 10) + " count=" + strconv.FormatBool(c.Count == 1) +
		" max-delay=" + strconv.FormatUint(uint64(c.MaxDelayUs), 10) + "us"
}
