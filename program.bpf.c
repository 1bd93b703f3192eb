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

// include/uapi/asm-generic/errno.h
#define ENOBUFS 105

// make bench also builds this file with BENCH_LEAVE_OUT set, each variant
// leaving out one step of an event, to measure what that step costs
// (bench/README.md). The image's objects leave out nothing.
#ifndef BENCH_LEAVE_OUT
#define BENCH_LEAVE_OUT 0
#endif
#define LEAVE_OUT_OWNER 1 // the lookup of the socket's owner
#define LEAVE_OUT_READS 2 // the reads of the socket and the segment
#define LEAVE_OUT_EVENT 4 // the ring buffer: nothing is reserved

// include/net/inet_connection_sock.h: the write timer's pending event.
#define ICSK_TIME_LOSS_PROBE 5

// What happened.
enum tcpretrans_type : __u8 {
	RETRANS = 0,
	LOSS = 1,
	SYNACK = 2,
	RETRANS_FAILED = 3,
};

// Why the kernel retransmitted (see reason_of() and ig_synack()).
enum tcpretrans_reason : __u8 {
	OTHER = 0,
	RTO = 1,
	FAST_RECOVERY = 2,
	TLP = 3,
	SYN_RTO = 4,
	SYNACK_RTO = 5,
	DUP_SYN = 6,
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

// One flow of the count mode (--count), the key of its map: a connection
// within a network namespace.
struct flow_key {
	gadget_netns_id netns_id;
	struct gadget_l4endpoint_t src;
	struct gadget_l4endpoint_t dst;
};

// What the count mode knows of a flow since the map was last fetched. The
// per-reason counters follow enum tcpretrans_reason's order. (ig formats
// enums by member name across data sources: the state has its own name.)
struct flow_counts {
	struct gadget_process proc;
	enum tcpretrans_state last_state_raw;
	__u32 retrans;
	__u32 segs;
	__u32 other;
	__u32 rto;
	__u32 fast_recovery;
	__u32 tlp;
	__u32 syn_rto;
	__u32 synack_rto;
	__u32 dup_syn;
	__u32 loss;
	__u32 failed;
};

// What the user asked for with --loss, --synack, --failed, --family,
// --count and --max-delay. The wasm operator validates those parameters and
// writes this single entry when the gadget starts (go/contract.Config has
// the same layout); until it has, nothing is emitted or counted.
struct config {
	__u8 ready;
	__u8 loss;
	__u8 synack;
	__u8 failed;
	__u32 family;
	__u32 count;
	// The longest an event may wait in the ring buffer for the reader to
	// be woken, in microseconds; 0 wakes the reader for every event.
	__u32 max_delay_us;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} tcpretrans_config SEC(".maps");

// The TCP write timer's callback, whose expiry marks a tail loss probe.
extern void tcp_write_timer __ksym __weak;

// CONFIG_HZ once it is known for sure, and the first (jiffies, ns) sample
// that measures it; see hz_get().
__u64 hz_known = 0;
__u64 hz_first_jiffies = 0;
__u64 hz_first_ns = 0;

// The ring buffer: 1 MiB, about 5,000 events, enough for the bursts of SYN
// retransmissions that timers fire together while ig, on a loaded host, has
// yet to read the previous ones.
#define EVENTS_SIZE (1024 * 1024)
GADGET_TRACER_MAP(events, EVENTS_SIZE);
GADGET_TRACER(tcpretrans, events, event);

// When the ring buffer's reader was last woken (bpf_ktime_get_boot_ns(), the
// clock of the events' timestamps), by submit_event() or ig_wakeup.
__u64 wakeup_last_ns = 0;

// The count mode's flows, fetched (and emptied) by ig every
// --map-fetch-interval and when the gadget stops. Entries are allocated
// only when the count mode runs.
#define MAX_FLOWS 8192
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_counts);
} tcpretrans_flows SEC(".maps");

GADGET_MAPITER(flows, tcpretrans_flows);

