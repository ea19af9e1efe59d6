s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((s->new_loss) > 0LL) ? pf_max(2LL, ((s->cwnd) >> ((1LL) & 15))) : (((s->in_recovery) > 0LL) ? (s->cwnd) : (((s->ssthresh) > (s->cwnd)) ? ((s->cwnd) + (s->acked)) : ((s->cwnd) + (s->ai_inc)))));
}

s64 policy_pacing_rate(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return 0LL;
}
