"""The example Python task (deadline-aware spot scheduling): its allowlist, its sandboxed
runner, scores that come from policyforge's own replay, and a search through the real CLI."""
import json
import subprocess
import sys

import pytest

from pfhelpers import cli_env
from policyforge import tasks
from policyforge.tasks.spot import sim
from policyforge.tasks.spot.check import SIGNATURE

GOOD = f"""{SIGNATURE}:
    # spot while the slack lasts, then on demand
    slack = time_left - work_left - 2 * overhead
    if on_demand or slack < 2:
        return 2
    return 1 if spot else 0
"""


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    t = tasks.load("spot", traces="8")
    t.prepare(tmp_path_factory.mktemp("spot"))
    return t


@pytest.mark.parametrize("body, needle", [
    ("    import os\n    return 2", "imports are not allowed"),
    ("    return ().__class__", "Attribute is not allowed"),
    ("    return spot.__class__", "Attribute is not allowed"),
    ("    return open('/etc/shadow')", "only these calls are allowed"),
    ("    while True:\n        pass\n    return 2", "loops are not allowed"),
    ("    f = lambda: 2\n    return f()", "Lambda is not allowed"),
    ("    return 'spot'", "only numbers may be constants"),
    ("    return work_left / time_left", "divide with pf_div"),
    ("    return decide(time_left, work_left, spot, on_spot, on_demand, overhead, spot_rate)", "only these calls"),
    ("    return __builtins__", "'__builtins__' is not defined here"),
])
def test_the_allowlist_refuses_what_is_not_arithmetic(task, tmp_path, body, needle):
    out = task.check(f"{SIGNATURE}:\n{body}\n", tmp_path)
    assert not out.ok and out.stage == "static" and needle in out.feedback, out.feedback
    assert out.feedback.startswith("policy.py:")


def test_top_level_code_and_other_signatures_are_refused(task, tmp_path):
    out = task.check("import os\n" + GOOD, tmp_path / "a")
    assert not out.ok and "only `def decide(" in out.feedback
    out = task.check("def decide(a, b):\n    return 2\n", tmp_path / "b")
    assert not out.ok and "must be written `def decide(time_left" in out.feedback


def test_scores_come_from_the_trusted_replay(task, tmp_path):
    check = task.check(GOOD, tmp_path)
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path)
    assert ev.ok, ev.reason
    # the same policy, run and replayed here, gives the same score
    ns = {"__builtins__": {}}
    exec(compile(GOOD, "policy.py", "exec"), ns)
    here = task._score([sim.run(ns["decide"], a, 48, 72, 0.5) for a in task.traces])
    assert here.score == ev.score and ev.metrics["late"] == 0
    # what a runner could claim is only decisions, which are scored as they are
    assert not task._score([[9] * 10] * len(task.traces)).ok
    assert not task._score([[2] * 100] * len(task.traces)).ok            # longer than the deadline
    assert task._score([[]] * len(task.traces)).score == 0.0              # nothing run: late everywhere


def test_a_policy_that_raises_is_a_failed_evaluation_not_a_crash(task, tmp_path):
    src = f"{SIGNATURE}:\n    x = pf_div(1, 0)\n    if spot:\n        y = 1\n    return y\n"
    out = task.check(src, tmp_path)
    assert not out.ok and out.stage == "probe" and "UnboundLocalError" in out.feedback


def test_baselines_rank_as_expected(task, tmp_path):
    scores = {b.name: b.evaluation.score for b in task.baselines(tmp_path)}
    assert scores["greedy"] > scores["on-demand"] and scores["uniform-progress"] > scores["on-demand"]
    assert 0.95 < scores["on-demand"] <= 1.0


def test_a_search_through_the_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "policyforge", "run", "spot", "--rounds", "3", "--candidates-per-round",
                        "6", "--out", str(tmp_path / "run"), "-q"], capture_output=True, text=True, env=cli_env(),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["winner"]["score"] >= best["baselines"]["on-demand"]["score"]
    assert (tmp_path / "run" / "winner" / "decide.py").read_text().startswith("def decide(")


def test_python_answers_are_deduplicated_without_their_comments(tmp_path):
    answers = [{"content": f"```python\n{GOOD}```"},
               {"content": "Same idea:\n```python\n" + GOOD.replace("# spot while", "# again, spot while") + "```"}]
    replay = tmp_path / "answers.jsonl"
    replay.write_text("\n".join(json.dumps(a) for a in answers) + "\n")
    r = subprocess.run([sys.executable, "-m", "policyforge", "run", "spot", "--generator", "replay", "--replay",
                        str(replay), "--rounds", "1", "--candidates-per-round", "2", "--workers", "1",
                        "--out", str(tmp_path / "run"), "-q"], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    import sqlite3
    conn = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    statuses = [s for s, in conn.execute("SELECT status FROM candidates WHERE generator='replay' ORDER BY id")]
    conn.close()
    assert statuses == ["evaluated", "duplicate"]