// Retransmissions the count mode could not count because the flow table
// was full; the wasm operator reports its growth.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tcpretrans_flows_dropped SEC(".maps");

// The value a new flow starts from.
static const struct flow_counts flow_counts_zero;

// Kernel differences, each checked by CO-RE rather than by version.

// Linux 6.17 gave tcp:tcp_retransmit_skb its own event class
// (include/trace/events/tcp.h), fired for every attempt with the transmit
// result as a third argument, err; the class's record type exists only
// since then, and its existence tells that the tp_btf program has that
// argument (only the type's name is checked, so only err is declared).
struct trace_event_raw_tcp_retransmit_skb___err {
	int err;
} __attribute__((preserve_access_index));

// Linux 6.19 moved the TCP write timer out of inet_connection_sock into
// struct sock (net-next commit 9a5e5334adc0): icsk_retransmit_timer is gone,
// sock.tcp_retransmit_timer (in a union with mptcp_retransmit_timer) is the
// timer tcp_write_timer() runs from.
struct sock___rtx_timer {
	struct timer_list tcp_retransmit_timer;
} __attribute__((preserve_access_index));

struct inet_connection_sock___icsk_timer {
	struct timer_list icsk_retransmit_timer;
} __attribute__((preserve_access_index));

// The addresses, ports and family of a connection, read from its socket
// (flow_from_sock): ports in host order; the IPv6 addresses only for an
// AF_INET6 socket, whose peer may be an IPv4-mapped one (flow_version).
struct flow {
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
	__u8 saddr[4];
	__u8 daddr[4];
	__u16 sport;
	__u16 dport;
	__u16 family;
};

// config_get returns the user's filters, or NULL before they are written.
static __always_inline const struct config *config_get(void)
{
	__u32 zero = 0;
	const struct config *cfg = bpf_map_lookup_elem(&tcpretrans_config, &zero);

	return cfg && cfg->ready ? cfg : NULL;
}

// The values CONFIG_HZ takes on the kernels users run.
#define HZ_CANDIDATES 4
static const __u64 hz_candidates[HZ_CANDIDATES] = { 100, 250, 300, 1000 };

// hz_from_uptime infers HZ from jiffies_64 = INITIAL_JIFFIES + uptime * HZ
// (INITIAL_JIFFIES = (u32)(-300 * HZ)). Around 300 s of uptime every
// candidate predicts the same jiffies, so it answers 0 unless the best
// candidate is clearly better than the others.
static __always_inline __u64 hz_from_uptime(__u64 j, __u64 ns)
{
	__u64 best = 0, best_diff = ~0ULL, second_diff = ~0ULL;

#pragma unroll
	for (int i = 0; i < HZ_CANDIDATES; i++) {
		__u64 hz = hz_candidates[i];
		__u64 expected = (__u64)(__u32)(-300 * (int)hz) +
				 ns / 1000000 * hz / 1000;
		__u64 diff = j > expected ? j - expected : expected - j;

		if (diff < best_diff) {
			second_diff = best_diff;
			best_diff = diff;
			best = hz;
		} else if (diff < second_diff) {
			second_diff = diff;
		}
	}
	// 8 s away from 300 s of uptime, the closest pair (250, 300) differs
	// by 400 jiffies.
	if (second_diff < 400 || second_diff < 8 * best_diff)
		return 0;
	return best;
}

// hz_from_rate measures HZ as jiffies per second between the first call and
// a call at least a second later; 0 until then.
static __always_inline __u64 hz_from_rate(__u64 j, __u64 ns)
{
	__u64 j0 = hz_first_jiffies, ns0 = hz_first_ns, rate;

	if (!ns0) {
		hz_first_jiffies = j;
		hz_first_ns = ns;
		return 0;
	}
	if (ns - ns0 < 1000000000ULL)
		return 0;
	rate = (j - j0) * 1000000000ULL / (ns - ns0);

#pragma unroll
	for (int i = 0; i < HZ_CANDIDATES; i++) {
		__u64 hz = hz_candidates[i];

		// Within 10%: the candidates are at least 16% apart.
		if (rate * 10 > hz * 9 && rate * 10 < hz * 11)
			return hz;
	}
	return 0;
}

