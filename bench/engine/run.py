"""bench/engine: candidates evaluated per minute with 1 and 2 workers, and the engine's own
overhead per candidate (everything but compiling and simulating).

    .venv/bin/python bench/engine/run.py [--task cache] [--rounds 4] [--per-round 12]

Overhead per candidate = proposal time (selection + generation, main thread)
                       + in-worker bookkeeping (pipeline wall - check - evaluate)
                       + store writes, all measured by the controller itself.
Writes bench/engine/results.md and results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "tests" / "engine"))

from policyforge.search.controller import Controller, RunConfig  # noqa: E402
from policyforge.search.report import git_commit, machine  # noqa: E402


def measure(task: str, options: dict, workers: int, rounds: int, per_round: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"pf-bench-engine-{workers}w-"))
    cfg = RunConfig(task=task, task_options=options, generator="offline", rounds=rounds,
                    candidates_per_round=per_round, workers=workers, seed=7)
    ctl = Controller(out, cfg, quiet=True)
    ctl.run()
    # Wall time of rounds 1..R only: baselines and seeds are not part of the candidate loop.
    done = dict(ctl.store._conn().execute("SELECT round, finished FROM rounds").fetchall())
    wall = done[rounds] - done[0]
    cands = [c for c in ctl.store.candidates() if c["round"] >= 1]
    n = len(cands)
    check = sum(c["check_s"] for c in cands)
    ev = sum(c["eval_s"] for c in cands)
    gen = sum(c["gen_s"] for c in cands)
    pipe = sum(c["pipeline_s"] for c in cands)
    in_worker = pipe - check - ev
    per_cand = (check + ev + gen + in_worker) / n
    overhead = (gen + in_worker) / n
    return {"workers": workers, "candidates": n, "wall_s": wall, "per_minute": 60 * n / wall,
            "check_s_per_cand": check / n, "eval_s_per_cand": ev / n, "gen_s_per_cand": gen / n,
            "bookkeeping_s_per_cand": in_worker / n, "overhead_s_per_cand": overhead,
            "overhead_pct": 100 * overhead / per_cand,
            "statuses": {s: sum(1 for c in cands if c["status"] == s) for s in {c["status"] for c in cands}}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="cache")
    ap.add_argument("-o", "--option", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--per-round", type=int, default=12)
    a = ap.parse_args()
    commit = git_commit()          # before the run writes its results into the tree
    opts = dict(kv.split("=", 1) for kv in a.option)
    results = [measure(a.task, opts, w, a.rounds, a.per_round) for w in (1, 2)]
    here = Path(__file__).parent
    cmd = "python bench/engine/run.py " + " ".join(sys.argv[1:])
    (here / "results.json").write_text(json.dumps({"machine": machine(), "command": cmd, "task": a.task,
                                                   "options": opts, "results": results}, indent=2))
    lines = [f"# bench/engine — {a.task} task, offline generator",
             "", f"Machine: {machine()}  ", f"Command: `{cmd}`  ", f"Commit: {commit}  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| workers | candidates | wall s | cand/min | check s/cand | eval s/cand | gen s/cand | bookkeeping s/cand | engine overhead |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['workers']} | {r['candidates']} | {r['wall_s']:.1f} | {r['per_minute']:.1f} | "
                     f"{r['check_s_per_cand']:.3f} | {r['eval_s_per_cand']:.3f} | {r['gen_s_per_cand']:.4f} | "
                     f"{r['bookkeeping_s_per_cand']:.4f} | {r['overhead_pct']:.2f} % |")
    speedup = results[1]["per_minute"] / results[0]["per_minute"]
    lines += ["", f"2 workers / 1 worker throughput: {speedup:.2f}x (2 cores).",
              "Engine overhead = (proposal generation + in-worker bookkeeping and store writes) / "
              "(that + compile/verify + evaluate), per candidate. Target: under 5 %."]
    (here / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
