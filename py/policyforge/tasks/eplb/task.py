"""The EPLB task: placement rules for MoE experts, compiled into the fixed C++ pipeline.

check:    preprocess + parse + allowlist (policyforge.checking) -> g++ -Wall -Werror -O3 in the
          sandbox (the rules alone, audited; template + rules -> shared library) -> probes: each
          rule on inputs that occur must be finite, plans on a small workload must be valid
evaluate: pf-eplb-run in the sandbox makes the plans (window i plans from window i); this
          process validates them and scores balancedness on window i+1, and times the
          rebalance from outside (median round trip for one more plan, checked against the first)
score:    balancedness - runtime_weight * runtime_ms (invalid: no score)
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ... import sandbox
from ...checking import (PREPROCESSED, Function, Grammar, HELPERS_DOUBLE, Param, SCALAR_C, StageFailed, math_calls,
                         pipeline, template_macros)
from ...native import native_path
from ...template import Template
from ...task import Baseline, CheckOutcome, Evaluation, Hole, Option, Seed, Task, TaskError, number
from . import metrics, workloads

RULES = ("expected_load", "replica_score", "pack_key", "bin_cost")
_D = "double"
GRAMMAR = Grammar(
    language="c++", file="rules.cpp",
    functions=(Function("expected_load", _D, (Param("recent", _D), Param("history", _D)),
                        doc="Once per expert per rebalance: the load to plan for. recent = the expert's tokens "
                            "in the last window, history = its mean window load so far (recent - history > 0: "
                            "it is getting hotter). The reference returns recent."),
               Function("replica_score", _D, (Param("load", _D), Param("count", _D)),
                        doc="Inside each node every expert gets one replica; each further replica goes to the "
                            "expert of HIGHEST score (ties: lower index). load = its expected load, count = its "
                            "replicas so far (>= 1). The reference returns load / count."),
               Function("pack_key", _D, (Param("weight", _D), Param("index", _D)),
                        doc="Items (expert groups onto nodes, then replicas onto GPUs) are placed in DESCENDING "
                            "key order. weight = the item's load, index = its position. The reference returns weight."),
               Function("bin_cost", _D, (Param("bin_load", _D), Param("bin_count", _D), Param("capacity", _D),
                                         Param("weight", _D)),
                        doc="Each item goes to the non-full bin (node or GPU) of LEAST cost (ties: lower index; "
                            "a NaN never wins). bin_load = load already in the bin, bin_count = items in it, "
                            "capacity = items it holds, weight = the item's load. It is called for full bins "
                            "too; their cost is ignored (only there may it be inf or nan). The reference returns "
                            "bin_load.")),
    calls=HELPERS_DOUBLE + math_calls(cxx=True), structs={}, types=SCALAR_C + ("bool",),
    purpose="the rules run for every expert of every layer at each rebalance")
LIBM = {c.name for c in math_calls(cxx=False)} | {"log1p", "fabs"}


_shape = number(int, min=1)


class EplbTask(Task):
    name = "eplb"
    title = "MoE expert placement (EPLB) rules"
    language = "cpp"
    score_label = "next-window balancedness - runtime penalty"
    grammar = GRAMMAR
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
        Option("runtime_weight", 1e-5, "score penalty per millisecond of rebalance time (balancedness comes first)", number(min=0)),
        Option("seed", 0, "synthetic workload seed", int),
        Option("timeout_s", 120.0, "wall-clock limit of one evaluation", number(above=0)),
    ]

    def holes(self) -> list[Hole]:
        return [
            Hole("expected_load", "double expected_load(double recent, double history)",
                     # trend is derivable from the other two, but as one leaf the search reaches
                     # "plan for where the load is going" (recent + k * trend) in three nodes
                     {"recent": "recent", "history": "history", "trend": "(recent - history)"},
                     doc="The load to plan for: recent = tokens of the last window, history = mean window load "
                         "so far, trend = recent - history (> 0: the expert is getting hotter)."),
            Hole("replica_score", "double replica_score(double load, double count)",
                     {"load": "load", "count": "count"},
                     doc="Each extra replica goes to the expert with the highest score (count = its replicas so far)."),
            Hole("pack_key", "double pack_key(double weight, double index)",
                     {"weight": "weight", "index": "index"},
                     doc="Items (groups, replicas) are placed in descending key order."),
            Hole("bin_cost", "double bin_cost(double bin_load, double bin_count, double capacity, double weight)",
                     {"bin_load": "bin_load", "bin_count": "bin_count", "capacity": "capacity", "weight": "weight"},
                     doc="An item goes to the non-full bin (node or GPU) of least cost."),
        ]

    def describe(self) -> str:
        o = self.opts
        return ("Mixture-of-experts inference places R physical expert replicas on GPUs. Per layer, a fixed "
                "pipeline packs expert groups onto nodes, replicates hot experts inside each node, and packs the "
                "replicas onto the node's GPUs; you write its four rules, C++ functions of doubles. The plan made "
                "from window i is scored on window i+1 (loads drift and burst) by balancedness = sum over layers "
                "of mean GPU load / sum over layers of max GPU load (1 is perfect); rules that run faster score "
                f"slightly higher. Shape: {o['layers']} layers, {o['experts']} experts, {o['replicas']} replicas, "
                f"{o['groups']} groups, {o['nodes']} nodes, {o['gpus']} GPUs.\n\n")

    def seeds(self) -> list[Seed]:
        return [Seed("reference", {"expected_load": "recent", "replica_score": "(div load count)",
                                   "pack_key": "weight", "bin_cost": "bin_load"})]

    # --- workload -----------------------------------------------------------------------
    skipped_records = 0    # incomplete records left out of a user's vLLM log (prepare)

    def describe_run(self) -> dict[str, Any]:
        out = dict(self.opts)
        if self.skipped_records:
            out["log_records_skipped"] = self.skipped_records
        return out

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
            history, self.skipped_records = workloads.load_expert_log(Path(wl))
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
        # pf-eplb-run reads raw float64 [W, L, E], from a directory of ours the sandbox may show
        inputs = workdir / "eplb-inputs"
        inputs.mkdir(exist_ok=True)
        self._loads: dict[Path, np.ndarray] = {}
        inputs.chmod(0o755)
        self.windows_raw = self._raw(win, inputs / "windows.f64")
        self.windows_shape = win.shape
        probe = np.ascontiguousarray(win[:3, :2])
        self.probe_path = workdir / "probe-windows.npy"
        np.save(self.probe_path, probe)
        self.probe_raw = self._raw(probe, inputs / "probe-windows.f64")
        self.probe_shape = probe.shape

    def _raw(self, win: np.ndarray, path: Path) -> Path:
        """`win` for pf-eplb-run as raw float64 at `path`; kept in memory too, for scoring."""
        tmp = path.with_suffix(".tmp")
        np.ascontiguousarray(win, dtype=np.float64).tofile(tmp)
        tmp.replace(path)
        self._loads[path] = win
        return path

    def _plan_native(self, rules: Path | None, raw: Path, shape: tuple, timed: int, timeout: float) -> dict:
        """Plans of the rules (None: the reference rules) for every window, made by pf-eplb-run in
        the sandbox, validated and scored here; the rebalance time measured from here as the
        median round trip of `timed` more plans, each checked against the first."""
        W, L, E = shape
        o = self.opts
        R = o["replicas"]
        args = [str(native_path("bin", "pf-eplb-run")), "--windows", str(raw), "--count", str(W), "--layers", str(L),
                "--experts", str(E), "--replicas", str(R), "--groups", str(o["groups"]), "--nodes", str(o["nodes"]),
                "--gpus", str(o["gpus"])]
        ro = [raw.parent]
        if rules is not None:
            args += ["--rules", str(rules)]
            ro.append(rules.parent)
        size = L * R * 4
        plans: list[np.ndarray] = []
        times: list[float] = []
        problem = ""
        with sandbox.Job(args, binary=True, timeout_s=timeout, mem_mb=2048, max_procs=4, ro=ro) as job:
            for _ in range(W - 1):
                b = job.receive(size)
                if b is None:
                    break
                plans.append(np.frombuffer(b, dtype=np.int32).reshape(L, R).astype(np.int64))
            for k in range(timed if len(plans) == W - 1 else 0):
                i = (W - 2 - k) % (W - 1)
                t0 = time.perf_counter()
                if not job.send(struct.pack("<i", i)):
                    break
                b = job.receive(size)
                times.append(time.perf_counter() - t0)
                if b is None:
                    break
                if not np.array_equal(np.frombuffer(b, dtype=np.int32).reshape(L, R), plans[i]):
                    problem = f"not deterministic: window {i} got two different plans"
                    break
            res = job.finish()
        if len(plans) < W - 1 or (timed and len(times) < timed and not problem):
            tail = (res.stderr.strip().splitlines() or [""])[-1]
            return {"valid": False, "reason": (res.reason or "the runner stopped early") + (f": {tail}" if tail else "")}
        if problem:
            return {"valid": False, "reason": f"invalid: {problem}"}
        scored = metrics.score_plans(self._loads[raw], plans, R, o["gpus"])
        if "reason" in scored:
            return {"valid": False, "reason": f"invalid: {scored['reason']}"}
        if times:
            scored["runtime_ms"] = 1000 * statistics.median(times)
            scored["runtime_min_ms"] = 1000 * min(times)
        return scored

    def _run_python(self, impl: str, repeat: int, timeout: float) -> dict:
        """A Python reference (trusted code, no candidate in it): the runner in a subprocess."""
        o = self.opts
        args = [sys.executable, "-m", "policyforge.tasks.eplb.runner", "--impl", impl,
                "--windows", str(self.windows_path), "--replicas", str(o["replicas"]), "--groups", str(o["groups"]),
                "--nodes", str(o["nodes"]), "--gpus", str(o["gpus"]), "--repeat", str(repeat)]
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"valid": False, "reason": f"timeout after {timeout:g} s"}
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = (r.stderr.strip().splitlines() or [""])[-1]
            return {"valid": False, "reason": f"the runner printed no result: {tail}"}

    def _evaluation(self, res: dict) -> Evaluation:
        if not res.get("valid"):
            return Evaluation(False, None, {}, reason=res.get("reason", "invalid"))
        score = res["balancedness"] - self.opts["runtime_weight"] * res["runtime_ms"]
        return Evaluation(True, score, {"balancedness": res["balancedness"], "runtime_ms": res["runtime_ms"],
                                        "worst_window": min(res["per_window"])})

    # --- check --------------------------------------------------------------------------
    @staticmethod
    def _template() -> Template:
        return Template.find("eplb", "eplb_template.cpp")

    def _share(self) -> Path:
        """The template's directory: the pipeline and policy headers beside it."""
        return self._template().dir

    def full_source(self, checked: str) -> str:
        return self._template().splice(checked)

    def _macros(self, workdir: Path) -> frozenset[str]:
        return template_macros(self._template().head(), "c++", [self._share()], workdir.parent / "template")

    def check(self, source: str, workdir: Path) -> CheckOutcome:
        t0 = time.monotonic()
        workdir = Path(workdir).resolve()  # tools below run with cwd=workdir
        workdir.mkdir(parents=True, exist_ok=True)

        def failed(stage: str, feedback: str) -> CheckOutcome:
            return CheckOutcome(False, stage, feedback, seconds=time.monotonic() - t0)
        # the checked text compiled alone with C linkage (for the audit), and inside the template
        # (the library the pipeline runs)
        (workdir / "rules_audit.cpp").write_text(f'#include "eplb_policy.hpp"\nextern "C" {{\n#include "{PREPROCESSED}"\n}}\n')
        (workdir / "eplb_rules.cpp").write_text(self.full_source(f'#include "{PREPROCESSED}"\n'))
        flags = ["g++", "-std=c++17", "-O3", "-Wall", "-Werror", "-fPIC", f"-I{self._share()}"]
        try:
            checked = pipeline(source, GRAMMAR, workdir, [
                ("compile", [*flags, "-c", "rules_audit.cpp", "-o", "rules_audit.o"]),
                ("compile", [*flags, "-shared", "eplb_rules.cpp", "-o", "eplb_rules.so"])],
                audit=("rules_audit.o", LIBM, set(RULES)), macros=self._macros(workdir), ro=[self._share()],
                timeout_s=180)
        except StageFailed as e:
            return failed(e.stage, e.feedback)
        so = workdir / "eplb_rules.so"
        probe = sandbox.run([str(native_path("bin", "pf-eplb-run")), "--probe", "--rules", str(so), "--windows",
                             str(self.probe_raw), "--count", str(self.probe_shape[0]), "--layers",
                             str(self.probe_shape[1]), "--experts", str(self.probe_shape[2]),
                             *self._shape_args()], ro=[workdir, self.probe_raw.parent], timeout_s=20, mem_mb=1024)
        if not probe.ok:
            return failed("probe", probe.stdout.strip() or f"probe: {probe.reason}")
        plans = self._plan_native(so, self.probe_raw, self.probe_shape, 0, 20)
        if not plans.get("valid"):
            return failed("probe", f"probe: {plans.get('reason')}")
        return CheckOutcome(True, "ok", "", so, seconds=time.monotonic() - t0, checked_source=checked.text)

    def _shape_args(self) -> list[str]:
        o = self.opts
        return ["--replicas", str(o["replicas"]), "--groups", str(o["groups"]), "--nodes", str(o["nodes"]),
                "--gpus", str(o["gpus"])]

    def evaluate(self, check: CheckOutcome, workdir: Path, best_so_far: float | None = None) -> Evaluation:
        t0 = time.monotonic()
        ev = self._evaluation(self._plan_native(check.artifact, self.windows_raw, self.windows_shape, 21,
                                                self.opts["timeout_s"]))
        ev.seconds = time.monotonic() - t0
        return ev

    def verify(self, check: CheckOutcome, workdir: Path, evaluation: Evaluation) -> Evaluation:
        """The plans are scored here already; a second process must make the same plans (the
        balancedness is the same to the last bit; the runtime, measured, is not compared)."""
        t0 = time.monotonic()
        again = self._plan_native(check.artifact, self.windows_raw, self.windows_shape, 0, self.opts["timeout_s"])
        if not again.get("valid") or again["balancedness"] != evaluation.metrics.get("balancedness"):
            got = again.get("reason") or again.get("balancedness")
            return Evaluation(False, None, evaluation.metrics, stage=evaluation.stage,
                              reason=f"invalid: not deterministic: balancedness {evaluation.metrics.get('balancedness')}, "
                                     f"then {got}", seconds=evaluation.seconds + time.monotonic() - t0)
        return dataclasses.replace(evaluation, metrics={**evaluation.metrics, "verified": "second run, same plans"})

    def baselines(self, workdir: Path) -> list[Baseline]:
        out = [Baseline("native (reference rules)", self._evaluation(
            self._plan_native(None, self.windows_raw, self.windows_shape, 21, 600)))]
        for name, impl, repeat in (("numpy reference", "numpy", 5), ("python reference", "python", 3)):
            out.append(Baseline(name, self._evaluation(self._run_python(impl, repeat, 600))))
        return out

    def export(self, source: str, check: CheckOutcome, out_dir: Path) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        so = out_dir / "eplb_rules.so"
        shutil.copy(check.artifact, so)
        (out_dir / "rules.cpp").write_text(source)
        (out_dir / "eplb_rules.cpp").write_text(self.full_source(check.checked_source))
        shutil.copy(self._share() / "eplb_policy.hpp", out_dir / "eplb_policy.hpp")
        shutil.copy(self._share() / "eplb_pipeline.hpp", out_dir / "eplb_pipeline.hpp")
        o = self.opts
        usage = (f"python -c \"import numpy as np; from policyforge._eplb import rebalance_experts; "
                 f"w = np.random.rand({o['layers']}, {o['experts']}); "
                 f"print(rebalance_experts(w, {o['replicas']}, {o['groups']}, {o['nodes']}, {o['gpus']}, "
                 f"rules_lib='{so.resolve()}')[2].sum(1))\"")
        (out_dir / "USAGE.txt").write_text(usage + "\n")
        return {"files": [str(so), str(out_dir / "rules.cpp")], "usage": usage}
