"""bench/cc/synth: a short offline synthesis of the cc task, then its winner re-measured side by
side with the seeds and every kernel congestion control on the same link.

    .venv/bin/python bench/cc/synth.py [--run runs/cc-synth-X ...] [--rounds 6 --candidates 8 --seed 1
                                        --seeds reno,delay] [--repeats 3] [--duration 4]

Without --run it first runs `policyforge run cc --generator offline ...` (the engine's own CLI).
A synthesis picks its winner by one noisy measurement, so the comparison here measures again:
every scheme `--repeats` times, interleaved (scheme order rotates each repeat), one flow at a
time on the default link (24 Mbit/s, 10 ms each way, 1-BDP droptail). Reports the median.
Writes synth.md, synth.json and synth_winner<N>.c next to this file.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT / "py"), str(ROOT)]

from policyforge.search.report import machine  # noqa: E402
from policyforge.tasks.cc import TASK_CLASS  # noqa: E402

KEYS = ("throughput_mbps", "utilization", "mean_delay_ms", "p95_delay_ms", "loss")


def git_commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "bpf", "kmod", "py/policyforge/tasks/cc", "py/policyforge/testbed",
                            "native/linkem"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return (r.stdout.strip() or "unknown") + (" (+ uncommitted changes in the measured parts)" if dirty else "")


def synthesize(a: argparse.Namespace) -> Path:
    """Runs the engine's CLI once; returns the run directory."""
    run = ROOT / "runs" / time.strftime("cc-synth-%Y%m%d-%H%M%S")
    cmd = [sys.executable, "-m", "policyforge.cli", "run", "cc", "--generator", "offline",
           "--rounds", str(a.rounds), "--candidates-per-round", str(a.candidates), "--workers", "2",
           "--seed", str(a.seed), "-o", f"seeds={a.seeds}", "--out", str(run), "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py")}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return run


def command_of(cfg: dict) -> str:
    """The `policyforge run` command line a stored run config came from."""
    opts = "".join(f" -o {k}={v}" for k, v in sorted(cfg.get("task_options", {}).items()))
    return (f"policyforge run cc --generator {cfg['generator']} --rounds {cfg['rounds']} --candidates-per-round "
            f"{cfg['candidates_per_round']} --workers {cfg['workers']} --seed {cfg['seed']}{opts}")