// hz_get returns CONFIG_HZ, or 0 while it is not known for sure. Once known
// it is kept, so events pay for the inference only until then.
static __always_inline __u64 hz_get(void)
{
	__u64 j, ns, hz = hz_known;

	if (hz)
		return hz;
	j = bpf_jiffies64();
	ns = bpf_ktime_get_ns();
	hz = hz_from_uptime(j, ns);
	if (!hz)
		hz = hz_from_rate(j, ns);
	if (hz)
		hz_known = hz;
	return hz;
}

// Reads of kernel memory. The tp_btf programs get BTF pointers, from which
// the verifier lets them load directly (a load that faults gives 0, as a
// failed bpf_probe_read_kernel() does), several times cheaper than a helper
// call per field; the kprobe and tracepoint programs read with
// bpf_probe_read_kernel(). btf is a constant of each entry point, so each
// program keeps one kind of read.
#define READ(btf, p, field) ((btf) ? (p)->field : BPF_CORE_READ(p, field))
#define READ_BITFIELD(btf, p, field)                                           \
	((btf) ? BPF_CORE_READ_BITFIELD(p, field) :                            \
		 BPF_CORE_READ_BITFIELD_PROBED(p, field))

// tcp_sock_of is sk as a TCP socket. A BTF pointer to a struct sock allows
// loads within struct sock only: bpf_skc_to_tcp_sock() (Linux 5.9) gives the
// pointer to the whole tcp_sock.
static __always_inline const struct tcp_sock *tcp_sock_of(const struct sock *sk,
							  bool btf)
{
	if (btf)
		return bpf_skc_to_tcp_sock((void *)sk);
	return (const struct tcp_sock *)sk;
}

// flow_from_sock reads the addresses and ports of a socket (full or request)
// whose addresses are of family.
static __always_inline void flow_from_sock(struct flow *fl,
					   const struct sock_common *skc,
					   __u16 family, bool btf)
{
	__be32 saddr, daddr;

	fl->family = family;
	fl->sport = READ(btf, skc, skc_num);
	fl->dport = bpf_ntohs(READ(btf, skc, skc_dport));
	if (family == AF_INET6) {
		if (btf) {
			__builtin_memcpy(fl->saddr_v6,
					 skc->skc_v6_rcv_saddr.in6_u.u6_addr8,
					 16);
			__builtin_memcpy(fl->daddr_v6,
					 skc->skc_v6_daddr.in6_u.u6_addr8, 16);
		} else {
			BPF_CORE_READ_INTO(&fl->saddr_v6, skc,
					   skc_v6_rcv_saddr.in6_u.u6_addr8);
			BPF_CORE_READ_INTO(&fl->daddr_v6, skc,
					   skc_v6_daddr.in6_u.u6_addr8);
		}
	}
	saddr = READ(btf, skc, skc_rcv_saddr);
	daddr = READ(btf, skc, skc_daddr);
	__builtin_memcpy(fl->saddr, &saddr, 4);
	__builtin_memcpy(fl->daddr, &daddr, 4);
}

// flow_version gives the IP version users see: 4 for IPv4 and for IPv4-mapped
// IPv6 connections, 6 for IPv6, 0 for anything else.
static __always_inline int flow_version(const struct flow *fl)
{
	const __u32 *d = (const __u32 *)fl->daddr_v6;

	if (fl->family == AF_INET)
		return 4;
	if (fl->family != AF_INET6)
		return 0;
	if (d[0] == 0 && d[1] == 0 && d[2] == bpf_htonl(0x0000ffff))
		return 4;
	return 6;
}

