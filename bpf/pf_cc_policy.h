/*
 * The policy ABI shared by the eBPF (bpf/pf_cc.bpf.c) and kernel-module (kmod/pf_cc_mod.c)
 * templates: what a generated policy_cong_control() reads, the safe arithmetic helpers it
 * may call, and the history bookkeeping and state filling (pf_fill_state) both templates run
 * before calling it.
 *
 * Everything is integer-only (kernel code: no floating point). Values are s64 so that
 * differences never wrap. The policy returns the next cwnd in packets as an s64; the
 * template clamps it to [2, cwnd_clamp], so a negative result means 2, never a huge
 * unsigned window.
 *
 * With PF_POLICY_ONLY defined this header is only the policy's side (the structs, the
 * helpers, the policy's declaration), which compiles outside the kernel: policyforge's
 * checker builds a candidate that way to audit its machine code.
 */
#ifndef PF_CC_POLICY_H
#define PF_CC_POLICY_H

#define PF_HIST 10        /* history windows of about one RTT each */
#define PF_HIST_SLOTS 16  /* power of two: ring indices are masked, which the verifier can follow */

struct pf_cc_state {
	s64 cwnd, ssthresh, ca_state, in_recovery, new_loss;
	s64 srtt_us, min_rtt_us, rtt_us;          /* rtt_us: this ACK's sample, -1 if none */
	s64 delivered, interval_us, losses, acked, prior_in_flight, is_app_limited;
	s64 mss, cwnd_clamp;
	s64 ai_inc;   /* 1 when the acked packets since the last increase reach cwnd (Reno's +1/RTT) */
	s64 rate_pps; /* this ACK's delivery rate, packets per second */
	s64 bdp;      /* max delivery rate x min RTT, in packets */
};

struct pf_cc_window {
	s64 delivered, lost, ecn, min_rtt_us, avg_rtt_us, max_rtt_us, rate_pps;
};

struct pf_cc_history {
	struct pf_cc_window w[PF_HIST_SLOTS]; /* w[(head - k) & 15] is the k-th newest, k < n */
	s64 head, n;
	s64 conn_min_rtt_us, max_rate_pps;
	/* aggregates over the filled windows, for policies without loops */
	s64 sum_lost, sum_ecn, sum_delivered, recent_min_rtt_us, recent_max_rtt_us, recent_avg_rtt_us, recent_max_rate_pps;
};

/* per-connection state kept by the template (sk_storage in BPF, kzalloc in the module) */
struct pf_cc_store {
	struct pf_cc_history h;
	struct pf_cc_window cur;   /* the window being filled */
	s64 cur_start_us, cur_rtt_sum, cur_rtt_n;
	s64 ai_acc;                /* acked packets since the last +1 */
	s64 reduced;               /* already cut cwnd in this recovery episode */
};

static __always_inline s64 pf_min(s64 a, s64 b) { return a < b ? a : b; }
static __always_inline s64 pf_max(s64 a, s64 b) { return a > b ? a : b; }

/* a / b rounded toward zero, 0 when b == 0; on magnitudes, since BPF has no signed division */
static __always_inline s64 pf_div(s64 a, s64 b)
{
	u64 ua, ub, q;

	if (b == 0)
		return 0;
	ua = a < 0 ? -(u64)a : (u64)a;
	ub = b < 0 ? -(u64)b : (u64)b;
	q = ua / ub;
	return (a < 0) != (b < 0) ? -(s64)q : (s64)q;
}
/* the k-th newest closed window (k < h->n) */
static __always_inline const struct pf_cc_window *pf_window(const struct pf_cc_history *h, s64 k)
{
	return &h->w[(h->head - k) & (PF_HIST_SLOTS - 1)];
}

/*
 * The policy, the one function a candidate defines. Its linkage is declared here, once, for
 * both templates: a definition without a storage class after this declaration gets the same
 * internal linkage (C11 6.2.2), so the candidate writes a plain
 *   s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h) { ... }
 * and the template inlines it. (The module defines PF_POLICY_LINKAGE as static inline.)
 */
#ifndef PF_POLICY_LINKAGE
#define PF_POLICY_LINKAGE static __always_inline
#endif
PF_POLICY_LINKAGE s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h);
/*
 * Two optional outputs, called on every ACK after policy_cong_control():
 *   s64 policy_ssthresh(s, h)      > 0: ssthresh to set now, packets; <= 0: the template's rule
 *   s64 policy_pacing_rate(s, h)   > 0: pacing rate, packets per second; <= 0: the template's rule
 * A C file cannot declare a static function it does not define, so their declarations are not
 * here: policyforge writes `#define PF_HAS_SSTHRESH` / `PF_HAS_PACING` and the declaration
 * (PF_POLICY_LINKAGE s64 policy_ssthresh(...);) above a policy that defines one.
 */
#define PF_MAX_PACE_PPS 100000000LL   /* pacing rates are capped here (about 1.2 Tbit/s at 1500 B) */

