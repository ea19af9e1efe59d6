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
