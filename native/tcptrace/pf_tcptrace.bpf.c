// SPDX-License-Identifier: GPL-2.0
/*
 * Per-ACK traces of the senders' TCP state, for any congestion control (the testbed's, see
 * py/policyforge/testbed/acktrace.py): a BTF tracepoint on tcp:tcp_probe, which the kernel hits
 * for every segment an established socket receives, so for every ACK a sender gets. Only
 * sockets in one network namespace (the experiment's sender side) whose remote port lies in
 * [port_lo, port_hi] (the iperf3 servers') are recorded: cwnd, ssthresh, srtt, the MSS, the
 * packets delivered so far and the last rate sample, and the congestion control's name. Records
 * go to a ring buffer that pf-tcptrace prints.
 *
 * Built at run time against this kernel's BTF (vmlinux.h from bpftool), like the cc template:
 *   clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I<dir with vmlinux.h> -c pf_tcptrace.bpf.c
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char _license[] SEC("license") = "GPL";

struct pf_ack {
	__u64 t_ns;
	__u64 delivered;
	__u32 cwnd, ssthresh, srtt_us, mss;
	__u32 rate_delivered, rate_interval_us;
	__u16 sport, dport;
	char ca[16];
};

/* [0] netns inode, [1] lowest remote port, [2] highest remote port: set by the loader */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} pf_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} pf_acks SEC(".maps");

static __always_inline __u64 pf_cfg(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&pf_config, &k);

	return v ? *v : 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(pf_on_probe, struct sock *sk, struct sk_buff *skb)
{
	struct tcp_sock *tp;
	__u16 dport = bpf_ntohs(sk->__sk_common.skc_dport);
	struct pf_ack *a;

	if (dport < pf_cfg(1) || dport > pf_cfg(2))
		return 0;
	if (sk->__sk_common.skc_net.net->ns.inum != pf_cfg(0))
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);     /* a typed pointer past struct sock, checked by the verifier */
	if (!tp)
		return 0;
	a = bpf_ringbuf_reserve(&pf_acks, sizeof(*a), 0);
	if (!a)
		return 0;
	a->t_ns = bpf_ktime_get_ns();
	a->delivered = tp->delivered;
	a->cwnd = tp->snd_cwnd;
	a->ssthresh = tp->snd_ssthresh;
	a->srtt_us = tp->srtt_us >> 3;
	a->mss = tp->mss_cache;
	a->rate_delivered = tp->rate_delivered;
	a->rate_interval_us = tp->rate_interval_us;
	a->sport = sk->__sk_common.skc_num;
	a->dport = dport;
	bpf_probe_read_kernel_str(a->ca, sizeof(a->ca), tp->inet_conn.icsk_ca_ops->name);
	bpf_ringbuf_submit(a, 0);
	return 0;
}