// fill_endpoints copies a flow into src and dst (of an event or a flow key).
static __always_inline void fill_endpoints(struct gadget_l4endpoint_t *src,
					   struct gadget_l4endpoint_t *dst,
					   const struct flow *fl, int version)
{
	src->proto_raw = dst->proto_raw = IPPROTO_TCP;
	src->version = dst->version = version;
	src->port = fl->sport;
	dst->port = fl->dport;
	if (version == 6) {
		__builtin_memcpy(src->addr_raw.v6, fl->saddr_v6, 16);
		__builtin_memcpy(dst->addr_raw.v6, fl->daddr_v6, 16);
	} else {
		__builtin_memcpy(&src->addr_raw.v4, fl->saddr, 4);
		__builtin_memcpy(&dst->addr_raw.v4, fl->daddr, 4);
	}
}

// socket_owner finds the process that owns a TCP socket in IG's socket map.
static __always_inline struct gadget_socket_value *
socket_owner(__u32 netns, const struct flow *fl)
{
	struct gadget_socket_key key;

	// The padding is part of the hash key.
	__builtin_memset(&key, 0, sizeof(key));
	key.netns = netns;
	key.family = fl->family;
	key.proto = IPPROTO_TCP;
	key.port = fl->sport;
	return bpf_map_lookup_elem(&gadget_sockets, &key);
}

// fill_snapshot records the socket's congestion and loss-recovery state.
static __always_inline void fill_snapshot(struct event *event,
					  const struct tcp_sock *tp, bool btf)
{
	const struct inet_connection_sock *icsk = &tp->inet_conn;
	__u64 hz = hz_get();

	event->srtt = READ(btf, tp, srtt_us) >> 3;
	if (hz)
		event->rto = (__u64)READ(btf, icsk, icsk_rto) * 1000 / hz;
	event->backoff = READ(btf, icsk, icsk_backoff);
	event->cwnd = READ(btf, tp, snd_cwnd);
	event->ssthresh = READ(btf, tp, snd_ssthresh);
	event->packets_out = READ(btf, tp, packets_out);
	event->retrans_out = READ(btf, tp, retrans_out);
	event->lost_out = READ(btf, tp, lost_out);
	event->total_retrans = READ(btf, tp, total_retrans);
}

// skb_segs is the number of MSS-sized segments in skb (its GSO count), what
// the kernel adds to TcpRetransSegs when it retransmits skb.
static __always_inline __u16 skb_segs(const struct sk_buff *skb, bool btf)
{
	const struct tcp_skb_cb *tcb = (const void *)&skb->cb[0];

	return READ(btf, tcb, tcp_gso_segs);
}

// fill_segment copies sequence number, length, GSO count and flags of skb.
static __always_inline void fill_segment(struct event *event,
					 const struct sk_buff *skb, bool btf)
{
	// TCP builds the header on a clone, so the flags come from the
	// control block, not from a header in skb.
	const struct tcp_skb_cb *tcb = (const void *)&skb->cb[0];
	__u32 end_seq = READ(btf, tcb, end_seq);

	event->seq = READ(btf, tcb, seq);
	event->len = end_seq - event->seq;
	event->segs = skb_segs(skb, btf);
	// tcp_flags grew from __u8 to __u16 (room for AccECN's AE bit) after
	// 6.12 (a __u8 in Debian's 6.12.117, a __u16 in 7.2.13); the bitfield
	// read (probed or direct) relocates its size.
	event->tcpflags_raw = READ_BITFIELD(btf, tcb, tcp_flags);
	// SYN and FIN take one sequence number each but carry no data.
	if (event->tcpflags_raw & (SYN | FIN))
		event->len = event->len ? event->len - 1 : 0;
}

