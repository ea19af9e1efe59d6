"""The controller: rounds of generate -> check (+ repair) -> evaluate -> store -> select.

    round 0: the task's seeds
    round r: for each slot, the selector picks parents on the slot's island, the generator
             proposes; all proposals of the round are stored in one transaction; then a
             pool of worker threads checks (repairing with the checker's feedback up to
             `repairs` times) and evaluates each, every step recorded as it finishes.

Resuming a killed run re-reads the store: stored proposals are reused, finished
candidates are skipped, an unfinished one continues from its last recorded attempt, and
run.log is rewritten from the store (a kill can cut its last line). One process writes a run
at a time (RunLock); the store is checkpointed at every round's end and when the run stops.
A full disk stops the run (DiskFull) before anything is recorded from a failure it caused.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import random
import shutil
import sqlite3
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import sandbox, tasks
from ..task import CheckOutcome, Evaluation, Task, TaskError
from . import generators
from .database import FINISHED, RunLock, Store
from .evaluator import Evaluator
from .executor import ExecutorError, make as make_executor  # noqa: F401  (ExecutorError: stops the run)
from .generators import Generator, GeneratorError, GeneratorStop
from .prompt import normalize
from .runlog import Progress, RunLog
from .types import Proposal, Repair
from .selector import IslandSelector
from .suite import Suite


@dataclasses.dataclass
class RunConfig:
    task: str
    task_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    generator: str = "offline"
    models: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    rounds: int = 8
    candidates_per_round: int = 16
    workers: int = 2
    seed: int = 0
    budget_usd: float | None = None
    repairs: int = 3
    islands: int = 2
    top_k: int = 4
    elites: int = 2                   # parents per proposal from the MAP-Elites archive (selector.py)
    refine: float = 0.15              # offline: share of proposals refining the best's constants
    replay_file: str | None = None
    prices: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    model_choice: str = "weights"     # weights | ucb (learned improvement per dollar, search/models.py)
    suite: dict | None = None         # a workload suite (search/suite.py), None: one workload
    executor: str = "local"           # local | ray (search/executor.py)
    ray_address: str | None = None    # a Ray cluster; None with --executor ray: a local Ray

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        d = dict(d)
        d["models"] = [tuple(m) for m in d.get("models", [])]
        # a run stored before the archive and the refinement existed continues without them
        d.setdefault("elites", 0)
        d.setdefault("refine", 0.0)
        d["prices"] = {k: tuple(v) for k, v in d.get("prices", {}).items()}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def make_generator(config: RunConfig) -> Generator:
    """The run's generator, as its configuration says (GeneratorError: it cannot be made)."""
    return generators.make(config.generator, models=config.models, budget_usd=config.budget_usd,
                           prices=config.prices, replay_file=config.replay_file, refine=config.refine)


class DiskFull(Exception):
    """The run's file system is (nearly) full: the run stops, and nothing that failed for lack
    of space is recorded as a candidate's failure."""


# Below this much free space a failing check or evaluation is blamed on the disk, not the
# candidate (compilers and simulators fail to write their outputs first). POLICYFORGE_MIN_FREE_MB
# sets it (tests fill a small file system).
def min_free_bytes() -> int:
    return int(float(os.environ.get("POLICYFORGE_MIN_FREE_MB", "64")) * (1 << 20))


