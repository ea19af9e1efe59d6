"""--model-choice ucb: calls go to the model that has improved the search most per dollar,
learned from the store, and a resumed run plans exactly what an uninterrupted one would."""
import hashlib
import sqlite3
import subprocess
import sys

from openai_server import RecordedChatServer
from pfhelpers import cli_env
from policyforge.search.models import plan


def test_untried_models_go_first_then_the_better_one_gets_more():
    assert plan(["a", "b"], {}, 2) == ["a", "b"]
    slots = plan(["a", "b"], {"a": (4, 2.0), "b": (4, 0.0)}, 50)
    assert slots.count("a") > 2 * slots.count("b") and slots.count("b") >= 1   # b is still explored


def _answer(body):
    """'good' writes a near miss of the target curve that depends on the request; 'bad' writes
    code that never compiles."""
    if body["model"] == "bad":
        return "Here it is:\n```c\ndouble f(double x) { return x * q; }\n```"
    h = int(hashlib.sha256(body["messages"][-1]["content"].encode()).hexdigest()[:6], 16)
    c = 0.5 + (h % 1000) / 1000.0
    return f"```c\ndouble f(double x) {{ return x * x + 3 * x + {c:.3f}; }}\n```"


def _run(tmp_path, env, out, *extra):
    return subprocess.run([sys.executable, "-m", "policyforge", "run", *extra, "-q"] if extra and extra[0] == "--resume"
                          else [sys.executable, "-m", "policyforge", "run", "toytask:ToyTask", "--generator", "openai",
                                "--model", "bad", "--model", "good", "--model-choice", "ucb", "--price", "bad=1/1",
                                "--price", "good=1/1", "--repairs", "0", "--candidates-per-round", "4", "--seed", "2",
                                "--workers", "1", "--out", str(tmp_path / out), "-q", *extra],
                          capture_output=True, text=True, env=env, timeout=300)


def _models(db):
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT round, slot, model, status FROM candidates WHERE generator='openai' "
                        "ORDER BY round, slot").fetchall()
    conn.close()
    return rows


def test_ucb_learns_which_model_helps_and_resumes_exactly(tmp_path):
    with RecordedChatServer([], responder=_answer) as srv:
        env = dict(cli_env(), OPENAI_API_KEY="k", OPENAI_BASE_URL=srv.base_url)
        full = _run(tmp_path, env, "full", "--rounds", "5")
        assert full.returncode == 0, full.stderr
        part = _run(tmp_path, env, "part", "--rounds", "2")
        assert part.returncode == 0, part.stderr
        resumed = _run(tmp_path, env, "part", "--resume", str(tmp_path / "part"), "--rounds", "5")
        assert resumed.returncode == 0, resumed.stderr
    rows = _models(tmp_path / "full" / "store.sqlite")
    assert rows == _models(tmp_path / "part" / "store.sqlite")
    assert all(st in ("check_failed", "duplicate") for _, _, m, st in rows if m == "bad")
    late = [m for r, _, m, _ in rows if r >= 3]
    assert late.count("good") > late.count("bad"), late
    assert "bad" in [m for _, _, m, _ in rows]             # it was tried
