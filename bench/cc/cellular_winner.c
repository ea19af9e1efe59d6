s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((pf_window(h, 0)->rate_pps) > 0LL) ? pf_max(4LL, (1LL + pf_div(((5LL * (pf_window(h, 0)->rate_pps)) * (s->min_rtt_us)), 4000000LL))) : ((s->cwnd) + pf_max(4LL, (2LL + pf_div(((5LL * (pf_window(h, 0)->rate_pps)) * (s->min_rtt_us)), 4000000LL)))));
}

s64 policy_pacing_rate(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((pf_window(h, 0)->rate_pps) > 10LL) ? ((pf_window(h, 0)->rate_pps) + ((pf_window(h, 0)->rate_pps) >> ((2LL) & 15))) : 0LL);
}
