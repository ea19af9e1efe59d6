// SPDX-License-Identifier: GPL-2.0
/*
 * A policyforge congestion control as a kernel module: the same generated
 * policy_cong_control() as the eBPF template (bpf/pf_cc.bpf.c), the same history
 * bookkeeping (bpf/pf_cc_policy.h), registered with tcp_register_congestion_control().
 * Per-connection history lives in a kzalloc'ed pf_cc_store whose pointer sits in
 * icsk_ca_priv (too small for the store itself). The optional policy_ssthresh() and
 * policy_pacing_rate() work as in the BPF template (policy.inc defines PF_HAS_* for them).
 *
 * Build against any kernel's headers: make -C kmod KDIR=/lib/modules/$(uname -r)/build \
 *   POLICY=path/to/policy.c NAME=pf_reno   (see kmod/README.md). Load only inside the VM.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/version.h>
#include <net/tcp.h>

/* the policy is large for __always_inline in a kernel build: let the compiler decide */
#define PF_POLICY_LINKAGE static inline
#include "pf_cc_policy.h"

#ifndef PF_CC_NAME
#define PF_CC_NAME "pf_cc"
#endif

#include "policy.inc"

struct pf_priv {
	struct pf_cc_store *st;
};

static void pf_init(struct sock *sk)
{
	struct pf_priv *p = inet_csk_ca(sk);

	p->st = kzalloc(sizeof(*p->st), GFP_ATOMIC);
#ifdef PF_HAS_PACING
	cmpxchg(&sk->sk_pacing_status, SK_PACING_NONE, SK_PACING_NEEDED);
#endif
}

static void pf_release(struct sock *sk)
{
	struct pf_priv *p = inet_csk_ca(sk);

	kfree(p->st);
	p->st = NULL;
}

static void pf_cong_control_common(struct sock *sk, const struct rate_sample *rs)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct inet_connection_sock *icsk = inet_csk(sk);
	struct pf_cc_store *st = ((struct pf_priv *)inet_csk_ca(sk))->st;
	struct pf_cc_state s = {};
	s64 next, ssth = 0, pace = 0;

	if (!st)
		return;
	pf_fill_state(st, &s, tp, tcp_snd_cwnd(tp), icsk->icsk_ca_state, rs);

	next = policy_cong_control(&s, &st->h);
	next = clamp_t(s64, next, 2, s.cwnd_clamp);
#ifdef PF_HAS_SSTHRESH
	ssth = policy_ssthresh(&s, &st->h);
#endif
#ifdef PF_HAS_PACING
	pace = policy_pacing_rate(&s, &st->h);
#endif
	if (s.new_loss)
		st->reduced = 1;
	/* as in the BPF template: the policy's ssthresh when it gives one, else the new cwnd on a new loss */
	if (ssth > 0)
		tp->snd_ssthresh = clamp_t(s64, ssth, 2, s.cwnd_clamp);
	else if (s.new_loss)
		tp->snd_ssthresh = next;
	tcp_snd_cwnd_set(tp, next);
	if (pace > 0) {
		u64 rate = (u64)min_t(s64, pace, PF_MAX_PACE_PPS) * s.mss;

		WRITE_ONCE(sk->sk_pacing_rate, min_t(u64, rate, READ_ONCE(sk->sk_max_pacing_rate)));
	} else if (s.srtt_us > 0) {
		u64 rate_bps = div64_u64((u64)next * s.mss * USEC_PER_SEC, s.srtt_us);

		rate_bps = next < tp->snd_ssthresh ? rate_bps * 2 : div64_u64(rate_bps * 6, 5);
		WRITE_ONCE(sk->sk_pacing_rate, rate_bps);
	}
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
static void pf_cong_control(struct sock *sk, u32 ack, int flag, const struct rate_sample *rs)
{
	pf_cong_control_common(sk, rs);
}
#else
static void pf_cong_control(struct sock *sk, const struct rate_sample *rs)
{
	pf_cong_control_common(sk, rs);
}
#endif

static u32 pf_ssthresh(struct sock *sk)
{
	return max(tcp_snd_cwnd(tcp_sk(sk)) >> 1U, 2U);
}

static u32 pf_undo_cwnd(struct sock *sk)
{
	return tcp_snd_cwnd(tcp_sk(sk));
}

static struct tcp_congestion_ops pf_ops __read_mostly = {
	.init = pf_init,
	.release = pf_release,
	.cong_control = pf_cong_control,
	.ssthresh = pf_ssthresh,
	.undo_cwnd = pf_undo_cwnd,
	.owner = THIS_MODULE,
	.name = PF_CC_NAME,
};

static int __init pf_register(void)
{
	BUILD_BUG_ON(sizeof(struct pf_priv) > ICSK_CA_PRIV_SIZE);
	return tcp_register_congestion_control(&pf_ops);
}

static void __exit pf_unregister(void)
{
	tcp_unregister_congestion_control(&pf_ops);
}

module_init(pf_register);
module_exit(pf_unregister);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("policyforge generated congestion control");
