"""bench/cache: speed of the priority-queue template and the baselines' miss ratios.

    .venv/bin/python bench/cache/run.py

1. Requests per second on the same trace, side by side in one run (best of 7 rounds, each path once a round, one core):
   libCacheSim's native LRU, the template with a simple priority (LRU) and with a
   feature-heavy one (ghost history, percentiles, logs), the Python PluginCache path of
   the libcachesim wheel running the same template and priorities in Python
   (policyforge.tasks.cache.pyref: same evictions, tested), the template with two orders
   (the lecar-like seed of -o orders=2) and, as the cheapest Python
   plugin, an LRU written with an OrderedDict; and the cheapest possible C plugin
   (floor_plugin.c: libCacheSim's plugin path by itself).
   Rates are per CPU second of the simulation (the machine is shared; wall-clock rates
   are recorded too). Targets: template >= 0.5x native LRU, >= 20x the Python plugin.
2. Miss ratios of every baseline and Belady on cloudPhysicsIO at 10 % of the footprint.
Writes bench/cache/results.md and results.json.
"""
from __future__ import annotations

import collections
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))

from policyforge.search.report import git_commit, machine  # noqa: E402
from policyforge.tasks.cache import TASK_CLASS, pyref  # noqa: E402

HEAVY = ("double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{\n"
         "    double recency = pf_div(ctx->now - obj->last_access + 1.0, ctx->age_p50 + 1.0);\n"
         "    double freq = pf_log(obj->count + obj->ghost_count) * pf_div(obj->count, ctx->count_p90 + 1.0);\n"
         "    double ghost = obj->ghost_count > 0 ? pf_div(obj->ghost_age, obj->ghost_gap + 1.0) : 0.0;\n"
         "    return obj->last_access + 1000.0 * freq - recency + sqrt(ghost) * pf_max(ctx->ghost_hits, 0.1)\n"
         "           - pf_div(obj->size, ctx->size_p50 + 1.0);\n}\n")


def heavy_py(o, c):
    """HEAVY, in Python, for the Python template"""
    recency = pyref.pf_div(c.now - o.last_access + 1.0, c.age_p50 + 1.0)
    freq = pyref.pf_log(o.count + o.ghost_count) * pyref.pf_div(o.count, c.count_p90 + 1.0)
    ghost = pyref.pf_div(o.ghost_age, o.ghost_gap + 1.0) if o.ghost_count > 0 else 0.0
    return (o.last_access + 1000.0 * freq - recency + math.sqrt(ghost) * pyref.pf_max(c.ghost_hits, 0.1)
            - pyref.pf_div(o.size, c.size_p50 + 1.0))


# LRU's evictions and queue work, with the ghost history and the percentile statistics compiled
# in (priority() reads them, times 0): what those features cost by themselves
LRU_FEATURES = ("double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{\n"
                "    return obj->last_access + 0.0 * (obj->ghost_count + ctx->count_p50);\n}\n")
FEAT = "template, LRU priority reading ghost history and percentiles (x 0)"

PY_LRU = "Python PluginCache, the template in Python, LRU priority"
PY_HEAVY = "Python PluginCache, the template in Python, feature-heavy priority"
PY_ODICT = "Python PluginCache, LRU with an OrderedDict (cheapest Python plugin)"


def python_rps(make_cache, trace: Path, n_req: int) -> float:
    import libcachesim as lcs
    params = lcs.ReaderInitParam(ignore_obj_size=True)
    reader = lcs.TraceReader(str(trace), lcs.TraceType.ORACLE_GENERAL_TRACE, params)
    cache = make_cache()
    t0 = time.process_time()
    cache.process_trace(reader, max_req=n_req)
    return n_req / (time.process_time() - t0)


