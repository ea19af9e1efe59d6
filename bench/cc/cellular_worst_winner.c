s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return (((pf_window(h, 0)->rate_pps) > 0LL) ? ((((pf_window(h, 0)->lost) + ((((2LL * (s->srtt_us)) - (3LL * (s->min_rtt_us))) > 0LL) ? 1LL : 0LL)) > 0LL) ? pf_max(4LL, (2LL + pf_div(((pf_window(h, 0)->rate_pps) * (s->min_rtt_us)), 1000000LL))) : ((((4LL * (s->srtt_us)) - (5LL * (s->min_rtt_us))) > 0LL) ? pf_max(4LL, (2LL + pf_div(((5LL * (pf_window(h, 0)->rate_pps)) * (s->min_rtt_us)), 4000000LL))) : pf_max(4LL, (2LL + pf_div(((3LL * pf_max((s->rate_pps), (pf_window(h, 0)->rate_pps))) * (s->min_rtt_us)), 2000000LL))))) : ((s->cwnd) + (s->acked)));
}

s64 policy_pacing_rate(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return ((pf_window(h, 0)->rate_pps) * ((pf_window(h, 0)->lost) * (s->acked)));
}
