"""Deadline-aware spot-instance scheduling ("Can't Be Late", the ADRS study's first case), as
a Python task: the example of docs/adding-a-task.md.

The candidate is a Python function, decide(), called every tick of a job that must finish
before its deadline: idle, spot (cheap, preemptible) or on demand (expensive, always there).
check:    Python's parser and an allowlist (check.py: arithmetic on the arguments only), then
          a probe: the runner on a short trace in the sandbox
evaluate: runner.py in the sandbox prints the candidate's decisions on every trace;
          policyforge replays them with its own simulator (sim.replay) and scores them, so a
          runner that lies can only lie about decisions, which are then scored honestly
score:    mean over traces of (on-demand cost / cost), 0 for a missed deadline
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ... import sandbox
from ...task import Baseline, CheckOutcome, Evaluation, Hole, Option, Seed, Task, TaskError, number
from . import check as rules
from . import sim

HERE = Path(__file__).resolve().parent
DOC = ("Called every tick while the job has work left. Return 0 to stay idle, 1 to run on spot, 2 to run on "
       "demand (rounded and clamped to 0..2). Arguments: time_left (ticks to the deadline), work_left (ticks "
       "of compute still needed), spot (1 when spot capacity is there this tick), on_spot / on_demand (1 when "
       "that instance ran last tick), overhead (ticks of setup lost when an instance starts or the kind "
       "changes), spot_rate (share of past ticks with spot available). Spot costs 0.3 per tick, on demand 1.0; "
       "spot is taken away when capacity goes. Missing the deadline scores 0 on that trace.")


class SpotTask(Task):
    name = "spot"
    title = "deadline-aware spot-instance scheduling (Python)"
    language = "python"
    score_label = "on-demand cost / cost (0 if late), mean over traces"
    options = [
        Option("traces", 24, "availability traces (seeds 1..N)", number(int, min=1, max=10_000)),
        Option("work", 48, "ticks of compute the job needs", number(int, min=1)),
        Option("deadline", 72, "ticks until the deadline", number(int, min=1)),
        Option("overhead", 0.5, "ticks of setup when an instance starts", number(min=0, max=1)),
        Option("timeout_s", 60.0, "wall-clock limit of one evaluation", number(above=0)),
    ]

    def __init__(self, **values: Any):
        super().__init__(**values)
        if self.opts["deadline"] < self.opts["work"] + self.opts["overhead"]:
            raise TaskError("the deadline leaves no time for the work: choose deadline > work + overhead")
        self.cases: Path | None = None

    # --- what the generator sees ---------------------------------------------------------
    def holes(self) -> list[Hole]:
        v = {p: p for p in rules.PARAMS}
        v["slack"] = "(time_left - work_left)"
        return [Hole("decide", rules.SIGNATURE, v, doc=DOC, constants=(0.0, 1.0, 2.0, 0.5, 3.0, 10.0))]

    def describe(self) -> str:
        o = self.opts
        return (f"A batch job needs {o['work']} ticks of compute within {o['deadline']} ticks. You write the "
                "scheduling policy decide() in Python. " + DOC + " Rules: define only decide() with exactly that "
                "signature; no imports, loops, globals, attributes, indexing, strings or other functions; "
                "arithmetic with + - * and comparisons, if/else, conditional expressions; divide with "
                "pf_div(a, b) (0 when b == 0); calls allowed: " + ", ".join(rules.CALLS) + ". "
                f"The score is the mean over {o['traces']} availability traces of on-demand cost / your cost, "
                "0 on a trace whose deadline you miss; higher is better.")

    def seeds(self) -> list[Seed]:
        return [Seed("on-demand", {"decide": "2.0"}),
                Seed("spot-then-od", {"decide": "(ifgt slack 10.0 (ifgt spot 0.5 1.0 0.0) 2.0)"})]

    # --- workload ------------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        o = self.opts
        self.traces = [sim.trace(seed, o["deadline"]) for seed in range(1, o["traces"] + 1)]
        home = Path(workdir).resolve() / "spot"      # ours, readable by the sandbox's jobs
        home.mkdir(exist_ok=True)
        home.chmod(0o755)
        self.cases = home / "cases.json"
        self.cases.write_text(json.dumps({"traces": self.traces, "work": o["work"], "deadline": o["deadline"],
                                          "overhead": o["overhead"]}))
        self.probe_cases = home / "probe.json"
        self.probe_cases.write_text(json.dumps({"traces": [[1, 0] * o["deadline"]][:1], "work": o["work"],
                                                "deadline": o["deadline"], "overhead": o["overhead"]}))

    def _need(self) -> None:
        if self.cases is None:
            raise TaskError("the spot task was not prepared (internal error)")

    def _run(self, source: str, workdir: Path, cases: Path) -> dict:
        """The runner on the checked source, in the sandbox; its one JSON line, or an error.
        The source goes into a fresh directory of ours, read-only to the job, so what runs is
        always the text that was checked."""
        job = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
        job.chmod(0o755)
        policy = job / "policy.py"
        policy.write_text(source)
        policy.chmod(0o644)
        r = sandbox.run([sys.executable if Path(sys.executable).is_relative_to("/usr") else "/usr/bin/python3",
                         "-I", "-S", str(HERE / "runner.py"), str(policy), str(cases)],
                        ro=[HERE, job, cases.parent], timeout_s=self.opts["timeout_s"], mem_mb=512)
        if not r.ok:
            tail = (r.stderr.strip().splitlines() or [""])[-1]
            return {"error": r.reason + (f": {tail}" if tail else "")}
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": "the runner printed no result"}

    # --- check -----------------------------------------------------------------------------
    def check(self, source: str, workdir: Path) -> CheckOutcome:
        self._need()
        t0 = time.monotonic()
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        problems = rules.check(source)
        if problems:
            return CheckOutcome(False, "static", "\n".join(problems), seconds=time.monotonic() - t0)
        (workdir / "policy.py").write_text(source)      # for the user: what was checked
        out = self._run(source, workdir, self.probe_cases)
        if "error" in out:
            return CheckOutcome(False, "probe", f"probe: {out['error']}", seconds=time.monotonic() - t0)
        return CheckOutcome(True, "ok", "", workdir / "policy.py", seconds=time.monotonic() - t0,
                            checked_source=source)

    # --- evaluate --------------------------------------------------------------------------
    def _score(self, decisions: list[list[int]]) -> Evaluation:
        o = self.opts
        if not isinstance(decisions, list) or len(decisions) != len(self.traces):
            return Evaluation(False, None, reason="invalid: the runner did not give decisions for every trace")
        try:
            results = [sim.replay(d, a, o["work"], o["deadline"], o["overhead"])
                       for d, a in zip(decisions, self.traces)]
        except (ValueError, TypeError):
            return Evaluation(False, None, reason="invalid: decisions out of range")
        score = sum(r["score"] for r in results) / len(results)
        return Evaluation(True, score, {"late": sum(not r["finished"] for r in results),
                                        "mean_cost": sum(r["cost"] for r in results) / len(results)})

    def evaluate(self, check: CheckOutcome, workdir: Path, best_so_far: float | None = None) -> Evaluation:
        self._need()
        t0 = time.monotonic()
        out = self._run(check.checked_source, Path(workdir).resolve(), self.cases)
        ev = Evaluation(False, None, reason=out["error"]) if "error" in out else self._score(out.get("decisions"))
        ev.seconds = time.monotonic() - t0
        return ev

    def baselines(self, workdir: Path) -> list[Baseline]:
        """The baselines run here, in trusted code, through the same replay."""
        self._need()
        o = self.opts
        out = []
        for name, fn in (("on-demand", sim.on_demand), ("greedy", sim.greedy),
                         ("uniform-progress", sim.uniform_progress)):
            decisions = [sim.run(fn, a, o["work"], o["deadline"], o["overhead"]) for a in self.traces]
            out.append(Baseline(name, self._score(decisions)))
        return out

    def export(self, source: str, check: CheckOutcome, out_dir: Path) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        dst = out_dir / "decide.py"
        dst.write_text(source)
        for f in ("sim.py", "runner.py"):
            shutil.copy(HERE / f, out_dir / f)
        usage = (f"python3 {out_dir / 'runner.py'} {dst} CASES.json   # decisions per trace; "
                 "sim.py has the simulator and its replay")
        (out_dir / "USAGE.txt").write_text(usage + "\n")
        return {"files": [str(dst)], "usage": usage}
