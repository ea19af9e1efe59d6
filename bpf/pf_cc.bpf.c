// SPDX-License-Identifier: GPL-2.0
/*
 * A policyforge congestion control as a BPF struct_ops tcp_congestion_ops.
 *
 * The kernel calls cong_control on every ACK with a rate sample. This template folds the
 * ACK into a per-connection history (10 windows of about one RTT, in sk_storage: the
 * 104-byte icsk_ca_priv is too small), fills struct pf_cc_state, asks the generated
 * policy_cong_control() for the next cwnd, clamps it to [2, cwnd_clamp] and sets it; then
 * ssthresh and the pacing rate, from the policy's optional policy_ssthresh() and
 * policy_pacing_rate() when it defines them (policyforge defines PF_HAS_SSTHRESH and
 * PF_HAS_PACING above the policy, with their declarations), else by the template's rules.
 * The ssthresh and undo_cwnd hooks are fixed and Reno-like. The BPF verifier checks all of it.
 *
 * Build: clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I<dir with vmlinux.h> \
 *          -DPF_CC_NAME='"pf_x"' -DPF_OPS=pf_x_ops -DPF_CC_ARGS4 -c pf_cc.bpf.c
 * PF_CC_ARGS4: the kernel's cong_control takes (sk, ack, flag, rs) (>= 6.10) instead of (sk, rs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "pf_cc_policy.h"

#ifndef PF_CC_NAME
#define PF_CC_NAME "pf_cc"
#endif
#ifndef PF_OPS
#define PF_OPS pf_cc_ops
#endif

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pf_cc_store);
} pf_store SEC(".maps");

/* PF_POLICY_HOLE */

static __always_inline void pf_cong_control(struct sock *sk, const struct rate_sample *rs)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct inet_connection_sock *icsk = (struct inet_connection_sock *)sk;
	struct pf_cc_store *st;
	struct pf_cc_state s = {};
	s64 next, ssth = 0, pace = 0;

	st = bpf_sk_storage_get(&pf_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return;
	pf_fill_state(st, &s, tp, tp->snd_cwnd, icsk->icsk_ca_state, rs);

	next = policy_cong_control(&s, &st->h);
	if (next < 2)
		next = 2;
	if (next > s.cwnd_clamp)
		next = s.cwnd_clamp;
#ifdef PF_HAS_SSTHRESH
	ssth = policy_ssthresh(&s, &st->h);
#endif
#ifdef PF_HAS_PACING
	pace = policy_pacing_rate(&s, &st->h);
#endif
	if (s.new_loss)
		st->reduced = 1;
	/* ssthresh: the policy's when it gives one (> 0, clamped like cwnd), on any ACK; else the
	 * new cwnd on the first lossy ACK of a recovery episode */
	if (ssth > 0)
		tp->snd_ssthresh = ssth < 2 ? 2 : ssth > s.cwnd_clamp ? s.cwnd_clamp : ssth;
	else if (s.new_loss)
		tp->snd_ssthresh = next;
	tp->snd_cwnd = next;
	if (pace > 0) {
		/* the policy's rate, packets per second (the socket paces itself: see pf_init) */
		u64 rate = (u64)(pace > PF_MAX_PACE_PPS ? PF_MAX_PACE_PPS : pace) * s.mss;

		sk->sk_pacing_rate = rate < sk->sk_max_pacing_rate ? rate : sk->sk_max_pacing_rate;
	} else if (s.srtt_us > 0) {
		/* With cong_control the kernel leaves pacing to us: follow tcp_update_pacing_rate(),
		 * 200 % of cwnd per sRTT in slow start, 120 % after; TCP small queues size by it. */
		u64 rate = (u64)next * s.mss * 1000000 / (u64)s.srtt_us;

		rate = next < tp->snd_ssthresh ? rate * 2 : rate * 6 / 5;
		sk->sk_pacing_rate = rate;
	}
}

#ifdef PF_CC_ARGS4
SEC("struct_ops")
void BPF_PROG(pf_cong_control_cb, struct sock *sk, __u32 ack, int flag, const struct rate_sample *rs)
{
	pf_cong_control(sk, rs);
}
#else
SEC("struct_ops")
void BPF_PROG(pf_cong_control_cb, struct sock *sk, const struct rate_sample *rs)
{
	pf_cong_control(sk, rs);
}
#endif

SEC("struct_ops")
void BPF_PROG(pf_init, struct sock *sk)
{
	bpf_sk_storage_get(&pf_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
#ifdef PF_HAS_PACING
	/* a policy that sets the rate gets it enforced without an fq qdisc: TCP's own pacing timer */
	if (sk->sk_pacing_status == SK_PACING_NONE)
		sk->sk_pacing_status = SK_PACING_NEEDED;
#endif
}

SEC("struct_ops")
__u32 BPF_PROG(pf_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = (struct tcp_sock *)sk;

	return tp->snd_cwnd >> 1 > 2 ? tp->snd_cwnd >> 1 : 2;
}

SEC("struct_ops")
__u32 BPF_PROG(pf_undo_cwnd, struct sock *sk)
{
	const struct tcp_sock *tp = (struct tcp_sock *)sk;

	return tp->snd_cwnd;
}

SEC("struct_ops")
void BPF_PROG(pf_release, struct sock *sk)
{
	bpf_sk_storage_delete(&pf_store, sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops PF_OPS = {
	.init = (void *)pf_init,
	.cong_control = (void *)pf_cong_control_cb,
	.ssthresh = (void *)pf_ssthresh,
	.undo_cwnd = (void *)pf_undo_cwnd,
	.release = (void *)pf_release,
	.name = PF_CC_NAME,
};
