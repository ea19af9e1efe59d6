"""bench/engine/sandbox_ab.py: what checking and running candidates safely costs the search.

    .venv/bin/python bench/engine/sandbox_ab.py [--before 9bc502d] [--rounds 4] [--per-round 12] [--repeats 3]

Candidates per minute of the demo search (cache task, demo trace, offline generator, seed 7)
with 1 and 2 workers, measured side by side: the tree at commit --before (regex rules,
compilers and simulations as root with rlimits only) against this tree (parser and allowlist,
object audit, every compiler, probe and simulation in the bubblewrap sandbox with seccomp and
cgroups, trusted recounts). Runs alternate (before, after, before, after, ...) so that both
see the same machine; the best of --repeats is kept for each. The --before tree is unpacked
with `git archive` into .cache/ and its native parts are built there once.
A second table times the simulation itself, side by side and best of 7 on one core: the
before tree's pf-cachesim, run directly, with the whole template and an LRU priority in one
plugin, against this tree's pf-cachesim in the sandbox (locked down, the priority in its own
preloaded library), on cloudPhysicsIO and the demo trace (requests per CPU second).
Writes bench/engine/sandbox_ab.md and sandbox_ab.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))

from policyforge.search.report import machine  # noqa: E402

# Runs in a child interpreter with the tree under test first on the path; prints one JSON line.
CHILD = r"""
import json, sys, tempfile
from pathlib import Path
tree, workers, rounds, per_round = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# this venv's editable install redirects `policyforge` to the checkout: the tree under test wins
sys.meta_path = [f for f in sys.meta_path if type(f).__name__ != "ScikitBuildRedirectingFinder"]
sys.path = [tree + "/py"] + [p for p in sys.path if p not in (%(root)r, %(root)r + "/py")]
from policyforge.search.controller import Controller, RunConfig
out = Path(tempfile.mkdtemp(prefix="pf-sandbox-ab-"))
out.chmod(0o755)
cfg = RunConfig(task="cache", task_options={}, generator="offline", rounds=rounds,
                candidates_per_round=per_round, workers=workers, seed=7)
ctl = Controller(out / "run", cfg, quiet=True)
ctl.run()
done = dict(ctl.store._conn().execute("SELECT round, finished FROM rounds").fetchall())
cands = [c for c in ctl.store.candidates() if c["round"] >= 1]
wall = done[rounds] - done[0]
print(json.dumps({"candidates": len(cands), "wall_s": wall, "per_minute": 60 * len(cands) / wall,
                  "check_s": sum(c["check_s"] for c in cands) / len(cands),
                  "eval_s": sum(c["eval_s"] for c in cands) / len(cands),
                  "best": ctl.store.best()["score"], "module": __import__("policyforge").__file__}))
