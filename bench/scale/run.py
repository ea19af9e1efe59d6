"""bench/scale: what the Ray executor costs per evaluation, and what a cluster would buy.

    .venv/bin/python bench/scale/run.py [--rounds 3] [--per-round 12] [--trace demo]

The same seeded cache search (offline generator) three ways, one after the other in one run:
local threads (2 workers), Ray on this one node (a local Ray, 2 CPUs), and Ray on two nodes
started here (`ray start --head` + `ray start --address`, 1 CPU each). Per candidate the
controller records its pipeline wall time and, measured inside the worker, the check and
evaluation times; pipeline - check - evaluation is the dispatch and bookkeeping overhead. The
Ray executor's extra overhead is its median minus the local median, stated against the median
evaluation time. Then a projection, from these measured numbers, of a PolicySmith-scale study.
Writes bench/scale/results.md and results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))
# Ray keeps an auth token under $HOME/.ray; a private HOME keeps this bench's clusters apart
os.environ["HOME"] = tempfile.mkdtemp(prefix="pf-bench-scale-home-")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

from policyforge.search.controller import Controller, RunConfig  # noqa: E402
from policyforge.search.report import git_commit, machine  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")


def search(executor: str, address: str | None, trace: str, rounds: int, per_round: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"pf-bench-scale-{executor}-"))
    cfg = RunConfig(task="cache", task_options={"trace": trace}, generator="offline", rounds=rounds,
                    candidates_per_round=per_round, workers=2, seed=11, executor=executor, ray_address=address)
    t0 = time.monotonic()
    ctl = Controller(out, cfg, quiet=True)
    ctl.run()
    total = time.monotonic() - t0
    done = dict(ctl.store._conn().execute("SELECT round, finished FROM rounds").fetchall())
    wall = done[rounds] - done[0]                          # the candidate loop: rounds 1..R
    cands = [c for c in ctl.store.candidates() if c["round"] >= 1 and c["status"] in ("evaluated", "screened")]
    over = [c["pipeline_s"] - c["check_s"] - c["eval_s"] for c in cands]
    rows = [(c["id"], c["source_hash"], c["status"], c["score"]) for c in ctl.store.candidates()]
    eval_s = [c["eval_s"] for c in cands]
    rate = [m["req_per_s"] for m in (json.loads(c["metrics"] or "{}") for c in cands) if m.get("req_per_s")]
    ctl.store.close()
    shutil.rmtree(out, ignore_errors=True)                # this bench's own run directory
    return {"executor": executor, "address": address, "candidates": len(cands), "loop_wall_s": wall,
            "total_wall_s": total, "per_minute": 60 * len(cands) / wall,
            "median_eval_s": statistics.median(eval_s), "median_check_s": statistics.median(c["check_s"] for c in cands),
            "median_overhead_s": statistics.median(over), "mean_overhead_s": statistics.mean(over),
            "requests_per_s_per_eval": statistics.median(rate) if rate else None,
            "store": rows}


class TwoNodes:
    """Two Ray nodes on this machine, killed by the marker in their environment."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pfsc", dir="/tmp"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.marker = f"PF_BENCH_SCALE={uuid.uuid4().hex}"
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self):
        k, v = self.marker.split("=")
        common = ["--num-cpus", "1", "--object-store-memory", str(200 << 20), "--disable-usage-stats"]
        env = dict(os.environ, **{k: v})
        subprocess.run([RAY, "start", "--head", "--port", str(self.port), "--temp-dir", str(self.dir / "h"),
                        "--include-dashboard=false", *common], env=dict(env, POLICYFORGE_RAY_CACHE=str(self.dir / "c1")),
                       check=True, capture_output=True)
        subprocess.run([RAY, "start", "--address", self.address, "--temp-dir", str(self.dir / "w"), *common],
                       env=dict(env, POLICYFORGE_RAY_CACHE=str(self.dir / "c2")), check=True, capture_output=True)
        return self

    def __exit__(self, *exc):
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if self.marker.encode() in (p / "environ").read_bytes():
                        os.kill(int(p.name), signal.SIGKILL)
                except OSError:
                    pass
        subprocess.run(["rm", "-rf", str(self.dir)])


def noop_round_trip(address: str | None, n: int = 200) -> float:
    """Median driver-side time of an empty Ray task (submit + get), idle machine: the floor of
    any Ray unit of work here."""
    import ray
    ray.init(address=address, num_cpus=None if address else 2, logging_level="ERROR", log_to_driver=False,
             include_dashboard=False if not address else None)
    f = ray.remote(lambda: None)
    ray.get([f.remote() for _ in range(8)])                # workers started
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        ray.get(f.remote())
        times.append(time.perf_counter() - t0)
    ray.shutdown()
    return statistics.median(times)


