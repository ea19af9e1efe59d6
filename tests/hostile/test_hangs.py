"""Attack: hang the run. Before: a grandchild that kept stdout/stderr open made the sandbox
block forever (and resume hung again on the same candidate); SIGINT was ignored until the
candidate's wall-clock limit; after SIGKILL of policyforge the candidate lived on.

Now a job's processes die with it (pid namespace, cgroup), its output is collected with a
deadline, Ctrl-C kills every running job at once, and a job dies with policyforge."""
import json
import signal
import sqlite3
import subprocess
import sys
import time

from hostile import pf, replay_run, sandbox_processes
from pfhelpers import cli_env, interruptible

TOY = "toytask:ToyTask"
GOOD = "double f(double x) { return x * x + 3 * x + 1; }\n"
# the grandchild keeps the job's stdout and stderr open for a minute
PIPE_HOLDER = """
double f(double x) {
    static int forked;
    if (!forked++ && fork() == 0) { setsid(); if (fork() == 0) { sleep(60); } _exit(0); }
    return x * x + 3 * x + 1;
}
"""
SLEEPER = "double f(double x) { static int slept; if (!slept++) sleep(8); return x; }\n"


def test_a_grandchild_holding_the_pipes_does_not_hold_the_run(tmp_path):
    t0 = time.monotonic()
    r, rows, run = replay_run(tmp_path, TOY, [PIPE_HOLDER, GOOD], {"timeout_s": 20})
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 40                  # not the grandchild's 60 s
    assert [x["status"] for x in rows] == ["evaluated", "evaluated"]
    again = pf(tmp_path, "run", "--resume", str(run))  # nothing left to do, nothing to hang on
    assert again.returncode == 0 and time.monotonic() - t0 < 60


def _start(tmp_path, sources):
    replay = tmp_path / "answers.jsonl"
    replay.write_text("".join(json.dumps({"content": f"```c\n{s}```"}) + "\n" for s in sources))
    return subprocess.Popen([sys.executable, "-m", "policyforge", "run", TOY, "--generator", "replay", "--replay",
                             str(replay), "--rounds", "1", "--candidates-per-round", str(len(sources)), "--workers",
                             "2", "--repairs", "0", "-o", "timeout_s=120", "--out", str(tmp_path / "run"), "-q"],
                            cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)


def _wait_for_sleeping_candidates(pid: int, n: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if sum("/prog" in p for p in sandbox_processes(pid)) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"the candidates never started: {sandbox_processes(pid)}")


def test_ctrl_c_stops_the_run_within_two_seconds_and_leaves_nothing(tmp_path):
    p = _start(tmp_path, [SLEEPER, SLEEPER.replace("slept", "zzz")])
    _wait_for_sleeping_candidates(p.pid, 2)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert time.monotonic() - t0 < 2.0, err
    assert p.returncode == 130 and "interrupted; a run continues with --resume RUN" in err
    assert "Traceback" not in err
    time.sleep(0.2)
    assert sandbox_processes(p.pid) == []
    # what was interrupted is not recorded as the candidate's failure: resume runs it again
    resumed = pf(tmp_path, "run", "--resume", str(tmp_path / "run"), "-q", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(tmp_path / "run" / "store.sqlite") as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM candidates WHERE round=1")]
    assert statuses == ["evaluated", "evaluated"]


def test_killing_policyforge_kills_its_candidates(tmp_path):
    p = _start(tmp_path, [SLEEPER])
    _wait_for_sleeping_candidates(p.pid, 1)
    p.kill()
    p.communicate(timeout=30)
    deadline = time.monotonic() + 2
    while sandbox_processes(p.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(p.pid) == []
