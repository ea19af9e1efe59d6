"""The congestion-control task on the real kernel: clang, the BPF verifier, iperf3 over linkem."""
import json
import subprocess
from pathlib import Path

import pytest

from policyforge.search.controller import Controller, RunConfig
from policyforge.tasks.cc import TASK_CLASS
from pfhelpers import ROOT

FLOAT_DIV = ("s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"
             "    double gain = 0.5;\n    return s->cwnd * gain + s->acked / s->losses;\n}\n")
OOB = ("s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"
       "    const s64 *p = &pf_window(h, 0)->delivered;\n    return *(p + s->cwnd);\n}\n")
# passes the grammar; only the compiler sees that `cwnd` is declared twice
TWICE = ("s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"
         "    s64 next = s->cwnd;\n    s64 next = s->cwnd + 1;\n    return next;\n}\n")
GOOD = ("s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"
        "    if (s->new_loss)\n        return pf_max(2, pf_div(s->cwnd * 3, 4));\n"
        "    return s->cwnd + (s->cwnd < s->ssthresh ? s->acked : s->ai_inc);\n}\n")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    t = TASK_CLASS(duration_s=2.0)
    t.prepare(tmp_path_factory.mktemp("cc"))
    return t


def _registered():
    return open("/proc/sys/net/ipv4/tcp_available_congestion_control").read().split()


def test_reno_seed_passes_the_verifier_and_carries_traffic(task, tmp_path):
    reno = next(s for s in task.seeds() if s.name == "reno")
    check = task.check(task.render(reno.genome), tmp_path)
    assert check.ok, check.feedback
    assert task.cc_name(tmp_path) not in _registered()          # check unregisters
    ev = task.evaluate(check, tmp_path)
    assert ev.ok and ev.metrics["utilization"] > 0.7 and ev.score > 0
    assert task.cc_name(tmp_path) not in _registered()          # evaluate unregisters
    # the emulator's own timing comes with every score, below the bound it was checked against
    assert ev.metrics["emulator_late_ms"]["p99_ms"] <= task.late_bound_ms()


def test_a_run_on_a_late_link_is_repeated_and_never_scored(tmp_path):
    """A bound no real run meets: every run counts as distorted, is repeated, and the
    evaluation fails with the lateness in its metrics instead of a score."""
    strict = TASK_CLASS(duration_s=1.0, late_bound_ms=1e-6, late_repeats=1)
    strict.prepare(tmp_path / "shared")
    ev = strict.baselines(tmp_path)[0].evaluation
    assert not ev.ok and ev.score is None and "link emulator was late in all 2 runs" in ev.reason
    assert ev.metrics["emulator_repeats"] == 2 and ev.metrics["emulator_late_ms"]["p99_ms"] > 1e-6


def test_racing_stops_a_hopeless_candidate_after_one_window(tmp_path):
    """A window of two packets against a best score it cannot come near: measured on the first
    of three windows only, stored as screened with the reason; the default objective's floor
    (80 % of cubic's throughput on the same window) is what sinks it."""
    t = TASK_CLASS(duration_s=2.0, windows=3)
    t.prepare(tmp_path / "shared")
    starve = GOOD.replace("    if (s->new_loss)\n        return pf_max(2, pf_div(s->cwnd * 3, 4));\n", "").replace(
        "return s->cwnd + (s->cwnd < s->ssthresh ? s->acked : s->ai_inc);", "return 2;")
    check = t.check(starve, tmp_path / "c")
    assert check.ok, check.feedback
    ev = t.evaluate(check, tmp_path / "c", best_so_far=0.3)
    assert ev.ok and ev.stage == "screen" and "raced out" in ev.reason and "after 1 of 3 runs" in ev.reason, ev.reason
    assert len(ev.metrics["windows"]) == 1
    w = ev.metrics["windows"][0]
    assert w["reference_throughput_mbps"] > 15 and w["throughput_mbps"] < 3 and ev.score < 0.001, w


def test_static_and_compiler_feedback(task, tmp_path):
    out = task.check(FLOAT_DIV, tmp_path / "f")
    assert out.stage == "static"
    assert "policy.c:3: floating point is not allowed" in out.feedback
    assert "policy.c:4: division must use pf_div" in out.feedback
    # reading past the state through a pointer never reaches the verifier now
    out = task.check(OOB, tmp_path / "v")
    assert out.stage == "static" and "policy.c:3: pointers are not allowed" in out.feedback
    assert "policy.c:4: dereferencing" in out.feedback
    out = task.check(TWICE, tmp_path / "t")
    assert out.stage == "compile" and "policy.c:4:9: error: redefinition of 'next'" in out.feedback
    loop = GOOD.replace("    if (s->new_loss)", "    while (s->cwnd > 1) {}\n    if (s->new_loss)")
    assert "only for loops with a bound" in task.check(loop, tmp_path / "l").feedback


