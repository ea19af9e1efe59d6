"""The eBPF template and the kernel policy's grammar: what a policy may write, what the verifier
accepts, and that the template really hands the policy's cwnd and its history to the kernel."""
import re

import pytest

from policyforge.task import TaskError
from policyforge.tasks.cc import TASK_CLASS

HEAD = "s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"


def body(*lines: str) -> str:
    return HEAD + "".join(f"    {ln}\n" for ln in lines) + "}\n"


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    t = TASK_CLASS(duration_s=2.0)
    t.prepare(tmp_path_factory.mktemp("ccbpf"))
    return t


@pytest.mark.parametrize("src, message", [
    (body("return s->cwnd * 0.5;"), "policy.c:3: floating-point literals are not allowed"),
    (body("float g = 2;", "return s->cwnd;"), "policy.c:3: floating point is not allowed"),
    (body("return s->cwnd % s->losses;"), "policy.c:3: modulo (%) is not allowed"),
    (body("s64 x = s->cwnd;", "x /= s->losses;", "return x;"), "policy.c:4: division must use pf_div"),
    (body("while (s->cwnd) {}", "return 2;"), "policy.c:3: only for loops with a bound the checker can see"),
    (body("s64 i = 0;", "for (i = 0; i < s->cwnd; i++) {}", "return 2;"),
     "policy.c:4: only for loops with a bound the checker can see"),
    (body("for (int i = 0; i < 1000; i++) {}", "return 2;"), "policy.c:3: this loop runs 1000 times; at most 16"),
    (body("for (int i = 0; i < 8; i++) { i += 1; }", "return 2;"), "policy.c:3: the loop counter 'i' may only change"),
    (body("return bpf_get_prandom_u32();"), "policy.c:3: call to 'bpf_get_prandom_u32' is not allowed"),
    ("#include <linux/tcp.h>\n" + body("return 2;"), "policy.c:1:"),
    ("s64 calls;\n" + body("return 2;"), "policy.c:1: top-level declaration 'calls' is not allowed"),
    (body("return *((const s64 *)h + 400);"), "policy.c:3: dereferencing"),
    (body("return h->w[20].lost;"), "policy.c:3: indexing ('[') is not allowed; read history windows through pf_window"),
    (body("return h->head;"), "policy.c:3: 'head' is not a readable field of struct pf_cc_history; read history"),
    (HEAD + "    fl\\\noat g = 2;\n    return s->cwnd;\n}\n", "policy.c:4: floating point is not allowed"),
    (body("asm volatile(\"\");", "return 2;"), "(inline assembly is not allowed)"),
    ("u32 other(void)\n{\n    return 2;\n}\n", "must define policy_cong_control() with the signature `s64 policy_cong"),
])
def test_the_grammar_names_the_line_and_the_fix(task, tmp_path, src, message):
    out = task.check(src, tmp_path)
    assert out.stage == "static" and message in out.feedback, out.feedback