def projection(local: dict, ray2: dict) -> dict:
    """A PolicySmith-scale study from the measured numbers: 100 traces x 10 M requests, 500
    candidates per trace (one search per trace), each candidate simulated on its trace."""
    traces, reqs, cands = 100, 10_000_000, 500
    evals = traces * cands
    rate = local["requests_per_s_per_eval"]                # simulated requests/s of one evaluation, one core
    compute_core_s = evals * reqs / rate
    extra = max(0.0, ray2["median_overhead_s"] - local["median_overhead_s"])   # Ray's dispatch, per evaluation
    driver_s_per_eval = local["median_overhead_s"]   # the controller's bookkeeping per candidate, taken as serial
    trace_bytes = reqs * 24            # oracleGeneral: 24 bytes per request
    link = 1.25e9                      # 10 Gbit/s from the driver
    out = {}
    for nodes in (1, 8, 64, 512):
        cores = 2 * nodes
        compute = compute_core_s / cores + evals * extra / cores
        driver = evals * driver_s_per_eval                     # serial on the driver
        transfer = traces * trace_bytes * nodes / link          # every trace to every node, once
        out[nodes] = {"compute_h": compute / 3600, "driver_h": driver / 3600, "transfer_h": transfer / 3600,
                      "makespan_h": (max(compute, driver) + transfer) / 3600}
    return {"evaluations": evals, "simulated_requests": evals * reqs, "requests_per_core_s": rate,
            "ray_extra_s_per_eval": extra, "nodes": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=12)
    ap.add_argument("--trace", default="demo")
    a = ap.parse_args()
    commit = git_commit()          # before the run writes its results into the tree
    runs = {"local threads (2 workers)": search("local", None, a.trace, a.rounds, a.per_round),
            "Ray, this node (2 CPUs)": search("ray", None, a.trace, a.rounds, a.per_round)}
    noop = {"Ray, this node (2 CPUs)": noop_round_trip(None)}
    with TwoNodes() as c:
        runs["Ray, two nodes (1 CPU each)"] = search("ray", c.address, a.trace, a.rounds, a.per_round)
        noop["Ray, two nodes (1 CPU each)"] = noop_round_trip(c.address)
    local = runs["local threads (2 workers)"]
    same = all(r["store"] == local["store"] for r in runs.values())
    proj = projection(local, runs["Ray, two nodes (1 CPU each)"])
    cmd = "python bench/scale/run.py " + " ".join(sys.argv[1:])
    lines = ["# bench/scale — the Ray executor against local threads", "",
             f"Machine: {machine()}  ", f"Command: `{cmd}`  ", f"Commit: {commit}  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"The same seeded cache search (offline generator, trace `{a.trace}`, {a.rounds} rounds x "
             f"{a.per_round} candidates after the seeds, 2 candidates in flight), run three ways one after the "
             "other. Overhead = a candidate's pipeline wall time minus its check and evaluation times "
             "(measured inside the worker): dispatch, result transfer and the controller's bookkeeping. "
             f"Identical stores in all three: **{'yes' if same else 'NO'}**.", "",
             "| executor | candidates | loop wall (s) | candidates/min | median eval (s) | median check (s) | median overhead (ms) | overhead vs local, % of median eval | empty Ray task, idle (ms) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        extra = 100 * (r["median_overhead_s"] - local["median_overhead_s"]) / local["median_eval_s"]
        lines.append(f"| {name} | {r['candidates']} | {r['loop_wall_s']:.1f} | {r['per_minute']:.1f} | "
                     f"{r['median_eval_s']:.3f} | {r['median_check_s']:.3f} | {1000 * r['median_overhead_s']:.1f} | "
                     f"{'-' if r is local else f'{extra:+.1f}'} | "
                     f"{'-' if name not in noop else f'{1000 * noop[name]:.1f}'} |")
    lines += ["", "No speed-up is expected from two nodes on one 2-core machine: the point is the overhead "
              "and that results do not change. With Ray, a candidate costs one unit of work (its check, and "
              "the evaluation of a passing check in the same unit): one submit and one result, plus pickling "
              "the task's options and the check's texts. The empty-task column is Ray's own floor for that "
              "round trip on this machine when it is idle; during a search the driver, two workers, the "
              "raylet and the GCS share 2 cores.", "",
              "## Projection (computed, not measured)", "",
              f"A PolicySmith-scale study: 100 traces x 10 M requests, 500 candidates per trace = "
              f"{proj['evaluations']:,} evaluations, {proj['simulated_requests']:.1e} simulated requests. "
              f"Measured here: {proj['requests_per_core_s']:.3g} simulated requests per second per evaluation on one core, "
              f"and the Ray executor's extra {1000 * proj['ray_extra_s_per_eval']:.1f} ms per evaluation. Assumed: nodes "
              f"like this one (2 cores); the driver's work per evaluation is the local executor's measured median "
              f"overhead ({1000 * local['median_overhead_s']:.1f} ms: result handling and the store's transactions), "
              "taken as serial on the driver; every trace shipped once to every node over 10 Gbit/s from the driver.", "",
              "| nodes | compute (h) | driver (h) | trace transfer (h) | makespan (h) |", "|---|---|---|---|---|"]
    for n, p in proj["nodes"].items():
        lines.append(f"| {n} | {p['compute_h']:.1f} | {p['driver_h']:.2f} | {p['transfer_h']:.2f} | {p['makespan_h']:.1f} |")
    lines += ["", "Where it stops scaling: compute falls as 1/nodes; the driver's serial work (one transaction "
              "per evaluation) is a floor that the table shows; shipping every trace to every node grows with "
              "the node count and overtakes both at a few hundred nodes, unless traces are placed per node "
              "(schedule a trace's evaluations where it already is) or read from object storage. Ray's scheduler "
              "(thousands of tasks/s) is not the limit at these evaluation lengths."]
    here = Path(__file__).parent
    (here / "results.md").write_text("\n".join(lines) + "\n")
    (here / "results.json").write_text(json.dumps({"runs": {k: {kk: vv for kk, vv in v.items() if kk != "store"}
                                                            for k, v in runs.items()},
                                                   "identical_stores": same, "projection": proj}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
