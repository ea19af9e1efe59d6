"""The eBPF template and the kernel static rules: what a policy may write, what the verifier
accepts, and that the template really hands the policy's cwnd and its history to the kernel."""
import re

import pytest

from policyforge.task import TaskError
from policyforge.tasks.cc import TASK_CLASS
from policyforge.tasks.cc.kernel_checks import check_kernel_policy

HEAD = "u32 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"


def body(*lines: str) -> str:
    return HEAD + "".join(f"    {ln}\n" for ln in lines) + "}\n"


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    t = TASK_CLASS(duration_s=2.0)
    t.prepare(tmp_path_factory.mktemp("ccbpf"))
    return t


@pytest.mark.parametrize("src, message", [
    (body("return s->cwnd * 0.5;"), "policy.c:3: floating-point literal"),
    (body("float g = 2;", "return s->cwnd;"), "policy.c:3: floating point is not allowed"),
    (body("return s->cwnd % s->losses;"), "policy.c:3: modulo is not allowed"),
    (body("s64 x = s->cwnd;", "x /= s->losses;", "return x;"), "policy.c:4: division must use pf_div"),
    (body("while (s->cwnd) {}", "return 2;"), "policy.c:3: 'while' is not allowed"),
    (body("s64 i;", "for (i = 0; i < s->cwnd; i++) {}", "return 2;"), "policy.c:4: unbounded loop"),
    (body("for (int i = 0; i < 1000; i++) {}", "return 2;"), "policy.c:3: loop bound 1000 exceeds PF_HIST"),
    (body("return bpf_get_prandom_u32();"), "policy.c:3: call to 'bpf_get_prandom_u32' is not allowed"),
    ("#include <linux/tcp.h>\n" + body("return 2;"), "policy.c:1: preprocessor directives are not allowed"),
    ("s64 calls;\n" + body("return 2;"), "top-level declaration 's64 calls;' is not allowed"),
    (body("return *((const s64 *)h + 400);"), "policy.c:3: pointer casts are not allowed"),
    (body("return h->w[20].lost;"), "policy.c:3: read history windows through pf_window"),
    (body("fl\\", "oat g = 2;", "return s->cwnd;"), "policy.c:3: backslashes"),
    (body("asm volatile(\"\");", "return 2;"), "policy.c:3: 'asm' is not allowed"),
    ("u32 other(void)\n{\n    return 2;\n}\n", "must define 'u32 policy_cong_control"),
])
def test_static_rules_name_the_line_and_the_fix(src, message):
    errs = check_kernel_policy(src)
    assert any(message in e for e in errs), errs


def test_static_rules_accept_the_seeds_and_a_bounded_history_loop(task):
    for seed in task.seeds():
        assert check_kernel_policy(task.render(seed.genome)) == []
    loop = body("s64 lost = 0;  // comments may say a / b or 0.5",
                "for (int i = 0; i < PF_HIST; i++) {", "    if (i >= h->n)", "        break;",
                "    lost += pf_window(h, i)->lost;", "}", "return lost ? pf_div(s->cwnd, 2) : s->cwnd + 1;")
    assert check_kernel_policy(loop) == []


def test_the_allowed_history_loop_passes_the_verifier(task, tmp_path):
    loop = body("s64 lost = 0;", "for (int i = 0; i < PF_HIST; i++) {", "    if (i >= h->n)", "        break;",
                "    lost += pf_window(h, i)->lost;", "}",
                "return lost > 0 ? pf_max(2, s->cwnd - 1) : s->cwnd + s->ai_inc;")
    out = task.check(loop, tmp_path)
    assert out.ok, out.feedback


def test_cong_control_wrapper_matches_this_kernel(task, tmp_path):
    """prepare() reads cong_control's arity from BTF; the other wrapper is rejected by the verifier."""
    vmlinux = (task.bpf_dir / "vmlinux.h").read_text()
    params = re.search(r"void \(\*cong_control\)\(([^)]*)\);", vmlinux).group(1)
    assert task.args4 == ("u32" in params)
    policy = body("return s->cwnd + s->ai_inc;")
    assert task.check(policy, tmp_path / "right").ok
    task.args4 = not task.args4
    try:
        wrong = task.check(policy, tmp_path / "wrong")
    finally:
        task.args4 = not task.args4
    assert wrong.stage == "verifier" and "invalid mem access" in wrong.feedback


def test_policy_sets_cwnd_from_the_filled_history(task, tmp_path):
    """The template fills h with exactly PF_HIST windows and applies the policy's cwnd: a policy
    that asks for 37 packets once h->n == 10 (else 5) must end the flow at 37 x MSS."""
    check = task.check(body("return h->n == PF_HIST ? 37 : 5;"), tmp_path)
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path)
    assert ev.ok, ev.reason
    last = ev.metrics["cwnd_series"][-3:]
    assert len(set(last)) == 1 and last[0] % 37 == 0 and 1200 <= last[0] // 37 <= 1460, last


def test_the_template_clamps_cwnd_to_at_least_two(task, tmp_path):
    check = task.check(body("return 0;"), tmp_path)
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path)
    assert ev.ok, ev.reason
    cwnd = ev.metrics["cwnd_series"][-1]
    assert cwnd % 2 == 0 and 1200 <= cwnd // 2 <= 1460, ev.metrics["cwnd_series"]
    # two packets per 20 ms RTT is about 1.2 Mbit/s on a 24 Mbit/s link
    assert ev.metrics["utilization"] < 0.1


@pytest.mark.parametrize("opts, message", [
    ({"score": "speed"}, "unknown score 'speed'"),
    ({"seeds": "reno,vegas"}, "unknown seeds 'reno,vegas'"),
])
def test_bad_options_are_one_line_errors(opts, message):
    with pytest.raises(TaskError, match=message):
        TASK_CLASS(**opts)


def test_a_missing_trace_is_a_task_error(tmp_path):
    with pytest.raises(TaskError, match="does not exist"):
        TASK_CLASS(trace=str(tmp_path / "none.trace")).prepare(tmp_path)


def test_seeds_option_picks_the_starting_policies():
    assert [s.name for s in TASK_CLASS(seeds="reno").seeds()] == ["reno"]
    assert [s.name for s in TASK_CLASS().seeds()] == ["reno", "delay"]