// reason_of derives why a retransmission happened from the socket's state.
static __always_inline enum tcpretrans_reason
reason_of(const struct tcp_sock *tp, __u8 state, bool btf)
{
	const struct inet_connection_sock *icsk = &tp->inet_conn;
	__u8 ca_state;

	if (state == SYN_SENT)
		return SYN_RTO;
	// A full socket in SYN_RECV retransmits its SYN-ACK from its own
	// timer after a simultaneous open. (A TCP Fast Open server's SYN-ACK
	// goes through inet_rtx_syn_ack(): a SYNACK event.)
	if (state == SYN_RECV)
		return SYNACK_RTO;

	// tcp_retransmit_timer() enters TCP_CA_Loss before retransmitting,
	// and loss recovery driven by ACKs (dupacks, SACK, RACK) runs in
	// TCP_CA_Recovery. icsk_ca_state became a bitfield in 5.x; the bitfield
	// read (probed or direct) covers both.
	ca_state = READ_BITFIELD(btf, icsk, icsk_ca_state);
	if (ca_state == TCP_CA_Loss)
		return RTO;
	if (ca_state == TCP_CA_Recovery)
		return FAST_RECOVERY;

	// tcp_write_timer_handler() leaves icsk_pending set to the loss
	// probe while tcp_send_loss_probe() runs.
	if (READ(btf, icsk, icsk_pending) == ICSK_TIME_LOSS_PROBE)
		return TLP;
	return OTHER;
}

// owner_filtered applies the family, process and container filters to a
// flow before any ring-buffer space is taken; *owner is the socket's owner.
static __always_inline bool owner_filtered(const struct config *cfg,
					   const struct sock *sk,
					   const struct flow *fl, int version,
					   __u32 *netns,
					   struct gadget_socket_value **owner,
					   bool btf)
{
	if (version == 0)
		return true;
	if (cfg->family != 0 && cfg->family != version)
		return true;
	*netns = btf ? sk->__sk_common.skc_net.net->ns.inum :
		       BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (!(BENCH_LEAVE_OUT & LEAVE_OUT_OWNER))
		*owner = socket_owner(*netns, fl);
	return gadget_should_discard_data_by_skb(*owner);
}

// reason_counter returns the counter of reason in a flow's counts.
static __always_inline __u32 *reason_counter(struct flow_counts *c,
					     enum tcpretrans_reason reason)
{
	switch (reason) {
	case RTO:
		return &c->rto;
	case FAST_RECOVERY:
		return &c->fast_recovery;
	case TLP:
		return &c->tlp;
	case SYN_RTO:
		return &c->syn_rto;
	case SYNACK_RTO:
		return &c->synack_rto;
	case DUP_SYN:
		return &c->dup_syn;
	default:
		return &c->other;
	}
}

// count_flow adds an event to its flow's counters instead of emitting it
// (the count mode). A flow that finds the table full is counted in
// tcpretrans_flows_dropped.
static __always_inline void count_flow(const struct flow *fl, int version,
				       __u32 netns,
				       const struct gadget_socket_value *owner,
				       enum tcpretrans_type type,
				       enum tcpretrans_reason reason,
				       __u8 state, __u32 segs)
{
	struct flow_counts *c;
	struct flow_key key;
	__u64 *dropped;
	__u32 zero = 0;

	// The padding is part of the hash key.
	__builtin_memset(&key, 0, sizeof(key));
	key.netns_id = netns;
	fill_endpoints(&key.src, &key.dst, fl, version);
	c = bpf_map_lookup_elem(&tcpretrans_flows, &key);
	if (!c) {
		// Another CPU may add the flow first (-EEXIST): either way it
		// is there after, unless the table is full (-E2BIG).
		bpf_map_update_elem(&tcpretrans_flows, &key, &flow_counts_zero,
				    BPF_NOEXIST);
		c = bpf_map_lookup_elem(&tcpretrans_flows, &key);
	}
	if (!c) {
		dropped = bpf_map_lookup_elem(&tcpretrans_flows_dropped, &zero);
		if (dropped)
			__sync_fetch_and_add(dropped, 1);
		return;
	}
	if (!c->proc.pid)
		gadget_process_populate_from_socket(owner, &c->proc);
	c->last_state_raw = state;
	if (type == LOSS) {
		__sync_fetch_and_add(&c->loss, 1);
		return;
	}
	if (type == RETRANS_FAILED) {
		__sync_fetch_and_add(&c->failed, 1);
		return;
	}
	__sync_fetch_and_add(&c->retrans, 1);
	__sync_fetch_and_add(&c->segs, segs);
	__sync_fetch_and_add(reason_counter(c, reason), 1);
}