def odict_lru(size: int, hashpower: int):
    import libcachesim as lcs

    def init(params):
        return collections.OrderedDict()

    def hit(d, req):
        d.move_to_end(req.obj_id)

    def miss(d, req):
        d[req.obj_id] = True

    def evict(d, req):
        return d.popitem(last=False)[0]

    def remove(d, obj_id):
        d.pop(obj_id, None)

    def free(d):
        d.clear()

    return lcs.PluginCache(size, init, hit, miss, evict, remove, free, hashpower=hashpower)


def floor_plugin(work: Path) -> Path:
    from policyforge.native import native_dir
    so = work / "floor_plugin.so"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{native_dir() / 'include'}",
                    str(Path(__file__).parent / "floor_plugin.c"), "-o", str(so)], check=True)
    return so


LOAD = ""


# two orders (-o orders=2): the lecar-like seed, recency and the fewest accesses kept through the
# ghost history, mixed by learned weights (the second order is a plain heap: no runs)
LECAR = {"priority": "last_access", "priority2": "(sub (mul total 1e9) last_access)"}
TWO = "template, two orders (lecar-like seed)"


def main() -> None:
    global LOAD
    LOAD = " ".join(open("/proc/loadavg").read().split()[:3])
    commit = git_commit()          # before the run writes its results into the tree
    os.sched_setaffinity(0, {0})
    work = Path(tempfile.mkdtemp(prefix="pf-bench-cache-"))
    work.chmod(0o755)      # the sandbox's jobs (a uid of their own) read the floor plugin here
    rows, wall = {}, {}
    floor = floor_plugin(work)
    for trace in ("cloudPhysicsIO", "demo"):
        task = TASK_CLASS(trace=trace)
        task.prepare(work / trace)
        checks = {"template, LRU priority": task.check(task.render({"priority": "last_access"}), work / trace / "lru"),
                  FEAT: task.check(LRU_FEATURES, work / trace / "lru-features"),
                  "template, feature-heavy priority": task.check(HEAVY, work / trace / "heavy")}
        two = TASK_CLASS(trace=trace, orders=2, baselines="LRU")   # the same trace, two orders
        two.prepare(work / trace / "two")
        two_check = two.check(two.render(LECAR), work / trace / "lecar")
        for c in (*checks.values(), two_check):
            assert c.ok, c.feedback
        paths = {"libCacheSim native LRU": ["--algo", "lru"],
                 **{name: task.plugin_args(c) for name, c in checks.items()},
                 TWO: two.plugin_args(two_check),
                 "pluginCache floor (C FIFO ring, no policy work)": ["--plugin", str(floor)]}
        n_py = min(task.n_req, 100_000)
        size, hp = task.sizes[0], task._hashpower(task.sizes)
        py = {PY_LRU: lambda: pyref.plugin_cache(lambda o, c: o.last_access, size, hp, ghosts=False, stats=False),
              PY_HEAVY: lambda: pyref.plugin_cache(heavy_py, size, hp),
              PY_ODICT: lambda: odict_lru(size, hp)}
        res, res_wall = {}, {}
        for _ in range(7):      # every path once a round, best of 7: this machine is noisy (+-30 %)
            for name, args in paths.items():
                r = task._simulate(task.trace, args)
                res.setdefault(name, []).append(r["req_per_cpu_s"])
                res_wall.setdefault(name, []).append(r["req_per_s"])
            for name, make in py.items():
                res.setdefault(name, []).append(python_rps(make, task.trace.path, n_py))
        rows[trace] = {k: max(v) for k, v in res.items()}
        rows[trace]["n_req"] = task.n_req
        wall[trace] = {k: max(v) for k, v in res_wall.items()}
    # baselines on cloudPhysicsIO at 10 %
    task = TASK_CLASS(trace="cloudPhysicsIO")
    task.prepare(work / "cp10")
    base = sorted(((b.name, 1 - b.evaluation.score, b.ranked) for b in task.baselines(work / "cp10")),
                  key=lambda x: x[1])
    here = Path(__file__).parent
    cmd = "python bench/cache/run.py"
    (here / "results.json").write_text(json.dumps({"machine": machine(), "command": cmd, "speed_per_cpu_s": rows,
                                                   "speed_per_wall_s": wall,
                                                   "baselines_cloudPhysicsIO_10pct": base}, indent=2))
    lines = ["# bench/cache", "", f"Machine: {machine()}, pinned to one core  ", f"Command: `{cmd}`  ", f"Commit: {commit}  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"Load average at the start: {LOAD}", "",
             "## Requests per CPU second (best of 7, interleaved; unit object size, cache = 10 % of footprint)", ""]
    same = {"template, LRU priority": PY_LRU, "template, feature-heavy priority": PY_HEAVY}
    for trace, r in rows.items():
        native = r["libCacheSim native LRU"]
        lines += [f"### {trace} ({r['n_req']:,} requests)", "",
                  "| path | req/s | vs native LRU | vs the same priority in Python | vs the OrderedDict plugin |",
                  "|---|---|---|---|---|"]
        for k, v in r.items():
            if k == "n_req":
                continue
            vs_same = f"{v / r[same[k]]:.1f}x" if k in same else ""
            lines.append(f"| {k} | {v / 1e6:.2f} M | {v / native:.2f}x | {vs_same} | {v / r[PY_ODICT]:.1f}x |")
        lines.append("")
    for trace, r in rows.items():
        for k, py in same.items():
            t, native = r[k], r["libCacheSim native LRU"]
            lines.append(f"Targets on {trace}, {k}: >= 0.5x native LRU: {'met' if t >= 0.5 * native else 'NOT met'} "
                         f"({t / native:.2f}x); >= 20x the Python plugin running the same priority: "
                         f"{'met' if t >= 20 * r[py] else 'NOT met'} ({t / r[py]:.1f}x); against the cheapest "
                         f"Python plugin (OrderedDict LRU): {t / r[PY_ODICT]:.1f}x.  ")
    lines += ["", "The floor row is libCacheSim's plugin path with no policy work: it runs near native speed, so",
              "the gap is the template's own work per request (the priority queue, its map of objects and ghosts,",
              "the ghost ring and statistics: several random memory accesses, and priority() itself).",
              "The template's queue puts nodes in two sorted runs where their key fits and in a heap otherwise",
              "(see pq_template.c): priorities that grow with time (LRU, and streams like now + c) run mostly",
              "in O(1); the feature-heavy priority here sends about a third of its nodes to the heap.",
              "The row that reads the ghost history and percentiles times 0 evicts like LRU and does LRU's queue",
              "work: it is what those two features cost by themselves (a ghost record and map entry per",
              "evicted object, the ghost ring, the percentile sample every 1024 requests). Any priority that",
              "reads both runs below it; the feature-heavy one adds its arithmetic (a log, a square root,",
              "divisions) and its share of heap work. Two orders (-o orders=2) keep a second queue, a plain heap",
              "with a node per update, a ghost ring twice as long, and draw an order per eviction: they are not",
              "held to the speed targets (docs/cache.md).",
              "The Python template (policyforge.tasks.cache.pyref) evicts exactly like the C one for",
              "priorities that do not read percentiles (tests/cache/test_pyref.py). Native LRU itself is only",
              "~10-16x the OrderedDict plugin here, so 20x that plugin would be above native LRU's own speed.", "",
              "The Python plugin paths are measured on the first 100,000 requests (they are too slow for more).",
              "Every C path runs in pf-cachesim inside policyforge's sandbox, locked down once its plugin is",
              "loaded, with the simulation loop in the calling thread (libCacheSim's loop of",
              "simulate_with_multi_caches, same counts); a candidate's priority() is its own library,",
              "preloaded beside the template's machinery (docs/cache.md).",
              "Wall-clock rates are in results.json (`speed_per_wall_s`).", "",
              "## Baselines on cloudPhysicsIO, 10 % of the footprint (miss ratio, lower is better)", "",
              "| policy | miss ratio |", "|---|---|"]
    lines += [f"| {n}{'' if rk else ' (bound)'} | {m:.4f} |" for n, m, rk in base]
    (here / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
