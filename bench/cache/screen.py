"""bench/cache/screen: the multi-fidelity screen, measured. The same search with every candidate
run on the whole trace, and with a screen on the first tenth of the trace (`-o screen=N/10`:
a candidate whose prefix hit ratio is more than `-o screen_slack` below the best of the earlier
rounds, moved onto the prefix, is not run in full; docs/cache.md), side by side per development
workload and search seed.

    .venv/bin/python bench/cache/screen.py [--seeds 1,2] [--rounds 20] [--per-round 25] [--slack 0.005]

Each search: `policyforge run cache --generator offline --rounds R --candidates-per-round C
--workers 2 --seed S -o trace=T` (+ `-o screen=N/10 -o screen_slack=X`). Per cell: the winner's
miss ratio (ranked baselines beaten / 25), wall time, candidates screened out. Writes screen.md
and screen.json beside this file.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "py"))
from synthesis import DEV, search  # noqa: E402
from policyforge.search.report import git_commit, machine  # noqa: E402
from policyforge.tasks.cache import TASK_CLASS  # noqa: E402


def n_requests(trace: str, work: Path) -> int:
    task = TASK_CLASS(trace=trace)
    task.prepare(work / "n_req" / trace.replace(":", "_").replace(",", "_").replace("=", ""))
    return task.n_req


def screened(work: Path) -> int:
    """Candidates screened out in the newest run under work."""
    run = max(work.iterdir(), key=lambda p: p.stat().st_mtime)
    con = sqlite3.connect(run / "store.sqlite")
    try:
        return con.execute("SELECT COUNT(*) FROM candidates WHERE status = 'screened'").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=25)
    ap.add_argument("--slack", type=float, default=0.005)
    a = ap.parse_args()
    commit = git_commit()
    seeds = [int(s) for s in a.seeds.split(",")]
    work = Path(tempfile.mkdtemp(prefix="pf-bench-screen-"))
    runs = work / "runs"
    runs.mkdir()
    rows: dict[str, dict] = {}
    for trace in DEV:
        n = n_requests(trace, work)
        configs = {"whole": [], "screen": ["-o", f"screen={n // 10}", "-o", f"screen_slack={a.slack}"]}
        rows[trace] = {"n_req": n, "cells": {}}
        for seed in seeds:
            for name, extra in configs.items():
                r = search(trace, [*extra, "--seed", str(seed)], a.rounds, a.per_round, runs)
                if "error" not in r:
                    r["screened"] = screened(runs)
                rows[trace]["cells"][f"{name}:{seed}"] = r
                print(trace, name, seed, r.get("winner_miss"), r.get("wall_s"), r.get("screened"), file=sys.stderr,
                      flush=True)
    lines = ["# bench/cache/screen — the multi-fidelity screen against whole-trace evaluation", "",
             f"Machine: {machine()}  ", f"Command: `python bench/cache/screen.py {' '.join(sys.argv[1:])}`  ",
             f"Commit: {commit}  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"Each search: `policyforge run cache --generator offline --rounds {a.rounds} --candidates-per-round "
             f"{a.per_round} --workers 2 --seed S -o trace=T`; `screen` adds `-o screen=N/10 -o screen_slack={a.slack}` "
             "(N: the trace's requests). Cells: the winner's miss ratio (ranked baselines beaten / 25), wall time, "
             "candidates screened out after the prefix. Lower miss ratio is better.", "",
             "| workload | requests | seed | whole: winner | whole: wall (s) | screen: winner | screen: wall (s) | "
             "screened | wall saved |", "|---|---|---|---|---|---|---|---|---|"]
    saved, same, lost = [], 0, 0
    for trace, row in rows.items():
        for seed in seeds:
            w, s = row["cells"][f"whole:{seed}"], row["cells"][f"screen:{seed}"]
            if "error" in w or "error" in s:
                lines.append(f"| {trace} | {row['n_req']} | {seed} | {w.get('error', '')} | | {s.get('error', '')} | | | |")
                continue
            saved.append(1 - s["wall_s"] / w["wall_s"])
            same += s["winner_miss"] <= w["winner_miss"]
            lost += s["beats_all"] < w["beats_all"]
            lines.append(f"| {trace} | {row['n_req']:,} | {seed} | {w['winner_miss']:.4f} ({w['beats']}/{w['ranked']}) | "
                         f"{w['wall_s']:.0f} | {s['winner_miss']:.4f} ({s['beats']}/{s['ranked']}) | {s['wall_s']:.0f} | "
                         f"{s['screened']}/{s['candidates']} | {saved[-1]:+.0%} |")
    if saved:
        lines += ["", f"Wall time saved: median {statistics.median(saved):.0%} (range {min(saved):.0%} to "
                      f"{max(saved):.0%}). The screened search's winner is as good or better in {same} of {len(saved)} "
                      f"searches; it loses the win over every ranked baseline in {lost}.", ""]
    (HERE / "screen.md").write_text("\n".join(lines))
    (HERE / "screen.json").write_text(json.dumps(rows, indent=2, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.pop("OPENAI_API_KEY", None)
    main()
