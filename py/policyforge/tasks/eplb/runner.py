"""Child-process evaluator of one EPLB policy (run inside policyforge's sandbox).

    python -m policyforge.tasks.eplb.runner --impl native|numpy|python [--rules LIB]
        --windows W.npy --replicas R --groups G --nodes N --gpus M [--repeat K]

For every window i: plan on window i (history = mean of windows 0..i), score on window
i+1. Prints one JSON line: balancedness (sum over pairs of sum over layers of mean GPU
load / the same of max GPU load), per-pair values, runtime (median of K calls, ms),
and whether every plan was valid.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from . import metrics
from .op import load_op
from .reference import rebalance_numpy, rebalance_python


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", default="native", choices=["native", "numpy", "python"])
    ap.add_argument("--rules", default="")
    ap.add_argument("--windows", required=True)
    for k in ("replicas", "groups", "nodes", "gpus"):
        ap.add_argument(f"--{k}", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=21)
    a = ap.parse_args()
    win = np.load(a.windows)
    R, G, N, M = a.replicas, a.groups, a.nodes, a.gpus
    if a.impl == "native":
        op = load_op()

        def plan(recent, history):
            return op.rebalance_experts(recent, R, G, N, M, history=history, rules_lib=a.rules)
    else:
        fn = rebalance_numpy if a.impl == "numpy" else rebalance_python

        def plan(recent, history):
            return fn(recent, R, G, N, M)
    pairs, means, maxes = [], 0.0, 0.0
    cumulative = np.zeros_like(win[0])
    for i in range(win.shape[0] - 1):
        cumulative += win[i]
        phy2log, log2phy, logcnt = plan(win[i], cumulative / (i + 1))
        err = metrics.validate(phy2log, log2phy, logcnt, win[i] + win[i + 1], R, M)
        if err:
            print(json.dumps({"valid": False, "reason": f"window {i}: {err}"}))
            return 0
        g = metrics.gpu_loads(np.asarray(phy2log), np.asarray(logcnt), win[i + 1], M)
        means += g.mean(1).sum()
        maxes += g.max(1).sum()
        pairs.append(float(g.mean(1).sum() / g.max(1).sum()))
    times = []
    last, hist = win[-2], cumulative / (win.shape[0] - 1)
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        plan(last, hist)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"valid": True, "balancedness": means / maxes, "per_window": pairs,
                      "runtime_ms": 1000 * statistics.median(times), "runtime_min_ms": 1000 * min(times)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
