"""A chain of the recorded corpus (bench/llm/corpus) through a real run: the openai
generator against the local server speaking the OpenAI protocol, the real cache checker.
Every repair request carries the checker's output, and from the second repair on the
earlier attempts' errors; the store keeps each attempt; the report shows the repairs."""
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from openai_server import RecordedChatServer
from pfhelpers import ROOT, cli_env


def _chain():
    """A cache chain whose first two attempts break a rule and whose last one keeps them."""
    for ln in (ROOT / "bench" / "llm" / "corpus" / "cache.jsonl").read_text().splitlines():
        item = json.loads(ln)
        atts = item["attempts"]
        if len(atts) >= 3 and not atts[0]["valid"] and not atts[1]["valid"] and atts[-1]["valid"]:
            return item
    raise AssertionError("the corpus has no chain of three or more attempts")


def test_a_recorded_chain_runs_with_its_history_in_each_repair(tmp_path):
    item = _chain()
    answers = [a["response"] for a in item["attempts"]]
    with RecordedChatServer(answers) as srv:
        env = dict(cli_env(), OPENAI_API_KEY="k", OPENAI_BASE_URL=srv.base_url)
        r = subprocess.run([sys.executable, "-m", "policyforge", "run", "cache", "-o", "trace=zipf:n_req=20000,n_objs=2000",
                            "--generator", "openai", "--model", "recorded", "--rounds", "1",
                            "--candidates-per-round", "1", "--repairs", str(len(answers) - 1), "--workers", "1",
                            "--out", str(tmp_path / "run"), "-q"], capture_output=True, text=True, env=env, timeout=600)
        requests = list(srv.requests)
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    conn.row_factory = sqlite3.Row
    cand = conn.execute("SELECT * FROM candidates WHERE generator='openai'").fetchone()
    atts = conn.execute("SELECT * FROM attempts WHERE candidate=? ORDER BY attempt", (cand["id"],)).fetchall()
    conn.close()
    assert len(atts) == len(requests) and cand["repairs"] == len(atts) - 1
    assert atts[0]["ok"] == 0 and atts[1]["ok"] == 0
    # the first repair: the checker's output for attempt 0
    first_repair = requests[1]["messages"][-1]["content"]
    assert atts[0]["feedback"].strip() in first_repair
    # the second: the output for attempt 1, and attempt 0's error as history
    second = requests[2]["messages"][-1]["content"]
    assert atts[1]["feedback"].strip() in second
    assert "Earlier attempts at this candidate failed too" in second
    assert f"failed the {atts[0]['stage']} check: {atts[0]['feedback'].strip().splitlines()[0][:60]}" in second
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Checks and repairs" in html and "Winner lineage" in html
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["attempts"]["models"]["recorded"]["calls"] == len(requests)
