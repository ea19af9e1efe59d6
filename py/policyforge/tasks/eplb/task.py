"""The EPLB task: placement rules for MoE experts, compiled into the fixed C++ pipeline.

check:    static rules -> g++ -Wall -Werror -O2 (template + rules -> shared library) ->
          a validity probe on a small workload
evaluate: the runner in the sandbox: plan on window i, score balancedness on window i+1,
          every plan validated; runtime = median of repeated calls
score:    balancedness - runtime_weight * runtime_ms (invalid -> 0)
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ... import sandbox
from ...checks import check_source
from ...native import native_dir
from ...search.expr import ExprHole
from ...task import Baseline, CheckOutcome, Evaluation, Option, Seed, Task, TaskError
from . import workloads

HOLE_MARK = "/* PF_POLICY_HOLE */"
RULES = ("expected_load", "replica_score", "pack_key", "bin_cost")


def _shape(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise ValueError("must be positive")
    return v


class EplbTask(Task):
    name = "eplb"
    title = "MoE expert placement (EPLB) rules"
    language = "cpp"
    score_label = "next-window balancedness - runtime penalty"
    options = [
        Option("workload", "drifting", "static | drifting | bursty (synthetic) or a path to a vLLM-style JSON log"),
        Option("steps", 1000, "synthetic workload length in steps", _shape),
        Option("window", 100, "steps per rebalancing window", _shape),
        Option("layers", 58, "layers (synthetic)", _shape),
        Option("experts", 256, "logical experts per layer (synthetic)", _shape),
        Option("replicas", 288, "physical expert slots", _shape),
        Option("groups", 8, "expert groups", _shape),
        Option("nodes", 4, "nodes", _shape),
        Option("gpus", 32, "GPUs", _shape),
        Option("runtime_weight", 1e-5, "score penalty per millisecond of rebalance time (balancedness comes first)", float),
        Option("seed", 0, "synthetic workload seed", int),
        Option("timeout_s", 120.0, "wall-clock limit of one evaluation", float),
    ]

    def holes(self) -> list[ExprHole]:
        return [
            ExprHole("expected_load", "double expected_load(double recent, double history)",
                     # trend is derivable from the other two, but as one leaf the search reaches
                     # "plan for where the load is going" (recent + k * trend) in three nodes
                     {"recent": "recent", "history": "history", "trend": "(recent - history)"},
                     doc="The load to plan for: recent = tokens of the last window, history = mean window load "
                         "so far, trend = recent - history (> 0: the expert is getting hotter)."),
            ExprHole("replica_score", "double replica_score(double load, double count)",
                     {"load": "load", "count": "count"},
                     doc="Each extra replica goes to the expert with the highest score (count = its replicas so far)."),
            ExprHole("pack_key", "double pack_key(double weight, double index)",
                     {"weight": "weight", "index": "index"},
                     doc="Items (groups, replicas) are placed in descending key order."),
            ExprHole("bin_cost", "double bin_cost(double bin_load, double bin_count, double capacity, double weight)",
                     {"bin_load": "bin_load", "bin_count": "bin_count", "capacity": "capacity", "weight": "weight"},
                     doc="An item goes to the non-full bin (node or GPU) of least cost."),
        ]

    def describe(self) -> str:
        o = self.opts
        return ("Mixture-of-experts inference places R physical expert replicas on GPUs. Per layer, the fixed "
                "pipeline packs expert groups onto nodes, replicates hot experts inside each node, and packs the "
                "replicas onto the node's GPUs; you write its four rules (C++ functions of doubles). The plan made "
                "from window i is scored on window i+1 (loads drift and burst), by balancedness = sum over layers "
                "of mean GPU load / sum over layers of max GPU load; faster rules score slightly higher. Rules: "
                "pure functions, no loops, no state, no includes; pf_div(a,b) (0 when b==0), pf_min, pf_max, "
                "pf_log(x)=log(1+|x|) and <cmath> functions are available. "
                f"Shape: {o['layers']} layers, {o['experts']} experts, {o['replicas']} replicas, {o['groups']} "
                f"groups, {o['nodes']} nodes, {o['gpus']} GPUs.")

    def seeds(self) -> list[Seed]:
        return [Seed("reference", {"expected_load": "recent", "replica_score": "(div load count)",
                                   "pack_key": "weight", "bin_cost": "bin_load"})]

    # --- workload -----------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        o = self.opts
        wl = str(o["workload"])
        if wl in ("static", "drifting", "bursty"):
            tag = f"{wl}-{o['steps']}-{o['layers']}-{o['experts']}-{o['seed']}"
            path = workdir / f"eplb-{tag}.npy"
            if not path.exists():
                hist = workloads.synthetic(wl, o["steps"], o["layers"], o["experts"], seed=o["seed"])
                np.save(path, hist)
            history = np.load(path)
        else:
            history = workloads.load_vllm_json(Path(wl))
        win = workloads.windows(history, o["window"])
        from .op import load_op
        E = win.shape[2]
        try:  # shape errors surface here, before any candidate runs
            load_op().rebalance_experts(win[0][:1], o["replicas"], o["groups"], o["nodes"], o["gpus"])
        except (ValueError, RuntimeError) as e:
            raise TaskError(f"EPLB shape ({E} experts, {o['replicas']} replicas, {o['groups']} groups, "
                            f"{o['nodes']} nodes, {o['gpus']} GPUs): {e}") from None
        self.windows_path = workdir / "windows.npy"
        np.save(self.windows_path, win)
        probe = win[:3, :2]
        self.probe_path = workdir / "probe-windows.npy"
        np.save(self.probe_path, probe)

    def _run(self, impl: str, rules: Path | None, windows: Path, repeat: int, timeout: float) -> dict:
        o = self.opts
        args = [sys.executable, "-m", "policyforge.tasks.eplb.runner", "--impl", impl, "--windows", str(windows),
                "--replicas", str(o["replicas"]), "--groups", str(o["groups"]), "--nodes", str(o["nodes"]),
                "--gpus", str(o["gpus"]), "--repeat", str(repeat)]
        if rules is not None:
            args += ["--rules", str(rules)]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        import os
        if os.environ.get("POLICYFORGE_NATIVE_DIR"):
            env["POLICYFORGE_NATIVE_DIR"] = os.environ["POLICYFORGE_NATIVE_DIR"]
        r = sandbox.run(args, timeout_s=timeout, mem_mb=4096, max_procs=8, env=env)
        if not r.ok:
            tail = (r.stderr.strip().splitlines() or [""])[-1]
            return {"valid": False, "reason": r.reason + (f": {tail}" if tail else "")}
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"valid": False, "reason": "the runner printed no result"}

    def _evaluation(self, res: dict) -> Evaluation:
        if not res.get("valid"):
            return Evaluation(False, 0.0, {}, reason=res.get("reason", "invalid"))
        score = res["balancedness"] - self.opts["runtime_weight"] * res["runtime_ms"]
        return Evaluation(True, score, {"balancedness": res["balancedness"], "runtime_ms": res["runtime_ms"],
                                        "worst_window": min(res["per_window"])})

    # --- check --------------------------------------------------------------------------
    def full_source(self, source: str) -> str:
        template = (native_dir() / "share" / "eplb" / "eplb_template.cpp").read_text()
        n = template[: template.index(HOLE_MARK)].count("\n") + 1
        return template.replace(HOLE_MARK, f'#line 1 "rules.cpp"\n{source}\n#line {n + 1} "eplb_template.cpp"')

    def check(self, source: str, workdir: Path) -> CheckOutcome:
        t0 = time.monotonic()
        workdir = Path(workdir).resolve()  # tools below run with cwd=workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "rules.cpp").write_text(source)
        errs = check_source(source, functions=RULES, file="rules.cpp",
                            calls={"pf_div", "pf_min", "pf_max", "pf_log", "log", "log2", "log1p", "sqrt", "exp",
                                   "fabs", "pow", "floor", "ceil", "fmin", "fmax", "std::log", "std::sqrt"})
        if errs:
            return CheckOutcome(False, "static", "\n".join(errs), seconds=time.monotonic() - t0)
        (workdir / "eplb_rules.cpp").write_text(self.full_source(source))
        inc = native_dir() / "share" / "eplb"
        cmd = ["g++", "-std=c++17", "-O3", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{inc}", "eplb_rules.cpp",
               "-o", "eplb_rules.so"]
        try:
            r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
        except FileNotFoundError:
            raise TaskError("g++ is not installed (make deps)") from None
        if r.returncode != 0:
            return CheckOutcome(False, "compile", r.stderr, seconds=time.monotonic() - t0)
        so = workdir / "eplb_rules.so"
        probe = self._run("native", so, self.probe_path, 1, 20)
        if not probe.get("valid"):
            return CheckOutcome(False, "probe", f"probe: {probe.get('reason')}", seconds=time.monotonic() - t0)
        return CheckOutcome(True, "ok", "", so, seconds=time.monotonic() - t0)

    def evaluate(self, check: CheckOutcome, workdir: Path, best_so_far: float | None = None) -> Evaluation:
        t0 = time.monotonic()
        ev = self._evaluation(self._run("native", check.artifact, self.windows_path, 21, self.opts["timeout_s"]))
        ev.seconds = time.monotonic() - t0
        return ev

    def baselines(self, workdir: Path) -> list[Baseline]:
        out = []
        for name, impl, repeat in (("native (reference rules)", "native", 21), ("numpy reference", "numpy", 5),
                                   ("python reference", "python", 3)):
            out.append(Baseline(name, self._evaluation(self._run(impl, None, self.windows_path, repeat, 600))))
        return out

    def export(self, source: str, check: CheckOutcome, out_dir: Path) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        so = out_dir / "eplb_rules.so"
        shutil.copy(check.artifact, so)
        (out_dir / "rules.cpp").write_text(source)
        (out_dir / "eplb_rules.cpp").write_text(self.full_source(source))
        o = self.opts
        usage = (f"python -c \"import numpy as np; from policyforge._eplb import rebalance_experts; "
                 f"w = np.random.rand({o['layers']}, {o['experts']}); "
                 f"print(rebalance_experts(w, {o['replicas']}, {o['groups']}, {o['nodes']}, {o['gpus']}, "
                 f"rules_lib='{so.resolve()}')[2].sum(1))\"")
        (out_dir / "USAGE.txt").write_text(usage + "\n")
        return {"files": [str(so), str(out_dir / "rules.cpp")], "usage": usage}
