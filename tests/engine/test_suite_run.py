"""Suite runs through the real CLI, for every task: train workloads scored together, held-out
workloads evaluated only at the end, the winner chosen by train score (no peeking)."""
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pfhelpers import cli_env

PF = [sys.executable, "-m", "policyforge"]


def _pf(*args, timeout=900):
    return subprocess.run(PF + list(args), capture_output=True, text=True, env=cli_env(), timeout=timeout)


def _suite(run: Path) -> dict:
    return json.loads((run / "best.json").read_text())["suite"]


def _train_scores(run: Path) -> dict[int, float]:
    con = sqlite3.connect(run / "store.sqlite")
    try:
        return {r[0]: r[1] for r in con.execute("SELECT id, score FROM candidates WHERE status='evaluated'")}
    finally:
        con.close()


def test_cache_winner_is_best_on_train_even_when_a_finalist_is_better_held_out(tmp_path):
    """Seeds only (LRU, LFU, FIFO priorities): on the demo trace LRU's wins; on a Zipf trace
    LFU's is better. The winner stays LRU's, and the report shows LFU's held-out lead."""
    run = tmp_path / "run"
    r = _pf("run", "cache", "--rounds", "0", "-q", "--out", str(run), "-o", "trace=demo", "-o", "heldout.trace=zipf",
            "-o", "seeds=lru,lfu,fifo")
    assert r.returncode == 0, r.stderr
    s = _suite(run)
    scores = _train_scores(run)
    winner = max(scores, key=lambda c: (scores[c], -c))
    assert s["winner_label"] == f"winner ({winner})"
    [row] = s["heldout"]
    assert row["workload"] == "trace=zipf" and len(row["candidates"]) == len(scores)     # every finalist
    held = {lab: c["score"] for lab, c in row["candidates"].items()}
    assert s["best_on_heldout"] != s["winner_label"]
    assert held[s["best_on_heldout"]] > held[s["winner_label"]]
    assert "held-out workloads" in r.stdout and "Held out" in (run / "report.html").read_text()

    # resume with more rounds: the baselines come back from the store, round 0 is untouched,
    # the held-out table follows the new finalists
    r = _pf("run", "--resume", str(run), "--rounds", "1", "-q")
    assert r.returncode == 0, r.stderr
    after = _train_scores(run)
    assert {c: after[c] for c in scores} == scores
    con = sqlite3.connect(run / "store.sqlite")
    finalists = json.loads(con.execute("SELECT value FROM meta WHERE key='heldout'").fetchone()[0])["finalists"]
    con.close()
    top = sorted(after, key=lambda c: (-after[c], c))[:5]
    assert finalists == top


def test_cache_suite_file_scores_the_mean_margin_over_train_workloads(tmp_path):
    (tmp_path / "s.toml").write_text('aggregate = "mean"\nfinalists = 2\n[options]\ncache_size = 0.05\n'
                                     '[[train]]\ntrace = "demo"\n[[train]]\ntrace = "scan-loop"\n'
                                     '[[heldout]]\nname = "zipf-5%"\ntrace = "zipf"\n')
    run = tmp_path / "run"
    r = _pf("run", "cache", "--rounds", "0", "-q", "--out", str(run), "--suite", str(tmp_path / "s.toml"))
    assert r.returncode == 0, r.stderr
    best = json.loads((run / "best.json").read_text())
    margins = best["winner"]["metrics"]["margins"]
    assert set(margins) == {"trace=demo", "trace=scan-loop"}
    assert best["winner"]["score"] == pytest.approx(sum(margins.values()) / 2)
    assert [r["workload"] for r in best["suite"]["heldout"]] == ["zipf-5%"]
    assert len(best["suite"]["heldout"][0]["candidates"]) == 2
    # the suite is part of the run: a resume cannot change it, and bad suites are one line
    r = _pf("run", "--resume", str(run), "--suite", str(tmp_path / "s.toml"))
    assert r.returncode == 2 and "drop --suite" in r.stderr
    r = _pf("run", "cache", "--suite", str(tmp_path / "s.toml"), "-o", "trace=a", "-o", "trace=b",
            "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
    r = _pf("run", "cache", "-o", "trace=demo", "-o", "heldout.trace=/nonexistent.bin", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "workload trace=nonexistent.bin" in r.stderr and not (tmp_path / "y").exists()


def test_eplb_suite_with_heldout_workload(tmp_path):
    run = tmp_path / "run"
    r = _pf("run", "eplb", "--rounds", "0", "-q", "--out", str(run), "-o", "steps=300", "-o", "layers=8",
            "-o", "workload=static", "-o", "workload=bursty", "-o", "heldout.workload=drifting",
            "-o", "suite.finalists=2")
    assert r.returncode == 0, r.stderr
    s = _suite(run)
    assert [t["workload"] for t in s["train"]] == ["workload=static", "workload=bursty"]
    assert s["heldout"][0]["workload"] == "workload=drifting" and len(s["heldout"][0]["candidates"]) >= 1
    assert all(c["score"] is not None for c in s["heldout"][0]["candidates"].values())


def test_cc_suite_of_two_links_with_a_heldout_link(tmp_path):
    run = tmp_path / "run"
    r = _pf("run", "cc", "--rounds", "0", "-q", "--workers", "1", "--out", str(run), "-o", "duration_s=2",
            "-o", "seeds=reno", "-o", "rate_mbps=12", "-o", "rate_mbps=24", "-o", "heldout.delay_ms=20")
    assert r.returncode == 0, r.stderr
    s = _suite(run)
    assert [t["workload"] for t in s["train"]] == ["rate_mbps=12", "rate_mbps=24"]
    [row] = s["heldout"]
    assert row["workload"] == "delay_ms=20" and row["best_baseline"] in ("cubic", "reno", "bbr")
    assert all(c["score"] is not None for c in row["candidates"].values())
