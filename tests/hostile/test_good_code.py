"""Good code the old regex rules rejected, and that a model naturally writes: bounded cc loops
written `i < PF_HIST && i < h->n`, counting down or stepping by 2; switch; EPLB's std::tanh
and std::max (the prompt promises <cmath>); a cache sqrt(now - last_access + 1), which the
old probe called with inputs that never occur (last_access > now)."""
import pytest

from hostile import CACHE_OPTS, PRIORITY, check_file

CC = "s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n"
EPLB_OPTS = {"steps": 300, "layers": 4}


@pytest.mark.parametrize("body", [
    "{\n    s64 lost = 0;\n    for (int i = 0; i < PF_HIST && i < h->n; i++)\n"
    "        lost += pf_window(h, i)->lost;\n    return lost > 0 ? pf_max(2, s->cwnd / 2 * 0 + pf_div(s->cwnd, 2)) : s->cwnd + 1;\n}\n",
    "{\n    s64 best = 0;\n    for (int i = PF_HIST - 1; i >= 0; i--) {\n"
    "        const struct pf_cc_window *w = pf_window(h, i);\n        if (i >= h->n)\n            continue;\n"
    "        best = pf_max(best, w->rate_pps);\n    }\n    return best > 0 ? s->cwnd : s->cwnd + s->ai_inc;\n}\n",
    "{\n    s64 ecn = 0;\n    for (s64 i = 0; i < PF_HIST; i += 2)\n        ecn += pf_window(h, i)->ecn;\n"
    "    switch (s->ca_state) {\n    case 4:\n        return pf_max(2, pf_div(s->cwnd, 2));\n"
    "    default:\n        break;\n    }\n    return ecn ? s->cwnd - 1 : s->cwnd + s->ai_inc;\n}\n",
])
def test_cc(tmp_path, body):
    body = body.replace("s->cwnd / 2 * 0 + ", "")
    rc, out = check_file(tmp_path, "cc", CC + body, {"duration_s": 2})
    assert rc == 0 and out.startswith("ok:"), out


def test_eplb_cmath_as_promised(tmp_path):
    rules = ("double expected_load(double recent, double history) {\n"
             "    return std::max(recent, 0.5 * (recent + history)) + std::tanh(recent - history);\n}\n"
             "double replica_score(double load, double count) { return load / std::max(count, 1.0); }\n"
             "double pack_key(double weight, double index) { return std::log1p(weight) - 1e-9 * index; }\n"
             "double bin_cost(double bin_load, double bin_count, double capacity, double weight) {\n"
             "    return bin_load + weight * (bin_count / std::max(capacity, 1.0));\n}\n")
    rc, out = check_file(tmp_path, "eplb", rules, EPLB_OPTS, name="rules.cpp")
    assert rc == 0 and out.startswith("ok:"), out


@pytest.mark.parametrize("body", [
    "{\n    return sqrt(ctx->now - obj->last_access + 1);\n}\n",
    "{\n    double age = ctx->now - obj->insert_time;\n    return obj->last_access - pf_div(age, obj->count) + log(obj->count);\n}\n",
    "{\n    double r = obj->last_access;\n    switch ((int)obj->count) {\n    case 1:\n        r -= 100;\n        break;\n"
    "    default:\n        r += 10 * obj->ghost_count;\n    }\n    return r;\n}\n",
])
def test_cache(tmp_path, body):
    rc, out = check_file(tmp_path, "cache", PRIORITY + body, CACHE_OPTS)
    assert rc == 0 and out.startswith("ok:"), out
