s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((pf_window(h, 0)->rate_pps) > 0LL) ? pf_max(4LL, (2LL + pf_div(((5LL * (pf_window(h, 0)->rate_pps)) * (s->min_rtt_us)), 4000000LL))) : ((s->cwnd) + (s->acked)));
}

s64 policy_pacing_rate(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return pf_div((h->recent_max_rtt_us), pf_min((s->acked), (s->new_loss)));
}
