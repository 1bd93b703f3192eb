// SPDX-License-Identifier: GPL-2.0
//
// The floor of the benchmark: empty programs on the hooks the gadget uses.
// Their run_time_ns / run_cnt is what the hook itself costs (entering and
// leaving a BPF program there), and their run_cnt counts how often each hook
// fired, i.e. how many events a tracer on it could have reported.
//
// Built by `make bench` with clang-19; no headers needed.

#define SEC(name) __attribute__((section(name), used))

SEC("tracepoint/tcp/tcp_retransmit_skb")
int floor_retrans(void *ctx)
{
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int floor_synack(void *ctx)
{
	return 0;
}

SEC("tracepoint/timer/timer_expire_entry")
int floor_timer(void *ctx)
{
	return 0;
}

// Attached only where the kernel has kprobes.
SEC("kprobe/tcp_send_loss_probe")
int floor_tlp(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
