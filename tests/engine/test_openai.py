"""The openai generator against a local server speaking the chat-completions protocol."""
import json
from pathlib import Path

import pytest

from policyforge.search.controller import Controller, RunConfig

from openai_server import RecordedChatServer

DATA = Path(__file__).parent / "data"


def _recorded():
    return [json.loads(ln)["content"] for ln in (DATA / "toy_responses.jsonl").read_text().splitlines()]


@pytest.fixture
def server(monkeypatch):
    with RecordedChatServer(_recorded(), fail_first=1) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield srv


def test_repair_prompt_carries_the_compiler_stderr(server, tmp_path):
    cfg = RunConfig(task="toytask:ToyTask", generator="openai", models=[("gpt-4o-mini", 1.0)],
                    rounds=1, candidates_per_round=2, workers=1, repairs=2)
    ctl = Controller(tmp_path / "run", cfg, quiet=True)
    ctl.generator.backoff_s = 0.01
    ctl.run()
    # 3 chat requests: two proposals, then one repair (the 500 was retried, not recorded).
    assert len(server.requests) == 3
    repair = server.requests[2]["messages"]
    failed = ctl.store.attempts(ctl.store.round_candidates(1)[0]["id"])
    assert failed[0]["ok"] == 0 and failed[0]["stage"] == "compile"
    stderr = failed[0]["feedback"]
    assert "'y' undeclared" in stderr
    # The exact checker output is in the last user message of the repair request.
    assert repair[-1]["role"] == "user" and stderr.strip() in repair[-1]["content"]
    assert "x * y + 3" in repair[-2]["content"]   # the failed source, as the assistant's turn
    assert stderr.strip() in failed[1]["prompt"] and failed[1]["response"]   # the store keeps the repair prompt
    first, second = ctl.store.round_candidates(1)
    assert first["status"] == "evaluated" and first["score"] == 0.0      # repaired candidate scored
    assert second["status"] == "evaluated" and second["score"] < 0
    # Token and cost accounting: every request counted, priced at gpt-4o-mini's rates.
    tin = sum(c["tokens_in"] for c in ctl.store.candidates())
    assert tin > 0 and ctl.store.total_cost() > 0
    assert ctl.store.best()["id"] == first["id"]


def test_budget_stops_the_run(monkeypatch, tmp_path):
    with RecordedChatServer(_recorded()) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        cfg = RunConfig(task="toytask:ToyTask", generator="openai", models=[("gpt-4o", 1.0)],
                        rounds=3, candidates_per_round=2, workers=1, budget_usd=1e-9)
        ctl = Controller(tmp_path / "run", cfg, quiet=True)
        result = ctl.run()
        assert "budget" in result["stop_reason"]
        assert len(srv.requests) == 1   # the first call spends the budget; no further call starts


# --- an endpoint gone wrong, through the real CLI ---------------------------------------
import subprocess  # noqa: E402
import sys  # noqa: E402

from pfhelpers import cli_env  # noqa: E402

BROKEN = {
    "http-500-forever": (500, b'{"error": {"message": "overloaded", "type": "server_error"}}'),
    "not-json": (200, b"<html>a proxy's login page</html>"),
    "no-choices": (200, b'{"id": "x", "object": "chat.completion"}'),
    "empty-choices": (200, b'{"id": "x", "object": "chat.completion", "choices": []}'),
    "not-an-object": (200, b"[1, 2, 3]"),
}


def _run_openai(tmp_path, env, out="run"):
    return subprocess.run([sys.executable, "-m", "policyforge", "run", "toytask:ToyTask", "--generator", "openai",
                           "--rounds", "2", "--candidates-per-round", "3", "--out", str(tmp_path / out), "-q"],
                          capture_output=True, text=True, env=env, timeout=300)


def _one_line(stderr):
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("name", BROKEN)
def test_a_run_that_generates_nothing_fails_naming_the_endpoint(tmp_path, name):
    with RecordedChatServer([], always=BROKEN[name]) as srv:
        env = dict(cli_env(), OPENAI_API_KEY="k", OPENAI_BASE_URL=srv.base_url, POLICYFORGE_BACKOFF_S="0.01")
        r = _run_openai(tmp_path, env)
        assert srv.requests, "the endpoint was never asked"
    assert r.returncode == 1
    line = _one_line(r.stderr)
    assert srv.base_url in line and "proposed nothing" in line
    if name == "http-500-forever":
        assert "500" in line and "5 tries" in line
    # the seeds' results stay stored for --resume
    assert (tmp_path / "run" / "store.sqlite").exists()


def test_an_unreachable_endpoint_fails_naming_it(tmp_path):
    env = dict(cli_env(), OPENAI_API_KEY="k", OPENAI_BASE_URL="http://127.0.0.1:9/v1", POLICYFORGE_BACKOFF_S="0.01")
    r = _run_openai(tmp_path, env)
    assert r.returncode == 1
    line = _one_line(r.stderr)
    assert "http://127.0.0.1:9/v1" in line and "Connection error" in line


def test_a_missing_key_is_named_before_anything_is_created(tmp_path):
    env = dict(cli_env(), OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    r = _run_openai(tmp_path, env)
    assert r.returncode == 2
    assert "OPENAI_API_KEY" in _one_line(r.stderr) and "http://127.0.0.1:9/v1" in r.stderr
    assert not (tmp_path / "run").exists()


def test_an_endpoint_failing_mid_run_exits_non_zero_and_keeps_what_it_made(tmp_path):
    # two good answers, then nothing but refusals: the run stops, says so, and keeps both
    with RecordedChatServer(_recorded()[:2]) as srv:
        env = dict(cli_env(), OPENAI_API_KEY="k", OPENAI_BASE_URL=srv.base_url, POLICYFORGE_BACKOFF_S="0.01")
        r = _run_openai(tmp_path, env)
    assert r.returncode == 1
    line = _one_line(r.stderr)
    assert "stopped after 2 proposals" in line and "400" in line
    import sqlite3
    conn = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM candidates WHERE generator='openai'").fetchone()[0] == 2
    conn.close()