#ifndef PF_POLICY_ONLY
static __always_inline void pf_close_window(struct pf_cc_store *st, s64 now_us)
{
	struct pf_cc_history *h = &st->h;
	s64 i;

	st->cur.avg_rtt_us = pf_div(st->cur_rtt_sum, st->cur_rtt_n);
	h->head = (h->head + 1) & (PF_HIST_SLOTS - 1);
	h->w[h->head & (PF_HIST_SLOTS - 1)] = st->cur;
	if (h->n < PF_HIST)
		h->n++;
	h->sum_lost = h->sum_ecn = h->sum_delivered = 0;
	h->recent_min_rtt_us = 0;
	h->recent_max_rtt_us = 0;
	h->recent_avg_rtt_us = 0;
	h->recent_max_rate_pps = 0;
	for (i = 0; i < PF_HIST; i++) {
		const struct pf_cc_window *w = &h->w[(h->head - i) & (PF_HIST_SLOTS - 1)];

		if (i >= h->n)
			break;
		h->sum_lost += w->lost;
		h->sum_ecn += w->ecn;
		h->sum_delivered += w->delivered;
		if (w->min_rtt_us && (!h->recent_min_rtt_us || w->min_rtt_us < h->recent_min_rtt_us))
			h->recent_min_rtt_us = w->min_rtt_us;
		if (w->max_rtt_us > h->recent_max_rtt_us)
			h->recent_max_rtt_us = w->max_rtt_us;
		h->recent_avg_rtt_us += w->avg_rtt_us;
		if (w->rate_pps > h->recent_max_rate_pps)
			h->recent_max_rate_pps = w->rate_pps;
	}
	h->recent_avg_rtt_us = pf_div(h->recent_avg_rtt_us, h->n);
	st->cur.delivered = st->cur.lost = st->cur.ecn = 0;
	st->cur.min_rtt_us = st->cur.max_rtt_us = st->cur.rate_pps = 0;
	st->cur_rtt_sum = st->cur_rtt_n = 0;
	st->cur_start_us = now_us;
}

/* fold one ACK into the history; closes the window after about one RTT */
static __always_inline void pf_observe(struct pf_cc_store *st, s64 now_us, s64 rtt_us, s64 srtt_us,
				       s64 delivered_pkts, s64 lost, s64 ecn, s64 rate_pps)
{
	struct pf_cc_history *h = &st->h;

	st->cur.delivered += delivered_pkts > 0 ? delivered_pkts : 0;
	st->cur.lost += lost > 0 ? lost : 0;
	st->cur.ecn += ecn > 0 ? ecn : 0;
	if (rtt_us > 0) {
		if (!st->cur.min_rtt_us || rtt_us < st->cur.min_rtt_us)
			st->cur.min_rtt_us = rtt_us;
		if (rtt_us > st->cur.max_rtt_us)
			st->cur.max_rtt_us = rtt_us;
		st->cur_rtt_sum += rtt_us;
		st->cur_rtt_n++;
		if (!h->conn_min_rtt_us || rtt_us < h->conn_min_rtt_us)
			h->conn_min_rtt_us = rtt_us;
	}
	if (rate_pps > st->cur.rate_pps)
		st->cur.rate_pps = rate_pps;
	if (rate_pps > h->max_rate_pps)
		h->max_rate_pps = rate_pps;
	if (!st->cur_start_us)
		st->cur_start_us = now_us;
	if (srtt_us > 0 && now_us - st->cur_start_us >= srtt_us)
		pf_close_window(st, now_us);
}

/*
 * Per-ACK glue both templates run before the policy: fold the rate sample into the history
 * and fill the policy's view of the connection. cwnd is an argument because the module reads
 * it through tcp_snd_cwnd() while BPF reads the field. Needs struct tcp_sock and
 * struct rate_sample, so the includer brings the kernel's types (vmlinux.h or net/tcp.h) first.
 */
static __always_inline void pf_fill_state(struct pf_cc_store *st, struct pf_cc_state *s,
					  const struct tcp_sock *tp, s64 cwnd, s64 ca_state,
					  const struct rate_sample *rs)
{
	s64 rate = 0;

	if (rs->interval_us > 0 && rs->delivered > 0)
		rate = pf_div((s64)rs->delivered * 1000000, rs->interval_us);
	pf_observe(st, tp->tcp_mstamp, rs->rtt_us, tp->srtt_us >> 3, rs->delivered, rs->losses,
		   rs->delivered_ce, rs->is_app_limited ? 0 : rate);
	s->cwnd = cwnd;
	s->ssthresh = tp->snd_ssthresh;
	s->ca_state = ca_state;
	s->in_recovery = ca_state >= TCP_CA_Recovery;
	if (!s->in_recovery)
		st->reduced = 0;
	s->new_loss = rs->losses > 0 && !st->reduced;
	s->srtt_us = tp->srtt_us >> 3;
	s->min_rtt_us = st->h.conn_min_rtt_us;
	s->rtt_us = rs->rtt_us;
	s->delivered = rs->delivered;
	s->interval_us = rs->interval_us;
	s->losses = rs->losses;
	s->acked = rs->acked_sacked;
	s->prior_in_flight = rs->prior_in_flight;
	s->is_app_limited = rs->is_app_limited;
	s->mss = tp->mss_cache;
	s->cwnd_clamp = tp->snd_cwnd_clamp;
	s->rate_pps = rate;
	s->bdp = pf_div(st->h.max_rate_pps * st->h.conn_min_rtt_us, 1000000);
	st->ai_acc += rs->acked_sacked > 0 ? rs->acked_sacked : 0;
	s->ai_inc = (s->cwnd > 0 && st->ai_acc >= s->cwnd) ? 1 : 0;
	if (s->ai_inc)
		st->ai_acc -= s->cwnd;
}
#endif /* PF_POLICY_ONLY */

#endif