def disk_error(e: BaseException) -> bool:
    """An exception that means the disk is full (the store's or a file's write)."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(e, sqlite3.OperationalError) and "full" in str(e)


@dataclasses.dataclass
class _Checked:
    """A candidate after its checks and repairs: its final source and check."""
    source: str
    check: CheckOutcome
    attempt: int                      # the index of its last attempt = the repairs it took
    check_s: float
    tokens: tuple[int, int, float]    # tokens in, out and USD of its repairs


def source_hash(source: str, language: str = "c") -> str:
    return hashlib.sha256(normalize(source, language).encode()).hexdigest()[:16]


class Controller:
    def __init__(self, out_dir: Path, config: RunConfig, task: Task | None = None,
                 generator: Generator | None = None, quiet: bool = False, lock: RunLock | None = None):
        self.out = Path(out_dir).resolve()   # tasks run tools with cwd set to candidate dirs
        self.out.mkdir(parents=True, exist_ok=True)
        # one writer per run directory: the caller's lock (held past run() to write the report)
        # or our own, released when run() returns
        self._own_lock = lock is None
        self.lock = lock or RunLock(self.out).acquire()
        self.config = config
        self.suite = Suite.from_json(config.suite) if config.suite else None
        self.task = task or tasks.load(config.task, **{**config.task_options,
                                          **(self.suite.train[0].options if self.suite else {})})
        self.store = Store(self.out / "store.sqlite")
        self.resumed = self.store.meta("config") is not None
        if not self.resumed:
            self.store.set_meta("config", config.to_json())
            self.store.set_meta("created", time.time())
        self.generator = generator or make_generator(config)
        self.selector = IslandSelector(islands=config.islands, top_k=config.top_k, elites=config.elites,
                                       behaviour=self.task.behaviour)
        self.shared = self.out / "shared"
        self.quiet = quiet
        self.stop_reason = ""
        self.generator_error: GeneratorError | None = None   # a failure, not a normal stop
        self.runlog = RunLog(self.out / "run.log")
        self._restore_generator_position()
        self.executor = make_executor(config.executor, config.ray_address, self._log, config.workers)
        self.evaluator = Evaluator(self.task, config.task, config.task_options, self.suite, self.executor,
                                   self.shared, self._log)

    # --- resume support -----------------------------------------------------------------
    def _restore_generator_position(self) -> None:
        """Replay positions and budgets continue where the killed run stopped."""
        made = self.store.candidates(generators=(self.generator.name,))
        calls = len(made) + sum(max(0, len(self.store.attempts(x["id"])) - 1) for x in made)
        self.generator.restore(calls, self.store.total_cost())

    # --- the run ------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            try:
                self.store.checkpoint()   # the main file alone holds everything finished
            except sqlite3.Error:
                pass                      # a full disk: the log still holds it (and is consistent)
            self.executor.close()
            if self._own_lock:
                self.lock.release()

    def _run(self) -> dict[str, Any]:
        cfg = self.config
        self._need_space()
        self.shared.mkdir(exist_ok=True)
        if self.resumed:
            self.runlog.rebuild(self.store, f"run {self.out} task={cfg.task} generator={cfg.generator}")
        total = len(self.task.seeds()) + cfg.rounds * cfg.candidates_per_round
        done = len(self.store.candidates(status=FINISHED))
        self.runlog.progress = progress = Progress(total, done) if not self.quiet else None
        self.task.prepare(self.shared)
        self.evaluator.prepare()
        self._log(f"{'resumed' if self.resumed else 'run'} {self.out} task={self.task.name} "
                  f"generator={self.generator.name} rounds={cfg.rounds}x{cfg.candidates_per_round} "
                  f"workers={cfg.workers} seed={cfg.seed}")
        self._baselines()
        try:
            self.pool = pool = ThreadPoolExecutor(max_workers=max(1, cfg.workers))
            try:
                self._round(0)
                for rnd in range(1, cfg.rounds + 1):
                    if self.stop_reason:
                        break
                    self._round(rnd)
            except (KeyboardInterrupt, sandbox.Interrupted):
                # Ctrl-C: kill every running candidate and start no more, without waiting for
                # the workers; what is stored stays stored, --resume picks up the rest
                sandbox.interrupt()
                self.executor.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
                raise KeyboardInterrupt from None
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)   # start no more, finish the running
                raise
            pool.shutdown(wait=True)
            self._verify_winner()
            self._heldout()
        finally:
            if progress:
                progress.close()
        best = self.store.best()
        if self.stop_reason:
            self._log(f"stopped early: {self.stop_reason}")
        generated = len(self.store.candidates(generated=True))
        return {"best": best, "stop_reason": self.stop_reason, "generated": generated,
                "generator_error": str(self.generator_error) if self.generator_error else ""}

    def _stop(self, e: GeneratorError) -> None:
        """The generator cannot go on: stop after the running candidates."""
        self.stop_reason = str(e)
        if not isinstance(e, GeneratorStop):
            self.generator_error = e

    def _need_space(self) -> None:
        free = shutil.disk_usage(self.out).free
        if free < min_free_bytes():
            raise DiskFull(f"only {free >> 20} MiB free on the file system of {self.out}")

    def _disk_is_full(self) -> bool:
        try:
            self._need_space()
        except DiskFull:
            return True
        return False

    def _log(self, text: str) -> None:
        self.runlog.event(text)

    def _baselines(self) -> None:
        if self.store.baselines():
            self.evaluator.restore(self.store.baselines())
            return
        self._log("running baselines ..." + (f" on {len(self.suite.train)} train workloads" if self.suite else ""))
        t0 = time.monotonic()
        rows = self.evaluator.baselines()
        if any(not ok for _, _, ok, *_ in rows) and self._disk_is_full():
            raise DiskFull(f"the baselines could not run: the file system of {self.out} is full")
        self.store.set_baselines(rows)     # one transaction: all or none
        self._log(f"baselines done in {time.monotonic() - t0:.1f}s")

    def _round(self, rnd: int) -> None:
        if self.store.round_done(rnd):
            return
        if self.runlog.progress:
            self.runlog.progress.round = rnd
        rows = self.store.round_candidates(rnd)
        if not rows:
            self._propose_round(rnd)
            rows = self.store.round_candidates(rnd)
        best_prev = self.store.scored(before_round=rnd)
        best_score = best_prev[0]["score"] if best_prev else None
        pending = [r["id"] for r in rows if r["status"] == "pending"]
        list(self.pool.map(lambda cid: self._pipeline(cid, best_score), pending))
        if not self.stop_reason:
            self.store.mark_round(rnd)
            self.store.checkpoint()
            best = self.store.best()
            if best is not None:
                prog = self.runlog.progress        # the ETA in the log too, not only on a terminal
                eta = f"; {prog.done}/{prog.total} candidates, {prog.eta().strip()}" if prog and prog.eta() else ""
                self._log(f"round {rnd} done: best so far {best['score']:.6f} (candidate {best['id']}){eta}")

    def _propose_round(self, rnd: int) -> None:
        cfg = self.config
        if rnd == 0:
            rows = []
            for i, s in enumerate(self.task.seeds()):
                src = s.source or self.task.render(s.genome)
                rows.append(dict(round=0, slot=i, island=-1, parents=[], generator="seed", model="",
                                 operation=f"seed:{s.name}", genome=s.genome, source=src,
                                 source_hash=source_hash(src, self.task.language)))
            self.store.add_round(rows)
            return
        avoid = {normalize(r["source"], self.task.language) for r in self.store.candidates()}
        planned: list[str] | None = None
        if cfg.model_choice == "ucb" and cfg.models:
            from .models import model_stats, plan
            names = [m for m, _ in cfg.models]
            planned = plan(names, model_stats(self.store, names, rnd), cfg.candidates_per_round)

        def one(slot: int) -> dict | None:
            if self.stop_reason:     # the generator already failed this round: ask no more
                return None
            t0 = time.monotonic()
            rng = random.Random(f"{cfg.seed}:{rnd}:{slot}")
            island = self.selector.island_of(slot)
            parents = self.selector.parents(self.store, island, rnd, rng)
            try:
                prop = self.generator.propose(self.task, parents, rng, avoid,
                                              model=planned[slot] if planned else None)
            except GeneratorError as e:
                self._stop(e)
                return None
            avoid.add(normalize(prop.source, self.task.language))
            return dict(round=rnd, slot=slot, island=island, parents=[p.id for p in parents],
                        generator=self.generator.name, model=prop.model, operation=prop.operation,
                        prompt=prop.prompt, response=prop.response, genome=prop.genome,
                        source=prop.source, source_hash=source_hash(prop.source, self.task.language),
                        tokens_in=prop.tokens_in, tokens_out=prop.tokens_out,
                        cost_usd=prop.cost_usd, gen_s=time.monotonic() - t0)  # selection + generation

        slots = range(cfg.candidates_per_round)
        if self.generator.concurrent:
            results = list(self.pool.map(one, slots))
        else:
            results = [one(s) for s in slots]   # in order: deterministic for the offline search
        rows = [r for r in results if r is not None]
        if rows:
            self.store.add_round(rows)

    # --- one candidate ------------------------------------------------------------------
    def _pipeline(self, cid: int, best_score: float | None) -> None:
        t0 = time.monotonic()
        try:
            self._check_and_evaluate(cid, best_score, t0)
        except (TaskError, DiskFull, sqlite3.Error, ExecutorError):
            raise                # the machine cannot check, run or store anything: stop
        except Exception as e:  # a bug in a task must not take the run down
            if disk_error(e) or self._disk_is_full():
                raise DiskFull(f"the file system of {self.out} is full ({e})") from None
            self.runlog.raw(traceback.format_exc())
            row = self.store.candidate(cid)
            self.store.finish(cid, status="failed", source=row["source"], source_hash=row["source_hash"],
                              reason=f"internal error: {type(e).__name__}: {e}",
                              pipeline_s=time.monotonic() - t0)
            self._report_candidate(cid)

    def _check_and_evaluate(self, cid: int, best_score: float | None, t0: float) -> None:
        """One candidate: check it (repairing with the checker's feedback), then evaluate the
        one that passed, and record the outcome."""
        row = self.store.candidate(cid)
        checked = self._check_with_repairs(row, t0, best_score)
        if checked is None:          # a duplicate of an earlier candidate, recorded as such
            self._report_candidate(cid)
            return
        common = dict(source=checked.source, source_hash=source_hash(checked.source, self.task.language), check_s=checked.check_s,
                      extra_tokens=checked.tokens, repairs=checked.attempt)
        if not checked.check.ok:
            self.store.finish(cid, status="check_failed", reason=f"{checked.check.stage}: "
                              f"{first_line(checked.check.feedback)}", pipeline_s=time.monotonic() - t0, **common)
        else:
            ev = self._evaluate(cid, checked.source, checked.check, best_score)
            status = "evaluated" if ev.ok and ev.stage == "full" else ("screened" if ev.ok else "failed")
            self.store.finish(cid, status=status, score=ev.score if status == "evaluated" else None,
                              metrics=dict(ev.metrics, screen_score=ev.score) if status == "screened" else ev.metrics,
                              reason=ev.reason, eval_stage=ev.stage, eval_s=ev.seconds,
                              pipeline_s=time.monotonic() - t0, **common)
        self._report_candidate(cid)

    def _check_with_repairs(self, row, t0: float, best_score: float | None = None) -> "_Checked | None":
        """Check the candidate's latest attempt; while it fails and repairs are left, ask the
        generator for a repair and check that. A resumed candidate continues from its last
        recorded attempt. None when an attempt turns out to duplicate an earlier candidate
        (recorded here)."""
        cid = row["id"]
        attempts = self.store.attempts(cid)
        if not attempts:
            self.store.record_attempt(cid, 0, source=row["source"])
        attempt = max(0, len(attempts) - 1)
        source = attempts[-1]["source"] if attempts else row["source"]
        check_s, tokens, parents = 0.0, (0, 0, 0.0), None
        while True:
            h = source_hash(source, self.task.language)
            twin = self.store.candidates(source_hash=h, before_id=cid)
            if twin:
                self.store.finish(cid, status="duplicate", source=source, source_hash=h,
                                  reason=f"same source as candidate {twin[0]['id']}",
                                  pipeline_s=time.monotonic() - t0, repairs=attempt)
                return None
            check = self._check_attempt(cid, attempt, source, best_score)
            check_s += check.seconds
            if check.ok or attempt >= self.config.repairs:
                break
            if parents is None:       # the parents the candidate was made from, as at its round
                rng = random.Random(f"{self.config.seed}:{row['round']}:{row['slot']}")
                parents = self.selector.parents(self.store, max(0, row["island"]), row["round"], rng)
            prop = self._repair(row, attempt, source, check, parents)
            if prop is None:
                break
            attempt += 1
            source = prop.source
            tokens = (tokens[0] + prop.tokens_in, tokens[1] + prop.tokens_out, tokens[2] + prop.cost_usd)
            self.store.record_attempt(cid, attempt, source=source, prompt=prop.prompt, response=prop.response,
                                      tokens_in=prop.tokens_in, tokens_out=prop.tokens_out, cost_usd=prop.cost_usd)
        return _Checked(source, check, attempt, check_s, tokens)

    def _check_attempt(self, cid: int, attempt: int, source: str, best_score: float | None = None) -> CheckOutcome:
        """The check of one attempt. A recorded failure is reused; a recorded pass is checked
        again (checking is deterministic) to rebuild the artifact evaluation needs."""
        last = self.store.attempts(cid)[attempt]
        if last["ok"] == 0:
            return CheckOutcome(False, last["stage"], last["feedback"])
        attempt_dir = self.out / "candidates" / str(cid) / f"attempt{attempt}"
        if attempt_dir.exists():
            shutil.rmtree(attempt_dir)
        attempt_dir.mkdir(parents=True)
        check = self.evaluator.check(source, attempt_dir, evaluate=True, best=best_score)
        if not check.ok and self._disk_is_full():   # the compiler could not write: not the candidate's fault
            raise DiskFull(f"checks fail: the file system of {self.out} is full")
        self.store.record_attempt(cid, attempt, source=source, ok=int(check.ok), stage=check.stage,
                                  feedback=check.feedback, seconds=check.seconds, log=check.info.get("log"))
        return check

    def _repair(self, row, attempt: int, source: str, check: CheckOutcome, parents) -> Proposal | None:
        """The generator's repair of a failed attempt: the checker's exact output, and the
        earlier failures of this candidate (short), so a model does not oscillate. None when
        the generator cannot go on (the run stops after the running candidates)."""
        cid = row["id"]
        earlier = [(a["stage"], a["feedback"]) for a in self.store.attempts(cid)[:attempt] if a["ok"] == 0]
        rng = random.Random(f"{self.config.seed}:{cid}:{attempt + 1}")
        try:
            return self.generator.repair(
                self.task, parents, Repair(source, check.stage, check.feedback, earlier), rng,
                model=row["model"] if self.config.model_choice == "ucb" and row["model"] else None)
        except GeneratorError as e:
            self._stop(e)
            return None

    def _evaluate(self, cid: int, source: str, check: CheckOutcome, best_score: float | None) -> Evaluation:
        """Evaluate a checked candidate; a result that beats the best baseline is established
        again in trusted code (task.verify) before it is recorded."""
        work = check.artifact.parent if check.artifact else self.out / "candidates" / str(cid)
        work.mkdir(parents=True, exist_ok=True)
        ev = self.evaluator.evaluate(source, check, work, best_score, self.store.best_baseline_score())
        if not ev.ok and self._disk_is_full():
            raise DiskFull(f"evaluations fail: the file system of {self.out} is full")
        return ev

    def _verify_winner(self) -> None:
        """The winner's score must hold up in trusted code (task.verify) before anything is
        reported or exported; one that does not is marked invalid and the next best is tried."""
        while (best := self.store.best()) is not None:
            metrics = json.loads(best["metrics"] or "{}")
            if metrics.get("verified"):
                return
            work = self.out / "candidates" / str(best["id"]) / "verify"
            if work.exists():
                shutil.rmtree(work)
            check = self.evaluator.check(best["source"], work)
            if not check.ok:
                ev = Evaluation(False, None, metrics, reason=f"invalid: no longer passes the {check.stage} check")
            else:
                ev = self.evaluator.verify(best["source"], check, work, Evaluation(True, best["score"], metrics))
            if not ev.ok and self._disk_is_full():
                raise DiskFull(f"the winner could not be verified: the file system of {self.out} is full")
            if ev.ok:
                self.store.set_verified(best["id"], ev.score, ev.metrics)
                self._log(f"winner {best['id']}: {ev.metrics.get('verified', 'verified')}")
            else:
                self.store.set_invalid(best["id"], ev.reason, ev.metrics)
                self._log(f"winner {best['id']} is {ev.reason}; trying the next best")

    def _heldout(self) -> None:
        """A suite's held-out workloads: the top finalists by train score, evaluated once the
        search is over (selection never saw them); stored whole in one meta row."""
        if not self.suite or not self.suite.heldout:
            return
        finalists = self.store.scored()[:self.suite.finalists]
        done = self.store.meta("heldout")
        if not finalists or (done and done["finalists"] == [f["id"] for f in finalists]):
            return                    # none yet, or these finalists' results are stored
        self._log(f"held-out: {len(finalists)} finalists on {len(self.suite.heldout)} held-out workloads ...")
        t0 = time.monotonic()
        result = self.evaluator.heldout(finalists, self.out / "heldout")
        self.store.set_meta("heldout", result)
        self._log(f"held-out done in {time.monotonic() - t0:.1f}s")

    def _report_candidate(self, cid: int) -> None:
        self.runlog.candidate(self.store, self.store.candidate(cid))


def first_line(text: str) -> str:
    for ln in text.splitlines():
        if ln.strip():
            return ln.strip()[:200]
    return ""