def test_kernel_module_builds_and_its_errors_reach_the_generator(task, tmp_path):
    ko, log = task.build_module(GOOD, tmp_path / "ok", "pf_kmodtest")
    assert ko is not None and ko.suffix == ".ko", log
    ko, log = task.build_module(TWICE, tmp_path / "bad", "pf_kmodbad")
    assert ko is None and "redefinition of 'next'" in log


def test_kmod_stage_catches_what_the_bpf_build_lets_through(tmp_path):
    """-o kmod=1: the module's -Werror gcc build (with the kernel's own warnings) is a checker
    stage with gcc's message as feedback."""
    t = TASK_CLASS(kmod=True)
    t.prepare(tmp_path / "shared")
    fallthrough = ("s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"
                   "    s64 a = s->cwnd;\n    switch (s->ca_state) {\n    case 1:\n        a += 1;\n"
                   "    case 2:\n        a += 2;\n        break;\n    default:\n        break;\n    }\n"
                   "    return a;\n}\n")
    out = t.check(fallthrough, tmp_path / "c")
    assert out.stage == "kmod", out.feedback
    assert "policy.c:6:11: error: this statement may fall through" in out.feedback
    assert "make[" not in out.feedback
    # the optional outputs build into the module too, from the same checked text as the BPF object
    both = (GOOD + "s64 policy_ssthresh(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"
            "    return s->new_loss ? pf_max(2, s->cwnd) : 0;\n}\n"
            "s64 policy_pacing_rate(const struct pf_cc_state *s, const struct pf_cc_history *h)\n{\n"
            "    return pf_div(s->cwnd * 1000000, pf_max(1, s->srtt_us));\n}\n")
    out = t.check(both, tmp_path / "both")
    assert out.ok, out.feedback
    assert "#define PF_HAS_SSTHRESH 1" in out.checked_source and "#define PF_HAS_PACING 1" in out.checked_source


def test_feedback_loop_repairs_static_and_verifier_failures(tmp_path):
    replay = tmp_path / "responses.jsonl"
    with open(replay, "w") as f:
        for body in (FLOAT_DIV, TWICE, GOOD):
            f.write(json.dumps({"content": f"```c\n{body}```", "model": "recorded"}) + "\n")
    cfg = RunConfig(task="cc", task_options={"duration_s": "2"},
                    generator="replay", replay_file=str(replay), rounds=1, candidates_per_round=1, workers=1,
                    repairs=3)
    ctl = Controller(tmp_path / "run", cfg, quiet=True)
    ctl.task.baselines = lambda workdir: []        # kernel baselines are measured in bench/cc
    ctl.run()
    cand = ctl.store.round_candidates(1)[0]
    att = ctl.store.attempts(cand["id"])
    assert [a["stage"] for a in att] == ["static", "compile", "ok"]
    assert att[0]["feedback"].strip() in att[1]["prompt"]          # the grammar's messages reached the 2nd prompt
    assert "redefinition of 'next'" in att[2]["prompt"]             # the compiler's reached the 3rd
    assert cand["status"] == "evaluated" and cand["score"] > 0, cand["reason"]


def test_export_gives_a_registrable_object_and_module_source(task, tmp_path):
    check = task.check(GOOD, tmp_path / "c")
    info = task.export(GOOD, check, tmp_path / "winner")
    obj = next(f for f in info["files"] if f.endswith(".bpf.o"))
    r = subprocess.run(["bpftool", "struct_ops", "register", obj], capture_output=True, text=True)
    try:
        assert "Registered" in r.stdout + r.stderr and "pf_winner" in _registered()
    finally:
        subprocess.run(["bpftool", "struct_ops", "unregister", "name", "pf_winner_ops"], capture_output=True)
    assert any(f.endswith("pf_winner.ko") for f in info["files"]), info["usage"]
    # the exported module folder is self-contained: it builds outside the checkout
    kmod = tmp_path / "moved"
    (tmp_path / "winner" / "kmod").rename(kmod)
    kdir = next(iter(sorted(Path("/usr/src").glob("linux-headers-*-amd64"))))
    r = subprocess.run(["make", "-s", "-C", str(kmod), f"KDIR={kdir}", "POLICY=policy.c", "NAME=pf_moved"],
                       cwd=kmod, capture_output=True, text=True)
    assert r.returncode == 0 and (kmod / "build-pf_moved" / "pf_moved.ko").exists(), r.stdout + r.stderr
    assert "insmod" in info["usage"]