def read_run(run: Path) -> dict:
    db = sqlite3.connect(f"file:{run / 'store.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    cfg = json.loads(db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
    times = [r[0] for r in db.execute("SELECT finished FROM candidates WHERE finished IS NOT NULL")]
    cands = [dict(r) for r in db.execute("SELECT id, round, operation, status, score, source FROM candidates")]
    base = {r["name"]: r["score"] for r in db.execute("SELECT * FROM baselines")}
    done = [c for c in cands if c["status"] == "evaluated" and c["score"] is not None]
    best = max(done, key=lambda c: c["score"])
    per_round, running = [], float("-inf")
    for r in sorted({c["round"] for c in cands}):
        scores = [c["score"] for c in done if c["round"] == r]
        running = max([running] + scores)
        per_round.append({"round": r, "candidates": sum(c["round"] == r for c in cands),
                          "passed_check": len(scores), "round_best": max(scores, default=None),
                          "best_so_far": running})
    created = float(db.execute("SELECT value FROM meta WHERE key = 'created'").fetchone()[0])
    return {"run": run.name, "command": command_of(cfg), "seeds": cfg.get("task_options", {}).get("seeds", "reno,delay"),
            "minutes": (max(times) - created) / 60 if times else None,
            "winner": best, "baselines_in_run": base, "rounds": per_round,
            "failed_check": sum(c["status"] != "evaluated" for c in cands), "n": len(cands)}


def remeasure(task, policies: dict[str, str], kernel: list[str], repeats: int, work: Path) -> dict[str, list]:
    checks = {}
    for name, src in policies.items():
        c = task.check(src, work / name.replace(":", "_"))
        if not c.ok:
            raise SystemExit(f"{name} fails the {c.stage} check:\n{c.feedback}")
        checks[name] = c
    schemes = list(policies) + kernel
    out: dict[str, list] = {s: [] for s in schemes}
    for rep in range(repeats):
        order = schemes[rep % len(schemes):] + schemes[:rep % len(schemes)]
        for s in order:
            ev = task.evaluate(checks[s], work / s.replace(":", "_")) if s in checks else task._experiment(s)
            if not ev.ok:
                raise SystemExit(f"{s}: {ev.reason}")
            out[s].append({"score": ev.score, **{k: ev.metrics[k] for k in KEYS}})
            print(f"  {s:14s} rep {rep + 1}: score {ev.score:.3f}  {ev.metrics['throughput_mbps']:.1f} Mbit/s  "
                  f"p95 {ev.metrics['p95_delay_ms']:.1f} ms", flush=True)
    return out


def summarize(samples: list[dict]) -> dict:
    row = {k: statistics.median(x[k] for x in samples) for k in ("score",) + KEYS}
    row["score_min"] = min(x["score"] for x in samples)
    row["score_max"] = max(x["score"] for x in samples)
    return row


def write(a, infos: list[dict], table: dict[str, dict]) -> None:
    reno = table["reno"]["score"]
    lines = [
        "# cc: offline synthesis vs. the kernel's congestion controls", "",
        f"Machine: {machine()}. Commit: {git_commit()}. Link: linkem, 24 Mbit/s, 10 ms each way (20 ms RTT), droptail queue of "
        f"one BDP; one iperf3 flow of {a.duration:g} s. Score: throughput / p95 one-way packet delay "
        "(Mbit/s per ms, PolicySmith's), higher is better.", ""]
    for k, info in enumerate(infos):
        win = info["winner"]
        lines += [
            f"## Synthesis {k + 1}: seeds {info['seeds']}", "",
            f"Command: `{info['command']}` ({info['run']}, {info['minutes']:.1f} min wall including the "
            "baselines, 2 workers sharing 2 cores).", "",
            f"{info['n']} candidates, {info['failed_check']} failed a check (offline candidates are safe by "
            f"construction). Winner: candidate {win['id']} (round {win['round']}, {win['operation']}), in-run "
            "score {:.3f}; in-run baselines: ".format(win["score"])
            + ", ".join(f"{n} {v:.3f}" for n, v in sorted(info["baselines_in_run"].items())) + ".", "",
            "| round | candidates | passed | round best | best so far |", "|---|---|---|---|---|"]
        for r in info["rounds"]:
            rb = "—" if r["round_best"] is None else f"{r['round_best']:.3f}"
            lines.append(f"| {r['round']} | {r['candidates']} | {r['passed_check']} | {rb} | "
                         f"{r['best_so_far']:.3f} |")
        lines += ["", f"Winner source: `synth_winner{k + 1}.c`", ""]
        (HERE / f"synth_winner{k + 1}.c").write_text(win["source"])
    runs = " ".join(f"--run runs/{i['run']}" for i in infos)
    lines += [f"## Re-measured side by side ({a.repeats} repeats each, interleaved; median)", "",
              f"Command: `.venv/bin/python bench/cc/synth.py {runs} --repeats {a.repeats} --duration {a.duration:g}`",
              "", "| scheme | score (min–max) | vs reno | Mbit/s | utilization | mean delay ms | p95 delay ms | loss |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in sorted(table.items(), key=lambda kv: -kv[1]["score"]):
        lines.append(f"| {name} | {r['score']:.3f} ({r['score_min']:.3f}–{r['score_max']:.3f}) | "
                     f"{r['score'] / reno:.2f}x | {r['throughput_mbps']:.2f} | {r['utilization']:.3f} | "
                     f"{r['mean_delay_ms']:.1f} | {r['p95_delay_ms']:.1f} | {r['loss'] * 100:.2f} % |")
    lines += ["", "Delays are one-way (10 ms of it is propagation, so the score cannot exceed about 2.4). "
              "`seed:reno` and `seed:delay` are the task's hand-written seeds; winner N is synthesis N's.", ""]
    notes = HERE / "synth_notes.md"           # hand-written reading of the numbers, kept across reruns
    if notes.exists():
        lines += [notes.read_text()]
    (HERE / "synth.md").write_text("\n".join(lines))
    (HERE / "synth.json").write_text(json.dumps({"machine": machine(), "duration_s": a.duration,
                                                 "repeats": a.repeats, "synthesis": infos,
                                                 "remeasured": table}, indent=2, default=str))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, action="append", default=[],
                    help="an existing `policyforge run cc` directory (repeatable)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", default="reno,delay", help="the task's seeds option for a new synthesis")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    a = ap.parse_args()
    runs = [r.resolve() for r in a.run] or [synthesize(a)]
    infos = [read_run(r) for r in runs]
    task = TASK_CLASS(duration_s=a.duration)
    work = Path(tempfile.mkdtemp(prefix="pf-cc-synth-"))
    task.prepare(work / "shared")
    policies = {f"winner{k + 1}": info["winner"]["source"] for k, info in enumerate(infos)}
    policies.update({f"seed:{s.name}": task.render(s.genome) for s in task.seeds()})
    kernel = [s for s in Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
              if not s.startswith("pf_")]
    samples = remeasure(task, policies, kernel, a.repeats, work)
    write(a, infos, {s: summarize(v) for s, v in samples.items()})
    shutil.rmtree(work, ignore_errors=True)
    print((HERE / "synth.md").read_text())


if __name__ == "__main__":
    main()