""" % {"root": str(ROOT)}


def before_tree(commit: str) -> tuple[Path, Path]:
    """The tree at `commit` and its native dir, built once under .cache/."""
    tree = ROOT / ".cache" / f"bench-before-{commit}"
    native = tree / "inst" / "policyforge" / "_native"
    if (native / "bin" / "pf-cachesim").exists():
        return tree, native
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    import pybind11
    pin = dict(line.split("=", 1) for line in (ROOT / "native/cache/libcachesim.pin").read_text().splitlines()
               if line.startswith("LIBCACHESIM_"))
    sdist = ROOT / ".cache" / f"libcachesim-{pin['LIBCACHESIM_VERSION']}.tar.gz"
    build = tree / "build"
    print(f"building {commit}'s native parts in {build} (once) ...", file=sys.stderr)
    subprocess.run(["cmake", "-S", str(tree), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                    f"-DPF_LIBCACHESIM_SDIST={sdist}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
                    f"-DPython_EXECUTABLE={sys.executable}", "-DPF_PARTS=cache"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    subprocess.run(["cmake", "--install", str(build), "--prefix", str(tree / "inst")], check=True,
                   capture_output=True)
    return tree, native


def one(tree: Path, native: Path | None, workers: int, rounds: int, per_round: int) -> dict:
    env = dict(os.environ)
    env.pop("POLICYFORGE_NATIVE_DIR", None)
    if native is not None:
        env["POLICYFORGE_NATIVE_DIR"] = str(native)
    r = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(workers), str(rounds), str(per_round)],
                       capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if r.returncode != 0:
        raise SystemExit(f"the search in {tree} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def simulation_speed(old_native: Path) -> dict:
    """req/s per CPU second of the same LRU priority: before (old driver, one plugin, no
    sandbox) and after (new driver in the sandbox, preloaded priority)."""
    from policyforge.tasks.cache import TASK_CLASS
    work = Path(tempfile.mkdtemp(prefix="pf-sandbox-ab-sim-"))
    work.chmod(0o755)
    out = {}
    for trace in ("cloudPhysicsIO", "demo"):
        task = TASK_CLASS(trace=trace)
        task.prepare(work / trace)
        check = task.check(task.render({"priority": "last_access"}), work / trace / "lru")
        assert check.ok, check.feedback
        one = work / trace / "one"
        one.mkdir()
        (one / "p.c").write_text(task.full_source(check.checked_source, check.info["features"]))
        subprocess.run(["gcc", "-O2", "-fPIC", "-shared", *task._includes(), "p.c", "-o", "p.so", "-lm"], cwd=one,
                       check=True)
        old_cmd = ["taskset", "-c", "0", str(old_native / "bin" / "pf-cachesim"),
                   *task._simulate_command(task.trace, ["--plugin", str(one / "p.so")])[1:]]
        best = {"before": 0.0, "after": 0.0}
        for _ in range(7):
            r = json.loads(subprocess.run(old_cmd, capture_output=True, text=True, check=True).stdout)
            best["before"] = max(best["before"], r["req_per_cpu_s"])
            os.sched_setaffinity(0, {0})          # the sandbox's job inherits the core
            try:
                r = task._simulate(task.trace, task.plugin_args(check))
            finally:
                os.sched_setaffinity(0, set(range(os.cpu_count())))
            best["after"] = max(best["after"], r["req_per_cpu_s"])
        out[trace] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="9bc502d")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--per-round", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    old_tree, old_native = before_tree(a.before)
    after = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    runs: dict[str, list[dict]] = {}
    for rep in range(a.repeats):
        for workers in (1, 2):
            for side, tree, native in (("before", old_tree, old_native), ("after", ROOT, None)):
                r = one(tree, native, workers, a.rounds, a.per_round)
                runs.setdefault(f"{side}-{workers}", []).append(r)
                print(f"repeat {rep + 1} {side:6} {workers} worker(s): {r['per_minute']:.1f} candidates/min "
                      f"(check {r['check_s']:.3f} s, evaluate {r['eval_s']:.3f} s a candidate)", file=sys.stderr)
    best = {k: max(v, key=lambda r: r["per_minute"]) for k, v in runs.items()}
    sim = simulation_speed(old_native)
    here = Path(__file__).parent
    cmd = "python bench/engine/sandbox_ab.py " + " ".join(sys.argv[1:])
    (here / "sandbox_ab.json").write_text(json.dumps(
        {"machine": machine(), "command": cmd, "before": a.before, "after": after + (" (+ changes)" if dirty else ""),
         "load_at_start": load, "runs": runs, "best": best, "simulation_req_per_cpu_s": sim}, indent=2))
    lines = ["# bench/engine/sandbox_ab — the demo search before and after the sandbox and checker", "",
             f"Machine: {machine()}  ", f"Command: `{cmd}`  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the start: {load}  ",
             f"Before: commit {a.before} (regex rules; compilers and candidates as root under rlimits).  ",
             f"After: commit {after}{' with uncommitted changes' if dirty else ''} (parser + allowlist, object "
             "audit, everything in the sandbox, trusted recounts).", "",
             f"Cache task, demo trace, offline generator, seed 7, {a.rounds} rounds x {a.per_round} candidates; "
             f"best of {a.repeats} alternating runs. Candidates/min counts rounds 1..{a.rounds} (not the baselines).", "",
             "| workers | before cand/min | after cand/min | after / before | check s/cand before / after | "
             "evaluate s/cand before / after |", "|---|---|---|---|---|---|"]
    for w in (1, 2):
        b, f = best[f"before-{w}"], best[f"after-{w}"]
        lines.append(f"| {w} | {b['per_minute']:.1f} | {f['per_minute']:.1f} | {f['per_minute'] / b['per_minute']:.2f}x | "
                     f"{b['check_s']:.3f} / {f['check_s']:.3f} | {b['eval_s']:.3f} / {f['eval_s']:.3f} |")
    same = all(abs(best[f"before-{w}"]["best"] - best[f"after-{w}"]["best"]) < 1e-12 for w in (1, 2))
    lines += ["", f"Same winner score before and after: {'yes' if same else 'NO'} "
              f"({best['after-1']['best']:.6f}). Target: after >= 0.90x before.", "",
              "The simulation alone, LRU priority (requests per CPU second, best of 7, one core):", "",
              "| trace | before: old pf-cachesim, one plugin, no sandbox | after: sandbox, locked down, preloaded priority "
              "| after / before |", "|---|---|---|---|"]
    for trace, r in sim.items():
        lines.append(f"| {trace} | {r['before'] / 1e6:.2f} M | {r['after'] / 1e6:.2f} M | {r['after'] / r['before']:.2f}x |")
    lines += ["", "Every run, in order: `sandbox_ab.json` (`runs`)."]
    (here / "sandbox_ab.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
