// SPDX-License-Identifier: GPL-2.0
//
// trace_tcpretrans: TCP retransmissions, tail loss probes and SYN-ACK
// retransmissions, with the owning process, the cause of each
// retransmission and a snapshot of the socket's loss-recovery state.
//
// Copyright 2026 The trace_tcpretrans authors

#include <vmlinux.h>

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/filter.h>

#define GADGET_TYPE_TRACING
#include <gadget/sockets-map.h>

#define AF_INET 2
#define AF_INET6 10

// include/net/inet_connection_sock.h: the write timer's pending event.
#define ICSK_TIME_LOSS_PROBE 5

// What happened.
enum tcpretrans_type : __u8 {
	RETRANS = 0,
	LOSS = 1,
	SYNACK = 2,
	RETRANS_FAILED = 3,
};

// Why the kernel retransmitted (see reason_of()).
enum tcpretrans_reason : __u8 {
	OTHER = 0,
	RTO = 1,
	FAST_RECOVERY = 2,
	TLP = 3,
	SYN_RTO = 4,
	SYNACK_RTO = 5,
};

// Socket states, numbered as in include/net/tcp_states.h.
enum tcpretrans_state : __u8 {
	ESTABLISHED = 1,
	SYN_SENT = 2,
	SYN_RECV = 3,
	FIN_WAIT1 = 4,
	FIN_WAIT2 = 5,
	TIME_WAIT = 6,
	CLOSE = 7,
	CLOSE_WAIT = 8,
	LAST_ACK = 9,
	LISTEN = 10,
	CLOSING = 11,
	NEW_SYN_RECV = 12,
	BOUND_INACTIVE = 13,
};

// TCP header flags; the name ends in _set so that IG prints them joined by |.
enum tcp_flags_set : __u8 {
	FIN = 0x01,
	SYN = 0x02,
	RST = 0x04,
	PSH = 0x08,
	ACK = 0x10,
	URG = 0x20,
	ECE = 0x40,
	CWR = 0x80,
};

struct event {
	// Visible fields in the order of the guide's columns; ig appends the
	// formatted timestamp last.
	gadget_timestamp timestamp_raw;
	gadget_netns_id netns_id;

	struct gadget_l4endpoint_t src;
	struct gadget_l4endpoint_t dst;

	struct gadget_process proc;

	enum tcpretrans_state state_raw;
	enum tcpretrans_reason reason_raw;
	enum tcp_flags_set tcpflags_raw;
	enum tcpretrans_type type_raw;
	gadget_errno error_raw;

	__u32 seq;
	__u32 len;
	__u16 segs;
	__u8 backoff;
	__u32 srtt;
	__u32 rto;
	__u32 cwnd;
	__u32 ssthresh;
	__u32 packets_out;
	__u32 retrans_out;
	__u32 lost_out;
	__u32 total_retrans;
};

// What the user asked for with --loss, --synack, --failed and --family. The
// wasm operator validates those parameters and writes this single entry when
// the gadget starts (go/hook.Filters has the same layout); until it has, no
// event is emitted.
struct config {
	__u8 ready;
	__u8 loss;
	__u8 synack;
	__u8 failed;
	__u32 family;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} tcpretrans_config SEC(".maps");

// The TCP write timer's callback, whose expiry marks a tail loss probe.
extern void tcp_write_timer __ksym __weak;

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER(tcpretrans, events, event);

// Layout of tcp:tcp_retransmit_skb from Linux 6.17 on: its own event class,
// fired for every attempt with the transmit result in err.
struct trace_event_raw_tcp_retransmit_skb___err {
	const void *skbaddr;
	const void *skaddr;
	int err;
} __attribute__((preserve_access_index));

// Layout of tcp:tcp_retransmit_skb before 6.17, shared with other events.
struct trace_event_raw_tcp_event_sk_skb___old {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

// config_get returns the user's filters, or NULL before they are written.
static __always_inline const struct config *config_get(void)
{
	__u32 zero = 0;
	const struct config *cfg = bpf_map_lookup_elem(&tcpretrans_config, &zero);

	return cfg && cfg->ready ? cfg : NULL;
}

// hz_guess infers CONFIG_HZ from jiffies_64 = INITIAL_JIFFIES + uptime * HZ.
static __always_inline __u64 hz_guess(void)
{
	const __u64 candidates[] = { 100, 250, 300, 1000 };
	__u64 j = bpf_jiffies64();
	__u64 ns = bpf_ktime_get_ns();
	__u64 best = 1000, best_diff = ~0ULL;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u64 hz = candidates[i];
		__u64 expected = (__u64)(__u32)(-300 * (int)hz) +
				 ns / 1000000 * hz / 1000;
		__u64 diff = j > expected ? j - expected : expected - j;

		if (diff < best_diff) {
			best_diff = diff;
			best = hz;
		}
	}
	return best;
}

