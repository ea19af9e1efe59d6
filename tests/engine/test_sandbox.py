"""Hostile candidates are contained: the run finishes and records why each one failed."""
import json
import subprocess
import sys
import time

import pytest

from policyforge import sandbox
from policyforge.search.controller import Controller, RunConfig

from pfhelpers import cli_env

HOSTILE = {
    "loop": "double f(double x) { volatile double y = x; for (;;) y += 1; return y; }",
    "memory": ("double f(double x) { for (;;) { char *p = malloc(1 << 20); if (!p) abort();"
               " for (int i = 0; i < (1 << 20); i += 4096) p[i] = 1; } return x; }"),
    "segfault": "double f(double x) { *(volatile int *)0 = 1; return x; }",
    "forkbomb": "double f(double x) { for (int i = 0; i < 100000; i++) fork(); sleep(30); return x; }",
    "good": "double f(double x) { return x * x + 3 * x + 1; }",
}


def _replay_file(tmp_path):
    path = tmp_path / "hostile.jsonl"
    with open(path, "w") as f:
        for name in ("loop", "memory", "segfault", "forkbomb", "good"):
            f.write(json.dumps({"content": f"```c\n{HOSTILE[name]}\n```", "model": name}) + "\n")
    return path


def test_sandbox_kills_a_process_group_on_timeout():
    t0 = time.monotonic()
    r = sandbox.run(["sh", "-c", "sleep 100 & sleep 100"], timeout_s=0.5)
    assert r.timed_out and "timeout" in r.reason
    assert time.monotonic() - t0 < 5
    # no 'sleep 100' survived
    out = subprocess.run(["pgrep", "-f", "sleep 100"], capture_output=True, text=True).stdout
    assert out.strip() == ""


def test_sandbox_reports_signals_and_exit_codes():
    assert sandbox.run(["sh", "-c", "kill -SEGV $$"], timeout_s=5).reason == "killed by SIGSEGV"
    assert sandbox.run(["sh", "-c", "exit 3"], timeout_s=5).reason == "exit status 3"
    ok = sandbox.run(["echo", "hi"], timeout_s=5)
    assert ok.ok and ok.stdout == "hi\n" and ok.reason == ""
    with pytest.raises(sandbox.SandboxError, match="/nonexistent/prog does not exist"):
        sandbox.run(["/nonexistent/prog"], timeout_s=5)
    with pytest.raises(sandbox.SandboxError, match="no-such-compiler is not installed: run `make deps`"):
        sandbox.run(["no-such-compiler"], timeout_s=5)


def test_hostile_candidates_are_contained_and_recorded(tmp_path):
    cfg = RunConfig(task="toytask:ToyTask", task_options={"timeout_s": 2.0}, generator="replay",
                    rounds=1, candidates_per_round=5, workers=2, seed=0, repairs=0,
                    replay_file=str(_replay_file(tmp_path)))
    t0 = time.monotonic()
    ctl = Controller(tmp_path / "run", cfg, quiet=True)
    ctl.run()
    assert time.monotonic() - t0 < 60
    rows = {r["model"]: r for r in ctl.store.candidates(round=1)}
    assert set(rows) == {"loop", "memory", "segfault", "forkbomb", "good"}
    assert rows["good"]["status"] == "evaluated" and rows["good"]["score"] == 0.0
    assert rows["loop"]["status"] == "failed" and "timeout" in rows["loop"]["reason"]
    assert rows["memory"]["status"] == "failed" and rows["memory"]["reason"]
    assert "SIGSEGV" in rows["segfault"]["reason"] or "SIGABRT" in rows["segfault"]["reason"]
    assert rows["forkbomb"]["status"] == "failed" and "timeout" in rows["forkbomb"]["reason"]
    assert "processes" in rows["forkbomb"]["reason"]
    # The fork bomb left nothing behind.
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout
    assert left.strip() == ""
    # The winner is the good candidate, and the report exists.
    assert ctl.store.best()["model"] == "good"


def test_cli_reports_bad_input_in_one_line(tmp_path):
    def pf(*args):
        return subprocess.run([sys.executable, "-m", "policyforge", *args], capture_output=True, text=True,
                              env=cli_env(), cwd=tmp_path, timeout=60)
    for args, needle in [(["run", "nosuchtask"], "unknown task 'nosuchtask'"),
                         (["run", "toytask:ToyTask", "-o", "bogus=1"], "unknown option 'bogus'"),
                         (["run", "toytask:ToyTask", "-o", "delay_ms=abc"], "bad value for option delay_ms"),
                         (["check", "toytask:ToyTask", "missing.c"], "cannot read missing.c"),
                         (["run", "--resume", str(tmp_path / "nothing")], "holds no run to resume"),
                         (["run", "toytask:ToyTask", "--generator", "replay"], "needs --replay FILE")]:
        r = pf(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_a_machine_without_the_sandbox_gets_one_line_and_no_run(tmp_path):
    """No bubblewrap on PATH: nothing may run unsandboxed; the run stops with one clear line."""
    (tmp_path / "good.c").write_text("double f(double x) { return x; }\n")
    env = dict(cli_env(), PATH="/nonexistent")
    for args in (["check", "toytask:ToyTask", "good.c"],
                 ["run", "toytask:ToyTask", "--rounds", "1", "--candidates-per-round", "2", "--out", "r"]):
        r = subprocess.run([sys.executable, "-m", "policyforge", *args], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
        assert errors == ["policyforge: error: bubblewrap (bwrap) is not installed: run `make deps`"], r.stderr
        assert r.stderr.strip().splitlines()[-1] == errors[0]