// wake_reader wakes the ring buffer's reader without an event: a record
// reserved and discarded at once, which readers skip.
static __always_inline void wake_reader(void)
{
	void *rec = bpf_ringbuf_reserve(&events, 8, 0);

	if (rec)
		bpf_ringbuf_discard(rec, BPF_RB_FORCE_WAKEUP);
}

// since_wakeup returns how long ago, at now, the reader was last woken; 0
// when another CPU noted a wake-up later than now (an event's timestamp is
// taken at its reservation, a little before its submission).
static __always_inline __u64 since_wakeup(__u64 now)
{
	__u64 last = wakeup_last_ns;

	return now > last ? now - last : 0;
}

// wake_due tells whether the reader was last woken half of max_delay ago or
// earlier.
static __always_inline bool wake_due(const struct config *cfg, __u64 now)
{
	return since_wakeup(now) >= (__u64)cfg->max_delay_us * 500;
}

// How long the reader must have gone without a wake-up for an event to
// wake it at once: a quiet host's events are read as they come.
#define QUIET_NS (100 * 1000 * 1000ULL)

// How often, at most, a ring buffer a quarter full wakes the reader at once.
// A reader that falls behind in a storm is awake anyway, and a wake-up for
// every event would cost what batching saves; the other three quarters hold
// about four thousand events, more than a millisecond of any storm.
#define BACKLOG_WAKE_NS (1000 * 1000ULL)

// submit_event hands a filled event to the reader. An event that comes when
// the reader was not woken for QUIET_NS (on a quiet host, every event) wakes
// it at once, as does one that finds the ring buffer a quarter full (at most
// every BACKLOG_WAKE_NS). The others wait without the wake-up that would
// cost the retransmitting CPU an interrupt and the reader a context switch:
// ig_wakeup, which runs every half max_delay on every CPU, wakes the reader
// for them within max_delay. With max_delay 0 every event wakes the reader.
static __always_inline void submit_event(void *ctx, const struct config *cfg,
					 struct event *event)
{
	__u64 now, since;

	if (!cfg->max_delay_us ||
	    !bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_query)) {
		gadget_submit_buf(ctx, &events, event, sizeof(*event));
		return;
	}
	// The event's timestamp, taken at its reservation: one clock read
	// fewer per event.
	now = event->timestamp_raw;
	since = since_wakeup(now);
	if (since >= QUIET_NS ||
	    (since >= BACKLOG_WAKE_NS &&
	     bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= EVENTS_SIZE / 4)) {
		wakeup_last_ns = now;
		bpf_ringbuf_submit(event, BPF_RB_FORCE_WAKEUP);
		return;
	}
	bpf_ringbuf_submit(event, BPF_RB_NO_WAKEUP);
}

// reserve_event takes a zeroed event from the ring buffer and fills what
// every event has.
static __always_inline struct event *
reserve_event(enum tcpretrans_type type, const struct flow *fl, int version,
	      __u32 netns, const struct gadget_socket_value *owner)
{
	struct event *event;

	event = gadget_reserve_buf(&events, sizeof(*event));
	if (!event)
		return NULL;
	__builtin_memset(event, 0, sizeof(*event));
	event->timestamp_raw = bpf_ktime_get_boot_ns();
	event->type_raw = type;
	event->netns_id = netns;
	fill_endpoints(&event->src, &event->dst, fl, version);
	gadget_process_populate_from_socket(owner, &event->proc);
	return event;
}