// endpoint_is_v4mapped tells whether an IPv6 address is ::ffff:a.b.c.d.
static __always_inline bool endpoint_is_v4mapped(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

// fill_endpoints copies addresses and ports of a socket (full or request).
static __always_inline int fill_endpoints(struct event *event,
					  const struct sock_common *skc)
{
	__u16 family = BPF_CORE_READ(skc, skc_family);

	event->src.proto_raw = event->dst.proto_raw = IPPROTO_TCP;
	event->src.port = BPF_CORE_READ(skc, skc_num);
	event->dst.port = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));

	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&event->src.addr_raw.v6, skc,
				   skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&event->dst.addr_raw.v6, skc,
				   skc_v6_daddr.in6_u.u6_addr8);
		if (!endpoint_is_v4mapped(event->dst.addr_raw.v6)) {
			event->src.version = event->dst.version = 6;
			return 6;
		}
		event->src.addr_raw.v6_raw = 0;
		event->dst.addr_raw.v6_raw = 0;
	} else if (family != AF_INET) {
		return 0;
	}

	event->src.version = event->dst.version = 4;
	event->src.addr_raw.v4 = BPF_CORE_READ(skc, skc_rcv_saddr);
	event->dst.addr_raw.v4 = BPF_CORE_READ(skc, skc_daddr);
	return 4;
}

// fill_snapshot records the socket's congestion and loss-recovery state.
static __always_inline void fill_snapshot(struct event *event,
					  const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	const struct inet_connection_sock *icsk =
		(const struct inet_connection_sock *)sk;

	event->srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	event->rto = (__u64)BPF_CORE_READ(icsk, icsk_rto) * 1000 / hz_guess();
	event->backoff = BPF_CORE_READ(icsk, icsk_backoff);
	event->cwnd = BPF_CORE_READ(tp, snd_cwnd);
	event->ssthresh = BPF_CORE_READ(tp, snd_ssthresh);
	event->packets_out = BPF_CORE_READ(tp, packets_out);
	event->retrans_out = BPF_CORE_READ(tp, retrans_out);
	event->lost_out = BPF_CORE_READ(tp, lost_out);
	event->total_retrans = BPF_CORE_READ(tp, total_retrans);
}

// fill_segment copies sequence number, length, GSO count and flags of skb.
static __always_inline void fill_segment(struct event *event,
					 const struct sk_buff *skb)
{
	// TCP builds the header on a clone, so the flags come from the
	// control block, not from a header in skb.
	const struct tcp_skb_cb *tcb = (const void *)&skb->cb[0];
	__u32 end_seq = BPF_CORE_READ(tcb, end_seq);

	event->seq = BPF_CORE_READ(tcb, seq);
	event->len = end_seq - event->seq;
	event->segs = BPF_CORE_READ(tcb, tcp_gso_segs);
	// tcp_flags grew from __u8 to __u16 in 6.x kernels; the probed read
	// relocates its size.
	event->tcpflags_raw = BPF_CORE_READ_BITFIELD_PROBED(tcb, tcp_flags);
	// SYN and FIN take one sequence number each but carry no data.
	if (event->tcpflags_raw & (SYN | FIN))
		event->len = event->len ? event->len - 1 : 0;
}

// reason_of derives why a retransmission happened from the socket's state.
static __always_inline enum tcpretrans_reason reason_of(const struct sock *sk,
						 __u8 state)
{
	const struct inet_connection_sock *icsk =
		(const struct inet_connection_sock *)sk;
	__u8 ca_state;

	if (state == SYN_SENT)
		return SYN_RTO;
	if (state == SYN_RECV)
		return SYNACK_RTO;

	// tcp_retransmit_timer() enters TCP_CA_Loss before retransmitting,
	// and loss recovery driven by ACKs (dupacks, SACK, RACK) runs in
	// TCP_CA_Recovery.
	ca_state = BPF_CORE_READ_BITFIELD_PROBED(icsk, icsk_ca_state);
	if (ca_state == TCP_CA_Loss)
		return RTO;
	if (ca_state == TCP_CA_Recovery)
		return FAST_RECOVERY;

	// tcp_write_timer_handler() leaves icsk_pending set to the loss
	// probe while tcp_send_loss_probe() runs.
	if (BPF_CORE_READ(icsk, icsk_pending) == ICSK_TIME_LOSS_PROBE)
		return TLP;
	return OTHER;
}

