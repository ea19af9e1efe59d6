"""The controller's evaluator: checks, evaluations, verifications and baselines of a run, on
one workload or a suite (search/suite.py), through an executor (search/executor.py).

A run of one workload is exactly what it always was: the task's own score, its own screen.
A suite run scores a candidate on every train workload (cheapest first; a search screens a
candidate that is behind every ranked baseline on the first), combines the scores with the
suite's aggregate, and evaluates the top finalists on the held-out workloads at the end.
"""
from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from .. import tasks
from ..task import Baseline, CheckOutcome, Evaluation, Task, TaskError
from .executor import LocalExecutor, TaskSpec
from .suite import Suite, SuiteScorer, Workload, margin


class Evaluator:
    def __init__(self, task: Task, task_name: str, options: dict[str, Any], suite: Suite | None,
                 executor, shared: Path, log: Callable[[str], None]):
        self.task = task                      # the run's task (the first train workload's)
        self.suite = suite
        self.scorer = SuiteScorer(suite) if suite else None
        self.executor = executor
        self.shared = shared
        self.log = log
        self.base = dict(options)
        self.name = task_name
        self._tasks: dict[str, Task] = {}
        self._cost: dict[str, float] = {}     # workload -> its baselines' seconds (set with them)

    # --- workloads ------------------------------------------------------------------------
    def spec(self, w: Workload | None = None) -> TaskSpec:
        return TaskSpec(self.name, {**self.base, **(w.options if w else {})})

    def task_of(self, w: Workload) -> Task:
        """The task of one workload; prepared here only when this process evaluates it."""
        if self.suite and w.name == self.suite.train[0].name:
            return self.task
        if w.name not in self._tasks:
            t = tasks.load(self.name, **self.spec(w).options)
            if isinstance(self.executor, LocalExecutor):
                idx = self.suite.workloads.index(w)
                t.prepare(self.shared / "workloads" / str(idx))
            self._tasks[w.name] = t
        return self._tasks[w.name]

    def prepare(self) -> None:
        """Before the search: every workload, held-out ones too, so that a missing trace or a
        bad option stops the run at its start, not after hours of search. (With a remote
        executor each node prepares its own copy; a failure there stops the run the same way.)"""
        for w in (self.suite.workloads if self.suite else []):
            try:
                self.task_of(w)
            except TaskError as e:
                raise TaskError(f"workload {w.name}: {e}") from None

    def _map(self, fn, items: list) -> list:
        """Several units of one candidate at once with a remote executor; in turn locally
        (the controller's threads already run `--workers` candidates side by side)."""
        if isinstance(self.executor, LocalExecutor) or len(items) < 2:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(len(items)) as pool:
            return list(pool.map(fn, items))

    # --- baselines ------------------------------------------------------------------------
    def baselines(self) -> list[tuple]:
        """The store's baseline rows (one workload: the task's; a suite: aggregates)."""
        if not self.suite:
            return [(b.name, b.evaluation.score, b.evaluation.ok, b.ranked, b.evaluation.metrics, b.evaluation.reason)
                    for b in self.executor.baselines(self.task, self.spec(), self.shared)]
        per = self._workload_baselines(self.suite.train)
        self._set_baselines(per)
        return self.scorer.baseline_rows(per)

    def _set_baselines(self, per: dict[str, list[Baseline]]) -> None:
        """Per-workload baselines: the scorer's normalization, and each workload's cost (the
        baselines' time on it), which orders the train workloads cheapest first."""
        self.scorer.set_baselines(per)
        self._cost = {w: sum(b.evaluation.seconds for b in bs) for w, bs in per.items()}

    def _workload_baselines(self, ws: list[Workload]) -> dict[str, list[Baseline]]:
        def one(w: Workload) -> list[Baseline]:
            shared = self.shared if w.name == self.suite.train[0].name else \
                self.shared / "workloads" / str(self.suite.workloads.index(w))
            return self.executor.baselines(self.task_of(w), self.spec(w), shared)
        return dict(zip([w.name for w in ws], self._map(one, ws)))

    def restore(self, rows) -> None:
        """A resumed suite run: the per-workload baselines from the stored baseline rows."""
        if not self.suite:
            return
        per: dict[str, list[Baseline]] = {}
        for r in rows:
            for w, e in json.loads(r["metrics"]).get("workloads", {}).items():
                per.setdefault(w, []).append(Baseline(r["name"], Evaluation(e["ok"], e["score"], seconds=e["seconds"]),
                                                      bool(r["ranked"])))
        self._set_baselines(per)

    def _train_order(self) -> list[Workload]:
        """Train workloads cheapest first (the baselines' time on each): the screen runs first."""
        return sorted(self.suite.train, key=lambda w: self._cost.get(w.name, 0.0))

    # --- a candidate ----------------------------------------------------------------------
    def check(self, source: str, workdir: Path, evaluate: bool = False, best: float | None = None) -> CheckOutcome:
        """The check. With `evaluate` (a search's candidate, one workload), a remote executor
        may evaluate a passing candidate in the same unit of work; evaluate() then uses that."""
        return self.executor.check(self.task, self.spec(self.suite.train[0] if self.suite else None), source,
                                   workdir, evaluate=evaluate and not self.suite, best=best)

    def evaluate(self, source: str, check: CheckOutcome, work: Path, best: float | None,
                 bar: float | None) -> Evaluation:
        """Evaluate; a result above `bar` (the best baseline) is verified before it counts."""
        if not self.suite:
            ev = self.executor.evaluate(self.task, self.spec(), source, check, work, best)
        else:
            ev = self._evaluate_suite(source, check, work, best)
        if ev.ok and ev.stage == "full" and bar is not None and ev.score > bar:
            ev = self.verify(source, check, work, ev)
        return ev

    def _evaluate_suite(self, source: str, check: CheckOutcome, work: Path, best: float | None) -> Evaluation:
        order = self._train_order()
        evs: dict[str, Evaluation] = {}

        def one(w: Workload) -> Evaluation:
            return self.executor.evaluate(self.task_of(w), self.spec(w), source, check,
                                          self._workdir(work, w), None)
        rest = order
        if best is not None:           # a search screens on the cheapest workload first
            first = order[0]
            evs[first.name] = one(first)
            e = evs[first.name]
            if not e.ok:
                return self.scorer.combine(evs)
            if margin(e.score, self.scorer.ranked.get(first.name, [])) < -1:
                ev = self.scorer.combine(evs, stage="screen")
                ev.reason = f"screened out: behind every ranked baseline on {first.name}"
                return ev
            rest = order[1:]
        for w, e in zip(rest, self._map(one, rest)):
            evs[w.name] = e
        return self.scorer.combine({w.name: evs[w.name] for w in self.suite.train})

    def _workdir(self, work: Path, w: Workload) -> Path:
        d = work / "workloads" / str(self.suite.workloads.index(w))    # names may hold , = /
        d.mkdir(parents=True, exist_ok=True)
        return d

    def verify(self, source: str, check: CheckOutcome, work: Path, ev: Evaluation) -> Evaluation:
        """Re-establish a result in trusted code: the task's verify, on every train workload."""
        if not self.suite:
            return self.executor.verify(self.task, self.spec(), source, check, work, ev)
        per = ev.metrics["workloads"]

        def one(w: Workload) -> Evaluation:
            e = per[w.name]
            return self.executor.verify(self.task_of(w), self.spec(w), source, check, self._workdir(work, w),
                                        Evaluation(e["ok"], e["score"], e["metrics"], e["reason"], e["stage"], e["seconds"]))
        evs = dict(zip([w.name for w in self.suite.train], self._map(one, self.suite.train)))
        bad = next(((w, e) for w, e in evs.items() if not e.ok), None)
        if bad:
            return Evaluation(False, None, ev.metrics, reason=f"{bad[1].reason} (on {bad[0]})", stage=ev.stage,
                              seconds=ev.seconds)
        again = self.scorer.combine(evs, stage=ev.stage)
        if again.score != ev.score:
            return Evaluation(False, None, ev.metrics, reason=f"invalid: not deterministic: scored {ev.score!r}, "
                              f"then {again.score!r}", stage=ev.stage, seconds=ev.seconds)
        return dataclasses.replace(again, metrics={**again.metrics, "verified": "every train workload"})

    # --- held-out workloads -----------------------------------------------------------------
    def heldout(self, finalists: list, workdir: Path) -> dict[str, Any]:
        """The finalists (store rows, best train score first) on every held-out workload,
        against that workload's baselines; never used for selection."""
        ws = self.suite.heldout
        base = self._workload_baselines(ws)
        out: dict[str, Any] = {"workloads": [w.name for w in ws], "finalists": [f["id"] for f in finalists],
                               "baselines": {w: {b.name: {"score": b.evaluation.score if b.evaluation.ok else None,
                                                          "ranked": b.ranked} for b in bs} for w, bs in base.items()},
                               "candidates": {}}
        for f in finalists:
            work = workdir / str(f["id"])
            work.mkdir(parents=True, exist_ok=True)
            check = self.check(f["source"], work)
            row: dict[str, Any] = {}
            if not check.ok:
                row = {w.name: {"score": None, "reason": f"fails the {check.stage} check"} for w in ws}
            else:
                def one(w: Workload) -> Evaluation:
                    t, s, d = self.task_of(w), self.spec(w), self._workdir(work, w)
                    e = self.executor.evaluate(t, s, f["source"], check, d, None)
                    return self.executor.verify(t, s, f["source"], check, d, e) if e.ok else e
                for w, e in zip(ws, self._map(one, ws)):
                    row[w.name] = {"score": e.score if e.ok else None, "reason": e.reason}
            out["candidates"][str(f["id"])] = row
            self.log(f"held-out: candidate {f['id']} " + ", ".join(
                f"{w}={'failed' if v['score'] is None else format(v['score'], '.6g')}" for w, v in row.items()))
        return out