// trace_sock emits a RETRANS, RETRANS_FAILED or LOSS event for a full
// socket; fl holds its addresses and state its TCP state.
static __always_inline int trace_sock(void *ctx, const struct config *cfg,
				      const struct sock *sk,
				      const struct flow *fl, __u8 state,
				      const struct sk_buff *skb, int err,
				      enum tcpretrans_type type, bool btf)
{
	struct gadget_socket_value *owner = NULL;
	const struct tcp_sock *tp;
	struct event *event;
	__u32 netns = 0;
	int version = flow_version(fl);

	if (owner_filtered(cfg, sk, fl, version, &netns, &owner, btf))
		return 0;
	tp = tcp_sock_of(sk, btf);
	if (!tp)
		return 0;
	if (cfg->count) {
		count_flow(fl, version, netns, owner, type,
			   type == LOSS ? TLP : reason_of(tp, state, btf), state,
			   skb ? skb_segs(skb, btf) : 0);
		return 0;
	}
	if (BENCH_LEAVE_OUT & LEAVE_OUT_EVENT)
		return 0;
	event = reserve_event(type, fl, version, netns, owner);
	if (!event)
		return 0;

	event->state_raw = state;
	// A positive err is a qdisc's NET_XMIT_DROP, which the socket layer
	// reports as ENOBUFS (net_xmit_errno()).
	event->error_raw = err > 0 ? ENOBUFS : -err;
	if (!(BENCH_LEAVE_OUT & LEAVE_OUT_READS)) {
		event->reason_raw = type == LOSS ? TLP : reason_of(tp, state, btf);
		fill_snapshot(event, tp, btf);
		if (skb)
			fill_segment(event, skb, btf);
	}

	submit_event(ctx, cfg, event);
	return 0;
}

// trace_loss_probe emits a LOSS event when tcp_send_loss_probe() is about to
// run on sk with a probe to send: tp->tlp_high_seq != 0 means a probe is
// already in flight and the kernel only re-arms its timer.
static __always_inline int trace_loss_probe(void *ctx, const struct config *cfg,
					    const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	struct flow fl = {};

	if (BPF_CORE_READ(tp, tlp_high_seq))
		return 0;
	flow_from_sock(&fl, &sk->__sk_common,
		       BPF_CORE_READ(sk, __sk_common.skc_family), false);
	return trace_sock(ctx, cfg, sk, &fl,
			  BPF_CORE_READ(sk, __sk_common.skc_state), NULL, 0,
			  LOSS, false);
}

// Both TCP programs are tp_btf programs, cheaper than tracepoint programs:
// the kernel builds no trace record for them.
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(ig_tcpretrans, const struct sock *sk, const struct sk_buff *skb)
{
	const struct config *cfg = config_get();
	struct flow fl = {};
	int err = 0;

	if (!cfg || !sk)
		return 0;
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___err)) {
		err = (int)ctx[2];
		if (err && !cfg->failed)
			return 0;
	}
	flow_from_sock(&fl, &sk->__sk_common, sk->__sk_common.skc_family,
		       true);
	return trace_sock(ctx, cfg, sk, &fl, sk->__sk_common.skc_state, skb,
			  err, err ? RETRANS_FAILED : RETRANS, true);
}

SEC("kprobe/tcp_send_loss_probe")
int BPF_KPROBE(ig_tlp_kprobe, struct sock *sk)
{
	const struct config *cfg = config_get();

	if (!cfg || !cfg->loss || !sk)
		return 0;
	return trace_loss_probe(ctx, cfg, sk);
}

// write_timer_offset is where the TCP write timer sits in a socket.
static __always_inline __u64 write_timer_offset(void)
{
	if (bpf_core_field_exists(struct sock___rtx_timer, tcp_retransmit_timer))
		return bpf_core_field_offset(struct sock___rtx_timer,
					     tcp_retransmit_timer);
	return bpf_core_field_offset(struct inet_connection_sock___icsk_timer,
				     icsk_retransmit_timer);
}

