"""bench/eplb/genomes.py: does the EPLB search space hold rules that beat DeepSeek's?

    .venv/bin/python bench/eplb/genomes.py [--winner RUN/best.json ...]

Hand-made genomes in the offline generator's DSL, each checked and evaluated through the
task's own interface (g++ -Wall -Werror, sandboxed runner, validator, plan on window i,
score on window i+1) at L=58, E=256, R=288, G=8, N=4, M=32, against the reference rules,
on the search workload (drifting, seed 0) and on workloads the rules were not chosen on
(drifting seed 1, bursty, static). --winner adds the winner of a `policyforge run eplb` (its
best.json) as one more row. Writes bench/eplb/genomes.md and genomes.json.
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

from policyforge.search.report import machine  # noqa: E402
from policyforge.tasks.eplb import TASK_CLASS  # noqa: E402

REFERENCE = {"expected_load": "recent", "replica_score": "(div load count)", "pack_key": "weight",
             "bin_cost": "bin_load"}
# Each changes one or two rules of the reference; why each might help is in genomes.md.
GENOMES = {
    "reference (DeepSeek's rules)": {},
    "rising experts +10%": {"expected_load": "(ifgt recent history (mul recent 1.1) recent)"},
    "log-damped replica score": {"replica_score": "(div load (mul (log load) count))"},
    "rising +10% and log-damped score": {"expected_load": "(ifgt recent history (mul recent 1.1) recent)",
                                         "replica_score": "(div load (mul (log load) count))"},
}
WORKLOADS = [("drifting", 0, "search workload"), ("drifting", 1, "held out: other seed"),
             ("bursty", 0, "held out: bursts, no drift"), ("static", 0, "held out: skew only")]


def add_winners(paths: list[str]) -> list[str]:
    """Rows for synthesis winners; returns the commands of their runs."""
    commands = []
    for path in paths:
        best = json.loads(Path(path).read_text())
        win = best["winner"]
        name = f"synthesis winner ({Path(best['run']).name}, candidate {win['id']})"
        GENOMES[name] = {h: win["genome"][h] for h in REFERENCE if win["genome"][h] != REFERENCE[h]}
        command = "policyforge" + best["command"][best["command"].index(" run "):]
        commands.append(f"{name}: `{command}` (commit {best['commit']}, {best['candidates']} candidates, "
                        f"{best['date']})")
    return commands


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--winner", action="append", default=[], help="best.json of a policyforge run eplb")
    runs = add_winners(ap.parse_args().winner)
    rows = {name: {} for name in GENOMES}
    with tempfile.TemporaryDirectory(prefix="pf-eplb-genomes-") as tmp:
        for kind, seed, _ in WORKLOADS:
            task = TASK_CLASS(workload=kind, seed=seed)
            work = Path(tmp) / f"{kind}-{seed}"
            task.prepare(work / "shared")
            for i, (name, change) in enumerate(GENOMES.items()):
                check = task.check(task.render(dict(REFERENCE, **change)), work / f"g{i}")
                ev = task.evaluate(check, work / f"g{i}") if check.ok else None
                rows[name][f"{kind}-{seed}"] = {
                    "valid": bool(ev and ev.ok), "reason": (ev.reason if ev else check.feedback[:200]),
                    "balancedness": ev.metrics.get("balancedness") if ev and ev.ok else None,
                    "worst_window": ev.metrics.get("worst_window") if ev and ev.ok else None,
                    "runtime_ms": ev.metrics.get("runtime_ms") if ev and ev.ok else None}
                print(f"{kind}-{seed} {name}: {rows[name][f'{kind}-{seed}']}", flush=True)
    write(rows, runs)


def write(rows: dict, runs: list[str]) -> None:
    here = Path(__file__).parent
    cmd = "python bench/eplb/genomes.py" + "".join(" --winner RUN/best.json" for _ in runs)
    (here / "genomes.json").write_text(json.dumps({"machine": machine(), "command": cmd, "runs": runs, "genomes": {
        n: dict(REFERENCE, **c) for n, c in GENOMES.items()}, "results": rows}, indent=2))
    keys = [f"{k}-{s}" for k, s, _ in WORKLOADS]
    ref = rows["reference (DeepSeek's rules)"]
    lines = ["# bench/eplb/genomes — hand-made rules against DeepSeek's, next-window balancedness", "",
             f"Machine: {machine()}  ", f"Command: `{cmd}`  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             "Shape: L=58, E=256, R=288, G=8, N=4, M=32; 1000 steps, window 100: plan on window i, score on "
             "i+1 (9 pairs); every plan validated (a replica for every expert with load, R/M slots per GPU)", "",
             "| rules | " + " | ".join(f"{k}-{s} ({why})" for k, s, why in WORKLOADS) + " | runtime (ms, search workload) |",
             "|---|" + "---|" * len(WORKLOADS) + "---|"]
    for name in GENOMES:
        cells = []
        for k in keys:
            r = rows[name][k]
            if not r["valid"]:
                cells.append(f"invalid: {r['reason']}")
                continue
            d = r["balancedness"] - ref[k]["balancedness"] if ref[k]["valid"] else 0.0
            cells.append(f"{r['balancedness']:.6f}" + (f" ({d:+.4f})" if name != "reference (DeepSeek's rules)" else ""))
        rt = rows[name][keys[0]]["runtime_ms"]
        lines.append(f"| {name} | " + " | ".join(cells) + (f" | {rt:.2f} |" if rt else " | - |"))
    lines.append("")
    for name in list(GENOMES)[1:]:
        won = [k for k in keys if rows[name][k]["valid"] and ref[k]["valid"]
               and rows[name][k]["balancedness"] > ref[k]["balancedness"]]
        lines.append(f"- {name} beats the reference on: {', '.join(won) or 'none'}")
    if runs:
        lines += ["", "Synthesis runs (offline generator, default options: drifting workload, seed 0):", ""]
        lines += [f"- {r}" for r in runs]
    lines += ["", "Genomes (offline-generator DSL; `history` is the mean window load so far):", ""]
    for name, change in GENOMES.items():
        g = dict(REFERENCE, **change)
        lines.append(f"- {name}: " + ", ".join(f"`{h}` = `{g[h]}`" for h in REFERENCE))
    (here / "genomes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
