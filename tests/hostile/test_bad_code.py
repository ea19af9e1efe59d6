"""Bad code that used to pass, found by writing answers as an LLM would: cc read past the state
struct, a union cast away const and wrote the template's history, a negative cwnd wrapped
through the u32 return (about a million packets, 92.7 % loss, still scored); a cache
priority() read the template's hidden fields by pointer arithmetic (and scored best of 20),
a recursive definition passed, +inf priorities passed; EPLB sqrt of a negative gave NaN
rules that passed; non-determinism that started after the probe's inputs passed."""
import pytest

from policyforge.tasks.cc import TASK_CLASS as CCTask

from hostile import CACHE_OPTS, PRIORITY, check_file

CC = "s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n"
EPLB = ("double expected_load(double recent, double history) {{ return {}; }}\n"
        "double replica_score(double load, double count) {{ return pf_div(load, count); }}\n"
        "double pack_key(double weight, double index) {{ return weight; }}\n"
        "double bin_cost(double bin_load, double bin_count, double capacity, double weight) {{ return bin_load; }}\n")


@pytest.mark.parametrize("source, stage, message", [
    (CC + "{\n    s64 m = 0;\n    for (int i = 0; i < 8; i++)\n        m += *(&s->srtt_us + 2 * i);\n    return m;\n}\n",
     "static", "policy.c:5: dereferencing"),
    (CC + "{\n    union { const struct pf_cc_history *c; struct pf_cc_history *w; } u;\n    u.c = h;\n"
          "    u.w->sum_lost = 0;\n    return s->cwnd;\n}\n", "static", "policy.c:3: union types are not allowed"),
    (CC + "{\n    return policy_cong_control(s, h) + 1;\n}\n", "static", "must not call a policy function"),
])
def test_cc(tmp_path, source, stage, message):
    rc, out = check_file(tmp_path, "cc", source, {"duration_s": 2})
    assert rc == 1 and f"FAILED at stage '{stage}'" in out and message in out, out


@pytest.mark.parametrize("body, stage, message", [
    ("{\n    return *((const double *)obj + 9) + *((const double *)ctx - 4);\n}\n", "static",
     "policy.c:3: casts to pointers or other non-scalar types are not allowed"),
    ("{\n    return (&obj->ghost_gap)[3];\n}\n", "static", "policy.c:3: indexing"),
    ("{\n    return obj->count > 1 ? priority(obj, ctx) : obj->last_access;\n}\n", "static",
     "policy.c:3: priority() must not call a policy function (no recursion)"),
    ("{\n    return obj->count > 3 ? 1e308 * 10 : obj->last_access;\n}\n", "probe", "returned +inf"),
    ("{\n    return obj->last_access - pf_div(1.0, 0.0) - 1.0 / (ctx->now - obj->last_access);\n}\n", "probe",
     "returned -inf"),
    # non-determinism: state, uninitialized locals, the pid, a clock
    ("{\n    static double calls = 0;\n    calls += 1;\n    return calls;\n}\n", "static", "'static' is not allowed"),
    ("{\n    double noise;\n    return obj->count + noise;\n}\n", "static", "local 'noise' must be initialized"),
    ("{\n    return obj->count + getpid() % 2;\n}\n", "static", "call to 'getpid' is not allowed"),
    ("{\n    return obj->count + __builtin_ia32_rdtsc() % 2;\n}\n", "static", "call to '__builtin_ia32_rdtsc'"),
])
def test_cache(tmp_path, body, stage, message):
    rc, out = check_file(tmp_path, "cache", PRIORITY + body, CACHE_OPTS)
    assert rc == 1 and f"FAILED at stage '{stage}'" in out and message in out, out


def test_eplb_nan_from_the_square_root_of_a_difference(tmp_path):
    rc, out = check_file(tmp_path, "eplb", EPLB.format("sqrt(recent - history)"), {"steps": 300, "layers": 4},
                         name="rules.cpp")
    assert rc == 1 and "FAILED at stage 'probe'" in out
    assert "probe: expected_load(recent=0, history=1) returned NaN" in out


def test_a_negative_cwnd_means_two_packets_not_four_billion(tmp_path):
    """The policy returns an s64 and the template clamps it: -5 is 2 packets (before, a
    negative value wrapped through u32 into a window of about a million packets)."""
    task = CCTask(duration_s=2.0)
    task.prepare(tmp_path / "shared")
    check = task.check(CC + "{\n    return s->cwnd > 10 ? -5 : s->cwnd + s->acked;\n}\n", tmp_path / "neg")
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path / "neg")
    assert ev.ok, ev.reason
    assert 2 * 1200 <= min(ev.metrics["cwnd_series"]) and max(ev.metrics["cwnd_series"]) <= 64 * 1460
    assert ev.metrics["loss"] < 0.05
