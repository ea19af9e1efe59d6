"""bench/cache/template_ab: the cache template at another commit beside the working tree's, on
this machine, side by side in one run (a speed change needs both on the same machine: the
native-LRU ratio of the same template differs by half between an Intel Xeon and an AMD EPYC VM).

    .venv/bin/python bench/cache/template_ab.py [--base REV] [--rounds 7]

Per trace (cloudPhysicsIO, demo): libCacheSim's native LRU, and the LRU and two-class priorities
in the template of REV (native/cache at that commit, from git archive) and of the working tree,
every path once a round, best of the rounds, requests per CPU second, pinned to one core.
Writes template_ab.md and template_ab.json beside this file.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))
from policyforge.search.report import git_commit, machine  # noqa: E402
from policyforge.tasks.cache import task as cache_task  # noqa: E402
from policyforge.template import Template  # noqa: E402

PRIORITIES = {"LRU": "last_access", "two-class": "(add last_access (ifgt freq 1.5 (mul 4.0 cache_size) 0.0))"}


def template_at(rev: str, into: Path) -> Path:
    """native/cache of commit `rev`, unpacked under `into`"""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "native/cache"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "native" / "cache" / "pq_template.c"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="HEAD~1")
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    commit = git_commit()
    base = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", a.base], check=True, capture_output=True,
                          text=True).stdout.strip()
    os.sched_setaffinity(0, {0})
    work = Path(tempfile.mkdtemp(prefix="pf-bench-ab-"))
    work.chmod(0o755)
    sources = {base: template_at(a.base, work / "base"), "working tree": ROOT / "native" / "cache" / "pq_template.c"}
    rows = {}
    for trace in ("cloudPhysicsIO", "demo"):
        paths = {"libCacheSim native LRU": ["--algo", "lru"]}
        for label, path in sources.items():
            cache_task.TEMPLATE = lambda p=path: Template(p)   # the task builds its machinery from this file
            task = cache_task.CacheTask(trace=trace, baselines="LRU")
            task.prepare(work / f"{trace}-{len(paths)}")
            for name, expr in PRIORITIES.items():
                check = task.check(task.render({"priority": expr}), work / f"{trace}-{len(paths)}-{name}")
                if not check.ok:
                    raise SystemExit(f"template_ab.py: {name} at {label}: {check.feedback[:300]}")
                paths[f"{name} priority, template at {label}"] = task.plugin_args(check)
        best: dict[str, float] = {}
        for _ in range(a.rounds):
            for name, args in paths.items():
                r = task._simulate(task.trace, args)
                best[name] = max(best.get(name, 0.0), r["req_per_cpu_s"])
        rows[trace] = best
        print(trace, best, file=sys.stderr, flush=True)
    cmd = "python bench/cache/template_ab.py " + " ".join(sys.argv[1:])
    lines = ["# bench/cache/template_ab — the cache template at two commits, side by side", "",
             f"Machine: {machine()}, pinned to one core  ", f"Command: `{cmd}`  ", f"Commit: {commit}  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"Requests per CPU second, best of {a.rounds} interleaved rounds, unit sizes, cache = 10 % of the "
             f"footprint; base: {base}. This machine is shared and noisy: a few % either way is noise.", ""]
    for trace, best in rows.items():
        native = best["libCacheSim native LRU"]
        lines += [f"## {trace}", "", "| path | req/s | vs native LRU | vs the base template |", "|---|---|---|---|"]
        for name, v in best.items():
            other = name.replace("working tree", base) if "working tree" in name else None
            vs = f"{v / best[other]:.2f}x" if other in best else ""
            lines.append(f"| {name} | {v / 1e6:.2f} M | {v / native:.2f}x | {vs} |")
        lines.append("")
    here = Path(__file__).parent
    (here / "template_ab.md").write_text("\n".join(lines))
    (here / "template_ab.json").write_text(json.dumps({"machine": machine(), "command": cmd, "base": base,
                                                         "req_per_cpu_s": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
