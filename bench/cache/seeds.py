"""bench/cache/seeds: the two last search components of bench/cache/synthesis.md, refinement alone
(`--elites 0`) and refinement with the MAP-Elites archive (the default), at several search seeds,
because one seed per cell cannot tell differences of a few 0.0001 from luck.

    .venv/bin/python bench/cache/seeds.py [--seeds 1,2,3] [--rounds 10] [--per-round 24]
    .venv/bin/python bench/cache/seeds.py --seeds 1,2,3,4 --rounds 20 --per-round 25 --default-only --name seeds500
    .venv/bin/python bench/cache/seeds.py --seeds 1,2,3,4 --rounds 20 --per-round 25 --default-only --orders 2 \
        --name seeds500_two

Each cell is `policyforge run cache --generator offline --rounds 10 --candidates-per-round 24
--workers 2 --seed S -o trace=T` (plus `--elites 0` for +refine, and `-o orders=2` with --orders 2:
two priority orders mixed by learned weights). Writes NAME.md and NAME.json
(default seeds.md, seeds.json) beside this file.
"""
from __future__ import annotations

import argparse
import json
import os
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

CONFIGS = {"+refine": ["--elites", "0"], "+elites (default)": []}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=24)
    ap.add_argument("--default-only", action="store_true", help="only the default search (no +refine column)")
    ap.add_argument("--name", default="seeds", help="output files NAME.md and NAME.json")
    ap.add_argument("--orders", type=int, default=1, choices=(1, 2), help="priority orders (-o orders=N)")
    a = ap.parse_args()
    commit = git_commit()          # before the run writes its results into the tree
    configs = {k: v for k, v in CONFIGS.items() if not a.default_only or not v}
    seeds = [int(s) for s in a.seeds.split(",")]
    work = Path(tempfile.mkdtemp(prefix="pf-bench-seeds-"))
    rows: dict[str, dict[str, dict[int, dict]]] = {}
    for trace in DEV:
        rows[trace] = {}
        for name, extra in configs.items():
            rows[trace][name] = {}
            for seed in seeds:
                r = search(trace, [*extra, "--seed", str(seed), "-o", f"orders={a.orders}"], a.rounds, a.per_round,
                           work)
                rows[trace][name][seed] = r
                print(trace, name, seed, r.get("winner_miss"), r.get("beats"), file=sys.stderr, flush=True)
    lines = ["# bench/cache/seeds — refinement and the MAP-Elites archive across search seeds", "",
             f"Machine: {machine()}  ", f"Command: `python bench/cache/seeds.py {' '.join(sys.argv[1:])}`  ",
             f"Commit: {commit}  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"Each cell: the winner's miss ratio (ranked baselines it beats / 25) of `policyforge run cache "
             f"--generator offline --rounds {a.rounds} --candidates-per-round {a.per_round} --workers 2 --seed S "
             f"-o trace=T -o orders={a.orders}`, with `--elites 0` for +refine. Lower is better.", "",
             "| workload | best baseline | " + " | ".join(f"{c} seed {s}" for c in configs for s in seeds)
             + " | " + " | ".join(f"{c} mean" for c in configs) + " |",
             "|---|---|" + "---|" * (len(configs) * (len(seeds) + 1))]
    wins = {c: 0 for c in configs}
    for trace, cfgs in rows.items():
        first = next(iter(next(iter(cfgs.values())).values()))
        cells, means = [], []
        for c in configs:
            vals = []
            for s in seeds:
                r = cfgs[c][s]
                if "error" in r:
                    cells.append("error")
                    continue
                vals.append(r["winner_miss"])
                wins[c] += r["beats_all"]
                cells.append(f"{r['winner_miss']:.4f} ({r['beats']}/{r['ranked']})")
            means.append(f"{statistics.fmean(vals):.4f}" if vals else "-")
        best = f"{first.get('best_baseline', '?')} {first.get('best_baseline_miss', float('nan')):.4f}"
        lines.append(f"| {trace} | {best} | " + " | ".join(cells) + " | " + " | ".join(means) + " |")
    n = len(DEV) * len(seeds)
    lines += ["", "Searches whose winner beats all 25 ranked baselines: "
              + ", ".join(f"{c} {w} of {n}" for c, w in wins.items()) + ".", ""]
    (HERE / f"{a.name}.md").write_text("\n".join(lines))
    (HERE / f"{a.name}.json").write_text(json.dumps(rows, indent=2, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.pop("OPENAI_API_KEY", None)
    main()