// should_discard applies family and process/container filters.
static __always_inline bool should_discard(struct event *event,
					   const struct sock *sk, int version,
					   const struct config *cfg)
{
	struct gadget_socket_value *owner;

	if (version == 0)
		return true;
	if (cfg->family != 0 && cfg->family != version)
		return true;

	event->netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	owner = gadget_socket_lookup(sk, event->netns_id);
	if (gadget_should_discard_data_by_skb(owner))
		return true;
	gadget_process_populate_from_socket(owner, &event->proc);
	return false;
}

// reserve_event takes a zeroed event from the ring buffer.
static __always_inline struct event *reserve_event(enum tcpretrans_type type)
{
	struct event *event;

	event = gadget_reserve_buf(&events, sizeof(*event));
	if (!event)
		return NULL;
	__builtin_memset(event, 0, sizeof(*event));
	event->timestamp_raw = bpf_ktime_get_boot_ns();
	event->type_raw = type;
	return event;
}

// trace_sock emits a RETRANS, RETRANS_FAILED or LOSS event for a full socket.
static __always_inline int trace_sock(void *ctx, const struct sock *sk,
				      const struct sk_buff *skb, int err,
				      enum tcpretrans_type type)
{
	const struct config *cfg = config_get();
	struct event *event;
	int version;

	if (!cfg || (type == LOSS && !cfg->loss) ||
	    (type == RETRANS_FAILED && !cfg->failed))
		return 0;
	if (!sk || BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	event = reserve_event(type);
	if (!event)
		return 0;

	version = fill_endpoints(event, &sk->__sk_common);
	if (should_discard(event, sk, version, cfg))
		goto discard;

	event->state_raw = BPF_CORE_READ(sk, __sk_common.skc_state);
	event->error_raw = -err;
	event->reason_raw = type == LOSS ? TLP : reason_of(sk, event->state_raw);
	fill_snapshot(event, sk);
	if (skb)
		fill_segment(event, skb);

	gadget_submit_buf(ctx, &events, event, sizeof(*event));
	return 0;

discard:
	gadget_discard_buf(event);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int ig_tcpretrans(void *ctx)
{
	const struct sk_buff *skb;
	const struct sock *sk;
	int err = 0;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___err)) {
		struct trace_event_raw_tcp_retransmit_skb___err *args = ctx;

		skb = BPF_CORE_READ(args, skbaddr);
		sk = BPF_CORE_READ(args, skaddr);
		err = BPF_CORE_READ(args, err);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___old *args = ctx;

		skb = BPF_CORE_READ(args, skbaddr);
		sk = BPF_CORE_READ(args, skaddr);
	}

	return trace_sock(ctx, sk, skb, err, err ? RETRANS_FAILED : RETRANS);
}

SEC("kprobe/tcp_send_loss_probe")
int BPF_KPROBE(ig_tlp_kprobe, struct sock *sk)
{
	return trace_sock(ctx, sk, NULL, 0, LOSS);
}

// The loss-probe timer fires: tcp_write_timer() is about to call
// tcp_send_loss_probe(). Used where kprobes are not available.
SEC("tracepoint/timer/timer_expire_entry")
int ig_tlp_timer(struct trace_event_raw_timer_expire_entry *ctx)
{
	const struct inet_connection_sock *icsk;
	const struct timer_list *timer;

	// Every timer of the system passes here: compare first, read later.
	if (ctx->function != (void *)&tcp_write_timer || !&tcp_write_timer)
		return 0;

	timer = ctx->timer;
	icsk = (const void *)timer -
	       bpf_core_field_offset(struct inet_connection_sock,
				     icsk_retransmit_timer);
	if (BPF_CORE_READ(icsk, icsk_pending) != ICSK_TIME_LOSS_PROBE)
		return 0;
	// A timer that expires before the socket's deadline is only re-armed.
	if ((long)(BPF_CORE_READ(timer, expires) - ctx->now) > 0)
		return 0;
	return trace_sock(ctx, (const struct sock *)icsk, NULL, 0, LOSS);
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int ig_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	const struct sock *sk = BPF_CORE_READ(ctx, skaddr);
	const struct request_sock *req = BPF_CORE_READ(ctx, req);
	const struct config *cfg = config_get();
	struct event *event;
	int version;

	if (!cfg || !cfg->synack || !sk || !req)
		return 0;

	event = reserve_event(SYNACK);
	if (!event)
		return 0;

	version = fill_endpoints(event, &req->__req_common);
	if (should_discard(event, sk, version, cfg))
		goto discard;

	event->state_raw = BPF_CORE_READ(req, __req_common.skc_state);
	event->tcpflags_raw = SYN | ACK;
	event->reason_raw = SYNACK_RTO;
	event->total_retrans = BPF_CORE_READ(req, num_retrans);
	event->backoff = BPF_CORE_READ_BITFIELD_PROBED(req, num_timeout);

	gadget_submit_buf(ctx, &events, event, sizeof(*event));
	return 0;

discard:
	gadget_discard_buf(event);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
