s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((s->new_loss) > 0LL) ? pf_max(2LL, ((s->cwnd) >> ((1LL) & 15))) : ((((s->srtt_us) - ((s->min_rtt_us) + ((s->min_rtt_us) >> ((2LL) & 15)))) > 1LL) ? pf_max(2LL, ((s->cwnd) - (s->ai_inc))) : (((s->ssthresh) > (s->cwnd)) ? ((s->cwnd) + (s->acked)) : ((s->cwnd) + (s->ai_inc)))));
}
