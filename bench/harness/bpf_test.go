package main

import (
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
)

func TestProgramsToSkip(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"retrans": {SectionName: "tracepoint/tcp/tcp_retransmit_skb"},
		"timer":   {SectionName: "tracepoint/timer/timer_expire_entry"},
		"tlp":     {SectionName: "kprobe/tcp_send_loss_probe"},
		"other":   {SectionName: "fentry/tcp_sendmsg"},
	}}
	cases := []struct {
		name           string
		kprobes, floor bool
		skip           []string
	}{
		{"kprobes: the kprobe, not the timer", true, false, []string{"other", "timer"}},
		{"no kprobes: the timer", false, false, []string{"other", "tlp"}},
		{"the floor measures every hook", true, true, []string{"other"}},
		{"the floor without kprobes", false, true, []string{"other", "tlp"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			skip, why := programsToSkip(spec, c.kprobes, c.floor)
			slices.Sort(skip)
			assert.Equal(t, c.skip, skip)
			assert.Len(t, why, len(skip), "a reason for each")
		})
	}
}