def test_the_reno_seed_in_bpf_behaves_like_the_kernels_reno(task, tmp_path):
    """A BPF copy of a classic scheme as an end-to-end check of the template (the state it fills,
    the window it applies, ssthresh on a loss): the reno seed through check (clang, the verifier)
    and the kernel's own reno, each carrying one 8 s flow on the same 24 Mbit/s, 20 ms RTT link
    with a one-BDP droptail queue, each traced at every ACK. Both must fill the link and draw the
    same sawtooth: windows halved on losses, a similar mean window and number of halvings. A
    template that dropped `acked`, applied the window late or lost ssthresh would not."""
    from policyforge.testbed import Experiment, FlowSpec, LinkSpec, run_experiment
    reno = next(s for s in task.seeds() if s.name == "reno")
    check = task.check(task.render(reno.genome), tmp_path)
    assert check.ok, check.feedback
    name = check.artifact.name.split(".")[0]
    ok, log = task.register(check.artifact)
    assert ok, log[-500:]
    link = LinkSpec(rate_mbps=24.0, delay_ms=10.0)
    try:
        runs = {scheme: run_experiment(Experiment(link, [FlowSpec(scheme, 0.0, 8.0)]), acks=True)
                for scheme in (name, "reno")}
    finally:
        task.unregister(name)

    def shape(r):
        a = r["flows"][0]["acks"]
        steady = [c for t, c in zip(a["t_s"], a["cwnd"]) if t > 2.0]      # past slow start
        halvings, peak = 0, steady[0]
        for c in steady:            # a fall below 70 % of the peak since the last one (kernel reno's
            if c < 0.7 * peak:      # PRR spreads a reduction over an RTT, several thinned samples)
                halvings, peak = halvings + 1, c
            peak = max(peak, c)
        return {"ca": a["ca"], "mean_cwnd": sum(steady) / len(steady), "halvings": halvings,
                "utilization": r["utilization"]}
    ours, kernel = shape(runs[name]), shape(runs["reno"])
    assert (ours["ca"], kernel["ca"]) == (name, "reno")
    assert ours["utilization"] > 0.85 and kernel["utilization"] > 0.85, (ours, kernel)
    # one BDP is 40 packets and so is the queue: the window saws between about 40 and 80
    assert 35 < kernel["mean_cwnd"] < 90 and kernel["halvings"] >= 2, kernel
    assert abs(ours["mean_cwnd"] - kernel["mean_cwnd"]) <= 0.2 * kernel["mean_cwnd"], (ours, kernel)
    assert ours["halvings"] >= 2 and 2 / 3 <= ours["halvings"] / kernel["halvings"] <= 3 / 2, (ours, kernel)


def test_a_struct_ops_left_by_a_killed_process_is_unregistered_by_the_next_task(task, tmp_path):
    """A process killed between register and unregister leaves its congestion control in the
    kernel; the next cc task's prepare() sweeps the ones policyforge marked for a dead process,
    and leaves those of live processes (and anything it did not register) alone."""
    import os
    import sys
    from policyforge.tasks.cc.task import CCTask, sweep_stale_registrations
    reno = next(s for s in task.seeds() if s.name == "reno")
    dead, alive = tmp_path / "dead", tmp_path / "alive"
    checks = {d: task.check(task.render(reno.genome), d) for d in (dead, alive)}
    assert all(c.ok for c in checks.values())
    names = {d: c.artifact.name.split(".")[0] for d, c in checks.items()}
    killed = subprocess.run([sys.executable, "-c",
                             "import os, signal, sys; from pathlib import Path\n"
                             "from policyforge.tasks.cc.task import CCTask\n"
                             f"print(CCTask.register(Path({str(checks[dead].artifact)!r}))[0], flush=True)\n"
                             "os.kill(os.getpid(), signal.SIGKILL)"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "py")})
    assert killed.returncode == -9 and killed.stdout.strip() == "True", killed.stderr[-500:]
    ok, log = CCTask.register(checks[alive].artifact)                  # this process: alive
    assert ok, log[-300:]
    try:
        assert {names[dead], names[alive]} <= set(_registered())
        swept = sweep_stale_registrations()
        assert names[dead] in swept and names[alive] not in swept
        assert names[dead] not in _registered() and names[alive] in _registered()
        assert {"cubic", "reno"} <= set(_registered())                  # never anyone else's
        TASK_CLASS(duration_s=2.0).prepare(tmp_path / "again")           # prepare sweeps, and keeps the live one
        assert names[alive] in _registered()
    finally:
        CCTask.unregister(names[alive])
    assert names[alive] not in _registered()
