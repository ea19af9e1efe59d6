// cc winner: `run cc --generator offline --rounds 6 --candidates-per-round 8 --workers 2 --seed 1 -o seeds=reno --out runs/cc-synth-reno-30951` (commit d33c5bc, 2026-11-24 10:44:48 UTC),
// candidate 38 of round 5, score 1.2344 (throughput / p95 delay (Mbit/s per ms)) on the host.
s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((s->new_loss) > 0LL) ? pf_max(1LL, ((s->cwnd) >> ((1LL) & 15))) : ((pf_min(457LL, (h->recent_max_rate_pps)) > 0LL) ? (s->cwnd) : (((s->ssthresh) > (s->cwnd)) ? ((s->cwnd) + (s->acked)) : ((s->cwnd) + (s->ai_inc)))));
}