def test_the_grammar_accepts_the_seeds_and_bounded_history_loops(task, tmp_path):
    for seed in task.seeds():
        assert task.check(task.render(seed.genome), tmp_path / seed.name).ok
    loops = body("s64 lost = 0;  // comments may say a / b or 0.5",
                 "for (int i = 0; i < PF_HIST && i < h->n; i++)", "    lost += pf_window(h, i)->lost;",
                 "for (int i = PF_HIST - 1; i >= 0; i--) {", "    const struct pf_cc_window *w = pf_window(h, i);",
                 "    if (i >= h->n)", "        continue;", "    lost += w->ecn;", "}",
                 "for (int i = 0; i < PF_HIST; i += 2)", "    lost += pf_window(h, i)->lost > 0;",
                 "switch (s->ca_state) {", "case 4:", "    lost += 1;", "    break;", "default:", "    break;", "}",
                 "return lost ? pf_div(s->cwnd, 2) : s->cwnd + 1;")
    out = task.check(loops, tmp_path / "loops")
    assert out.ok, out.feedback


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
    # the first line names the source line the verifier stopped at and its reason
    assert re.match(r"^pf_cc[._a-z]*\.[ch]:\d+: the BPF verifier rejected the program: ", wrong.feedback), wrong.feedback
    assert "mark_precise" not in wrong.feedback and len(wrong.feedback.splitlines()) <= 42


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
    ({"seeds": "rate"}, "the rate seed sets the pacing rate: add -o outputs=cwnd,pacing"),
    ({"outputs": "pacing"}, "bad outputs 'pacing'"),
    ({"outputs": "cwnd,rate"}, "bad outputs 'cwnd,rate'"),
    ({"windows": "0"}, "must be at least 1"),
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
    both = TASK_CLASS(outputs="cwnd,pacing,ssthresh")
    assert [s.name for s in both.seeds()] == ["reno", "delay", "rate", "track", "probe"]
    assert [s.name for s in TASK_CLASS(seeds="probe").seeds()] == ["probe"]    # the template's pacing
    assert [h.name for h in both.holes()] == ["policy_cong_control", "policy_ssthresh", "policy_pacing_rate"]
    assert all(set(s.genome) == {h.name for h in both.holes()} for s in both.seeds())


def fn(name: str, *lines: str) -> str:
    return (f"s64 {name}(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{{\n"
            + "".join(f"    {ln}\n" for ln in lines) + "}\n")


def test_the_policy_sets_ssthresh_when_it_defines_policy_ssthresh(task, tmp_path):
    """Slow start below ssthresh, hold above it: with policy_ssthresh() returning 23 the window
    stops at 23 packets, which the template's own rule (no loss here: ssthresh stays huge)
    would never do."""
    grow = body("return s->cwnd < s->ssthresh ? s->cwnd + s->acked : s->cwnd;")
    check = task.check(grow + fn("policy_ssthresh", "return 23;"), tmp_path / "ss")
    assert check.ok, check.feedback
    assert "#define PF_HAS_SSTHRESH 1" in check.checked_source and "PF_HAS_PACING" not in check.checked_source
    ev = task.evaluate(check, tmp_path / "ss")
    assert ev.ok, ev.reason
    last = ev.metrics["cwnd_series"][-3:]
    assert all(c % 23 == 0 and 1200 <= c // 23 <= 1460 for c in last), ev.metrics["cwnd_series"]


def test_the_policy_paces_the_flow_when_it_defines_policy_pacing_rate(task, tmp_path):
    """A huge window paced at 500 packets per second (6 Mbit/s of 1448-byte packets) on a
    24 Mbit/s link: the throughput is the pacing rate's, and the default rule would fill the link."""
    check = task.check(body("return 1000;") + fn("policy_pacing_rate", "return 500;"), tmp_path / "pace")
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path / "pace")
    assert ev.ok, ev.reason
    assert 4.5 < ev.metrics["throughput_mbps"] < 6.5, ev.metrics


def test_optional_outputs_are_checked_like_the_policy(task, tmp_path):
    out = task.check(body("return s->cwnd;") + fn("policy_pacing_rate", "return s->rate_pps * 0.5;"), tmp_path / "f")
    assert out.stage == "static" and "policy.c:7: floating-point literals are not allowed" in out.feedback, out.feedback
    out = task.check(body("return s->cwnd;") + fn("policy_ssthresh", "return 2;") + fn("policy_ssthresh", "return 3;"),
                     tmp_path / "twice")
    assert out.stage == "static" and "policy_ssthresh() is defined twice" in out.feedback, out.feedback
    # the prompt says which are optional and what each does
    from policyforge.checking import rules_text
    from policyforge.tasks.cc.task import GRAMMAR
    text = rules_text(GRAMMAR)
    assert "policy_pacing_rate(const struct pf_cc_state *s, const struct pf_cc_history *h)   (optional)" in text
    assert "packets per second" in text and "slow-start threshold" in text