// The loss-probe timer fires: tcp_write_timer() is about to call
// tcp_send_loss_probe(). Used where kprobes are not available.
SEC("tracepoint/timer/timer_expire_entry")
int ig_tlp_timer(struct trace_event_raw_timer_expire_entry *ctx)
{
	const struct inet_connection_sock *icsk;
	const struct timer_list *timer;
	const struct config *cfg;

	// Every timer of the system passes here: compare first, read later.
	if (ctx->function != (void *)&tcp_write_timer || !&tcp_write_timer)
		return 0;
	cfg = config_get();
	if (!cfg || !cfg->loss)
		return 0;

	timer = ctx->timer;
	icsk = (const void *)timer - write_timer_offset();
	if (BPF_CORE_READ(icsk, icsk_pending) != ICSK_TIME_LOSS_PROBE)
		return 0;
	// A timer that expires before the socket's deadline is only re-armed.
	if ((long)(BPF_CORE_READ(timer, expires) - ctx->now) > 0)
		return 0;
	// A socket held by its process defers the probe to tcp_release_cb(),
	// which this tracepoint does not see; the probe is not sent now.
	if (BPF_CORE_READ(&icsk->icsk_inet.sk, sk_lock.owned))
		return 0;
	return trace_loss_probe(ctx, cfg, (const struct sock *)icsk);
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(ig_synack, const struct sock *sk, const struct request_sock *req)
{
	const struct config *cfg = config_get();
	struct gadget_socket_value *owner = NULL;
	struct event *event;
	enum tcpretrans_reason reason;
	struct flow fl = {};
	__u32 netns = 0;
	int version;
	__u8 state;

	if (!cfg || !cfg->synack)
		return 0;
	if (!sk || !req)
		return 0;

	// The request's addresses are of its operations' family: a dual-stack
	// listener's IPv4 request has the listener's family but no IPv6
	// addresses (nor does the tracepoint's record).
	flow_from_sock(&fl, &req->__req_common, req->rsk_ops->family, true);
	version = flow_version(&fl);
	// IG's socket map knows the listener, by its own family.
	fl.family = sk->__sk_common.skc_family;
	if (owner_filtered(cfg, sk, &fl, version, &netns, &owner, true))
		return 0;
	state = req->__req_common.skc_state;
	// reqsk_timer_handler() runs with the request's timer expired; when
	// tcp_check_req() answers a repeated SYN, the timer is still pending.
	reason = req->rsk_timer.entry.pprev ? DUP_SYN : SYNACK_RTO;
	// A SYN-ACK is one segment (tcp_rtx_synack() adds 1 to
	// TcpRetransSegs).
	if (cfg->count) {
		count_flow(&fl, version, netns, owner, SYNACK, reason, state, 1);
		return 0;
	}
	event = reserve_event(SYNACK, &fl, version, netns, owner);
	if (!event)
		return 0;

	event->state_raw = state;
	event->reason_raw = reason;
	event->tcpflags_raw = SYN | ACK;
	event->segs = 1;
	event->total_retrans = req->num_retrans;
	event->backoff = BPF_CORE_READ_BITFIELD(req, num_timeout);

	submit_event(ctx, cfg, event);
	return 0;
}

// Every half max_delay on every CPU (a software cpu-clock perf event, which
// fires on idle CPUs too; the wasm operator sets its frequency from
// --max-delay): wakes the reader when events wait in the ring buffer and its
// last wake-up is half of max_delay old or older. An event that waits, put
// in the ring buffer at t, is read by a wake-up at the first run on any CPU
// after both t and the last wake-up + half max_delay: within max_delay.
SEC("perf_event/wakeup")
int ig_wakeup(struct bpf_perf_event_data *ctx)
{
	const struct config *cfg = config_get();
	__u64 now;

	if (!cfg || !cfg->max_delay_us)
		return 0;
	now = bpf_ktime_get_boot_ns();
	if (!wake_due(cfg, now) || !bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA))
		return 0;
	wakeup_last_ns = now;
	wake_reader();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
