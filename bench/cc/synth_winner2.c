s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((s->new_loss) > 0LL) ? pf_max(1LL, ((s->cwnd) >> ((1LL) & 15))) : ((pf_min(457LL, (h->recent_max_rate_pps)) > 0LL) ? (s->cwnd) : (((s->ssthresh) > (s->cwnd)) ? ((s->cwnd) + (s->acked)) : ((s->cwnd) + (s->ai_inc)))));
}
