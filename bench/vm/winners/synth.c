// cc winner: `run cc --generator offline --rounds 6 --candidates-per-round 8 --workers 2 --seed 1 --out runs/cc-synth-30951` (commit ee35675, 2026-11-24 10:38:06 UTC),
// candidate 20 of round 3, score 1.4457 (throughput / p95 delay (Mbit/s per ms)) on the host.
s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((s->new_loss) > 0LL) ? pf_max(2LL, ((s->cwnd) >> ((1LL) & 15))) : ((((s->srtt_us) - ((s->min_rtt_us) + ((s->min_rtt_us) >> ((2LL) & 15)))) > 1LL) ? pf_max(2LL, ((s->cwnd) - (s->ai_inc))) : (((s->ssthresh) > (s->cwnd)) ? ((s->cwnd) + (s->acked)) : ((s->cwnd) + (s->ai_inc)))));
}