def test_the_rate_seed_and_history_window_features_pass_the_verifier_and_fill_the_link(tmp_path):
    """The BBR-like seed (a window of two BDPs, paced at 1.25 x the recent highest delivery
    rate) through the real verifier and one flow; the offline vocabulary's history-window
    features compile and verify too."""
    t = TASK_CLASS(duration_s=3.0, outputs="cwnd,pacing")
    t.prepare(tmp_path / "shared")
    rate = next(s for s in t.seeds() if s.name == "rate")
    check = t.check(t.render(rate.genome), tmp_path / "rate")
    assert check.ok, check.feedback
    ev = t.evaluate(check, tmp_path / "rate")
    assert ev.ok and ev.metrics["utilization"] > 0.7, (ev.reason, ev.metrics)
    trend = {"policy_cong_control": "(ifgt rtt_w0 (add rtt_w3 (shr rtt_w3 3)) (max 2 (sub cwnd ai_inc)) "
                                    "(add cwnd (max ai_inc lost_w0)))",
             "policy_pacing_rate": "(max rate_w0 rate_w3)"}
    out = t.check(t.render(trend), tmp_path / "trend")
    assert out.ok, out.feedback


@pytest.mark.parametrize("seed, queue_share", [("track", 0.5), ("probe", 0.75)])
def test_the_rate_seeds_hold_a_lossy_link_with_a_short_queue(tmp_path, seed, queue_share):
    """The rate-tracking seeds on a 24 Mbit/s link with 1 % random loss. `track` (the newest
    window's delivery rate, paced at 1.25 x, a window of 1.25 x its BDP + 2) ignores loss; `probe`
    falls to one BDP after a lossy window, and almost every window of this link has a loss. Both
    fill the link where a loss-based window could not (reno: about a quarter), and neither fills
    the 1-BDP droptail queue as a loss-based scheme does: track's window bounds its queue to about
    a quarter of a BDP; probe asks for 1.5 x while srtt < 1.25 x min RTT, and between lossy
    windows (each drops it to 1 x and drains the queue) srtt, a smoothed value, lags the queue
    that builds, so it holds about half a BDP here (20 ms measured; a quarter on the same link
    without loss: bench/cc/variants.py --dev). The p95 one-way delay stays below base + that share
    of a full queue (10 + 20 ms) with room for the emulator's jitter."""
    t = TASK_CLASS(duration_s=3.0, outputs="cwnd,pacing", loss=0.01, acks=False)
    t.prepare(tmp_path / "shared")
    genome = next(s for s in t.seeds() if s.name == seed).genome
    check = t.check(t.render(genome), tmp_path / seed)
    assert check.ok, check.feedback
    ev = t.evaluate(check, tmp_path / seed)
    assert ev.ok, ev.reason
    m = ev.metrics
    assert m["utilization"] > 0.75 and m["p95_delay_ms"] < 10 + queue_share * 20, m


def test_windows_are_the_same_for_every_task_of_a_seed_and_differ_across_seeds(tmp_path):
    def traces(seed, where):
        t = TASK_CLASS(trace="cell:seed=2,seconds=40", windows=3, window_seed=seed)
        t.prepare(tmp_path / where)
        return [open(w.trace).read() for w in t.windows]
    a, b, c = traces(1, "a"), traces(1, "b"), traces(2, "c")
    assert a == b and a != c and len(set(a)) == 3
    fixed = TASK_CLASS(windows=2)
    fixed.prepare(tmp_path / "fixed")
    assert [w.trace for w in fixed.windows] == [None, None]          # a fixed link: repeats


@pytest.mark.parametrize("trace, message", [
    ("cell:speed=3", "cellular trace: unknown parameter 'speed'"),
    ("cell:mean=fast", "cellular trace: mean='fast' is not a number"),
    ("cell:mean=30", "cellular trace: need 0 < low <= mean <= high"),
])
def test_bad_cellular_specs_are_one_line(tmp_path, trace, message):
    with pytest.raises(TaskError, match=message):
        TASK_CLASS(trace=trace).prepare(tmp_path)
