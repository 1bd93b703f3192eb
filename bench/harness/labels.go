package main

import "strings"

var toolOrder = []string{"ours", "compare", "bcc", "bpftrace"}

var toolLabel = map[string]string{"floor": "floor (empty program)", "ours": "this gadget", "compare": "comparison image",
	"bcc": "BCC tcpretrans", "bpftrace": "bpftrace tcpretrans.bt", "ours-nodrain": "this gadget, ring buffer not read", "ours-batched": "this gadget, ring buffer read every 50 ms",
	"ours-metrics": "this gadget + metrics", "ours-count": "this gadget --count",
	"ours-wake-each": "this gadget, reader woken for every event (max-delay 0)", "ours-no-owner": "this gadget without the socket-owner lookup",
	"ours-no-reads": "this gadget without the socket and segment reads", "ours-no-event": "this gadget without the event (nothing reserved)",
	"obj-ours": "this gadget's object, without ig", "obj-ours-no-owner": "the object without the socket-owner lookup",
	"obj-ours-no-reads": "the object without the socket and segment reads", "obj-ours-no-event": "the object without the event (nothing reserved)",
	"obj-compare": "the comparison image's object, without ig"}

// costHooks are the hooks of the BPF cost tables, in their order.
var costHooks = []string{"retransmit_skb", "retransmit_synack", "tlp", "timer", "cpu_clock"}

func hookLabel(h string) string {
	switch h {
	case "retransmit_skb":
		return "tracepoint tcp_retransmit_skb"
	case "retransmit_synack":
		return "tracepoint tcp_retransmit_synack"
	case "tlp":
		return "kprobe tcp_send_loss_probe"
	case "timer":
		return "tracepoint timer_expire_entry"
	case "cpu_clock":
		return "perf_event cpu-clock, every CPU"
	case "":
		return "(other)"
	}
	return h
}

// typedHookLabel is hookLabel for a program of a type as bpftool names it:
// a kprobe on the function tcp_retransmit_skb (bpftrace) is not the
// tracepoint, and a BTF tracepoint (tp_btf, type "tracing") is on the same
// tracepoint as a classic one.
func typedHookLabel(typ, h string) string {
	switch {
	case h == "retransmit_skb" && typ == "kprobe":
		return "kprobe tcp_retransmit_skb"
	case typ == "tracing" && strings.HasPrefix(hookLabel(h), "tracepoint "):
		return hookLabel(h) + " (tp_btf)"
	}
	return hookLabel(h)
}

// progHookLabel names the hook with the tracer's program type, e.g. a
// kprobe on tcp_retransmit_skb (bpftrace) versus the tracepoint.
func progHookLabel(t ToolResult, h string) string {
	for _, w := range t.Windows {
		for _, p := range w.Tool {
			if p.Hook != h {
				continue
			}
			if h == "retransmit_skb" && p.Type == "kprobe" {
				return "kprobe tcp_retransmit_skb (floor: the tracepoint)"
			}
			return typedHookLabel(p.Type, h)
		}
	}
	return hookLabel(h)
}

func chartLabel(n string) string {
	return map[string]string{"floor": "floor", "ours": "this-gadget", "compare": "compare-image", "bcc": "BCC", "bpftrace": "bpftrace"}[n]
}

func levelNames(ls []Level) string {
	var s []string
	for _, l := range ls {
		s = append(s, "`"+l.Name+"`")
	}
	return strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return "`" + s + "`"
}

func goal(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// oneLine folds whitespace and cuts s to 300 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
