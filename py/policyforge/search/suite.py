"""Workload suites: a search scored on several workloads, with some held out.

A suite is a list of workloads, each a set of task-option overrides (a trace and a cache
size, a link and a flow count, a load log and a shape) on top of the run's options, split
into `train` and `heldout`:

    policyforge run cache --suite suite.toml
    policyforge run cache -o trace=a.bin -o trace=b.bin -o heldout.trace=c.bin

The score a search optimizes is an aggregate over the train workloads of each workload's
score *normalized by that workload's own baselines* (raw scores of two traces or two links
are not on one scale):

    margin_w = (score_w - best ranked baseline_w) / spread_w
    spread_w = best - worst ranked baseline on w (|best| when they tie; 1 when that is 0)

so 0 is level with the best baseline of that workload and -1 is as far behind it as the
worst baseline is. `aggregate` picks how margins combine:

* `mean` (default): the mean margin. Scale-free across workloads, continuous (every
  improvement on any workload moves it, which a search needs), and a large win on one
  workload cannot hide behind raw units;
* `worst`: the smallest margin, for a policy that must not lose anywhere (flat at first:
  only the worst workload moves it);
* `rank`: the mean fraction of ranked baselines the policy beats per workload (0..1), the
  "beats N of M" of a report averaged over workloads (coarse: a step function).

Held-out workloads are never seen by selection: after the search, the top `finalists` by
train score are evaluated on them and reported beside the winner, which stays the best by
train score (no peeking).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from ..task import Baseline, Evaluation, TaskError

AGGREGATES = ("mean", "worst", "rank")


@dataclasses.dataclass
class Workload:
    name: str
    split: str                    # "train" | "heldout"
    options: dict[str, Any]       # overrides of the run's task options

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Suite:
    workloads: list[Workload]
    aggregate: str = "mean"
    finalists: int = 5

    @property
    def train(self) -> list[Workload]:
        return [w for w in self.workloads if w.split == "train"]

    @property
    def heldout(self) -> list[Workload]:
        return [w for w in self.workloads if w.split == "heldout"]

    def to_json(self) -> dict:
        return {"workloads": [w.to_json() for w in self.workloads], "aggregate": self.aggregate,
                "finalists": self.finalists}

    @classmethod
    def from_json(cls, d: dict) -> "Suite":
        return cls([Workload(**w) for w in d["workloads"]], d.get("aggregate", "mean"), d.get("finalists", 5))

    def label(self, task_label: str) -> str:
        what = {"mean": "mean over the train workloads of", "worst": "worst train workload's",
                "rank": "mean over the train workloads of the fraction of ranked baselines beaten, by"}[self.aggregate]
        return (f"{what} the margin over that workload's best baseline, in units of its baselines' spread "
                f"(0 = level with the best; per-workload score: {task_label})" if self.aggregate != "rank"
                else f"{what} {task_label}")

    def validate(self) -> "Suite":
        if self.aggregate not in AGGREGATES:
            raise TaskError(f"unknown suite aggregate '{self.aggregate}'; known: {', '.join(AGGREGATES)}")
        if not isinstance(self.finalists, int) or self.finalists < 1:
            raise TaskError(f"suite finalists must be a positive integer, not {self.finalists!r}")
        if not self.train:
            raise TaskError("the suite has no train workload")
        names = [w.name for w in self.workloads]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise TaskError(f"two workloads of the suite are named '{dup}'")
        return self


def _name(options: dict[str, Any]) -> str:
    """A short readable name from a workload's overrides: file paths by their base name."""
    parts = []
    for k, v in options.items():
        v = str(v)
        parts.append(f"{k}={Path(v).name if '/' in v else v}")
    return ",".join(parts) or "default"


def _workloads(rows: list[Any], split: str, where: str) -> list[Workload]:
    out = []
    if not isinstance(rows, list):
        raise TaskError(f"{where}: '{split}' must be a list of tables ([[{split}]])")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TaskError(f"{where}: {split} workload {i + 1} is not a table of options")
        row = dict(row)
        name = str(row.pop("name", "")) or _name(row)
        out.append(Workload(name, split, {str(k).replace("-", "_"): v for k, v in row.items()}))
    return out


def load_suite(path: str | Path) -> tuple[dict[str, Any], Suite]:
    """Read a suite file (TOML or JSON): returns (base options, suite).

        aggregate = "mean"          # mean | worst | rank
        finalists = 5
        [options]                   # the run's options, shared by every workload
        timeout_s = 60
        [[train]]
        trace = "traces/a.oracleGeneral.bin"
        cache_size = 0.1
        [[heldout]]
        name = "web"                # optional; default: the overrides
        trace = "traces/c.oracleGeneral.bin"

    Relative file paths are relative to the suite file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise TaskError(f"cannot read suite {p}: {e.strerror or e}") from None
    try:
        d = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise TaskError(f"suite {p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {e}") from None
    if not isinstance(d, dict):
        raise TaskError(f"suite {p} must be a table")
    unknown = set(d) - {"aggregate", "finalists", "options", "train", "heldout"}
    if unknown:
        raise TaskError(f"suite {p}: unknown key '{sorted(unknown)[0]}' "
                        "(known: aggregate, finalists, options, train, heldout)")

    def resolve(opts: dict) -> dict:         # paths relative to the suite file, if they exist there
        out = {}
        for k, v in opts.items():
            cand = p.parent / str(v)
            out[k] = str(cand.resolve()) if isinstance(v, str) and not Path(v).is_absolute() and cand.exists() else v
        return out

    base = resolve({str(k).replace("-", "_"): v for k, v in (d.get("options") or {}).items()})
    ws = _workloads(d.get("train", []), "train", str(p)) + _workloads(d.get("heldout", []), "heldout", str(p))
    for w in ws:
        w.options = resolve(w.options)
    return base, Suite(ws, d.get("aggregate", "mean"), d.get("finalists", 5)).validate()


def suite_from_options(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], Suite | None]:
    """Repeated -o: an option given more than once varies across train workloads (the cross
    product of such options); `heldout.NAME=V` options make held-out workloads the same way;
    `suite.aggregate=` and `suite.finalists=` set the aggregate. With none of these, no suite:
    (options, None), the run of one workload it always was."""
    base: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    meta: dict[str, str] = {}
    for k, v in pairs:
        if k.startswith("heldout."):
            held.setdefault(k[len("heldout."):], []).append(v)
        elif k.startswith("suite."):
            meta[k[len("suite."):]] = v
        elif k in base or k in multi:
            multi.setdefault(k, [base.pop(k)] if k in base else []).append(v)
        else:
            base[k] = v
    if not multi and not held and not meta:
        return base, None
    unknown = set(meta) - {"aggregate", "finalists"}
    if unknown:
        raise TaskError(f"unknown suite setting suite.{sorted(unknown)[0]} (known: suite.aggregate, suite.finalists)")

    def product(d: dict[str, list[str]], split: str) -> list[Workload]:
        keys = list(d)
        return [Workload(_name(dict(zip(keys, vals))), split, dict(zip(keys, vals)))
                for vals in itertools.product(*(d[k] for k in keys))] if keys else []

    train = product(multi, "train") or [Workload("default", "train", {})]
    try:
        finalists = int(meta.get("finalists", 5))
    except ValueError:
        raise TaskError(f"suite.finalists={meta['finalists']!r} is not an integer") from None
    return base, Suite(train + product(held, "heldout"), meta.get("aggregate", "mean"), finalists).validate()


# --- normalization and aggregation --------------------------------------------------------
def margin(score: float, ranked: list[float]) -> float:
    """(score - best ranked baseline) / spread of the ranked baselines (see the module doc)."""
    if not ranked:
        return score
    best, worst = max(ranked), min(ranked)
    spread = best - worst
    if spread <= 0:
        spread = abs(best) or 1.0
    return (score - best) / spread


def fraction_beaten(score: float, ranked: list[float]) -> float:
    return sum(score > b for b in ranked) / len(ranked) if ranked else 0.0


def aggregate(scores: dict[str, float], ranked: dict[str, list[float]], how: str) -> float:
    """The suite score of per-workload scores, each normalized by its workload's ranked
    baselines (`ranked[w]`: their scores)."""
    if how == "rank":
        vals = [fraction_beaten(s, ranked[w]) for w, s in scores.items()]
    else:
        vals = [margin(s, ranked[w]) for w, s in scores.items()]
    if how == "worst":
        return min(vals)
    return sum(vals) / len(vals)


class SuiteScorer:
    """Turns per-workload evaluations into the one score a search selects on, and back:
    used by the controller when the run has a suite (a run of one workload skips it)."""

    def __init__(self, suite: Suite):
        self.suite = suite
        self.ranked: dict[str, list[float]] = {}     # workload -> its ranked baselines' scores

    def set_baselines(self, per_workload: dict[str, list[Baseline]]) -> None:
        self.ranked = {w: [b.evaluation.score for b in bs if b.ranked and b.evaluation.ok
                           and b.evaluation.score is not None and math.isfinite(b.evaluation.score)]
                       for w, bs in per_workload.items()}

    def combine(self, evs: dict[str, Evaluation], stage: str = "full") -> Evaluation:
        """One evaluation from those of the train workloads in `evs` (a failure on any is a
        failure: a policy that crashes on one workload is not deployable)."""
        metrics = {"workloads": {w: {"score": e.score, "ok": e.ok, "reason": e.reason, "stage": e.stage,
                                     "seconds": e.seconds, "metrics": e.metrics} for w, e in evs.items()}}
        seconds = sum(e.seconds for e in evs.values())
        bad = next(((w, e) for w, e in evs.items() if not e.ok), None)
        if bad:
            return Evaluation(False, None, metrics, reason=f"{bad[0]}: {bad[1].reason}", stage=stage, seconds=seconds)
        scores = {w: e.score for w, e in evs.items()}
        metrics["margins"] = {w: margin(s, self.ranked.get(w, [])) for w, s in scores.items()}
        return Evaluation(True, aggregate(scores, self.ranked, self.suite.aggregate), metrics,
                          stage=stage, seconds=seconds)

    def baseline_rows(self, per_workload: dict[str, list[Baseline]]) -> list[tuple]:
        """The store's baseline rows: each baseline's aggregate over the train workloads,
        computed exactly like a candidate's, with its per-workload scores in its metrics."""
        names: list[str] = []
        for bs in per_workload.values():
            names += [b.name for b in bs if b.name not in names]
        rows = []
        for n in names:
            evs = {}
            ranked = True
            for w, bs in per_workload.items():
                b = next((b for b in bs if b.name == n), None)
                evs[w] = b.evaluation if b else Evaluation(False, None, reason="not run on this workload")
                ranked = ranked and (b.ranked if b else True)
            ev = self.combine(evs)
            rows.append((n, ev.score, ev.ok, ranked, ev.metrics, ev.reason))
        return rows


def per_workload_table(candidates: dict[str, dict[str, float | None]],
                       baselines: dict[str, dict[str, tuple[float | None, bool]]]) -> list[dict[str, Any]]:
    """Rows for a report: per workload, each candidate's score, the best ranked baseline and
    whether the candidate beats every ranked baseline there.
    candidates: label -> {workload: score}; baselines: workload -> {name: (score, ranked)}."""
    rows = []
    for w, bs in baselines.items():
        ranked = {n: s for n, (s, rk) in bs.items() if rk and s is not None}
        best = max(ranked.items(), key=lambda kv: kv[1]) if ranked else (None, None)
        row = {"workload": w, "best_baseline": best[0], "best_baseline_score": best[1], "candidates": {}}
        for label, scores in candidates.items():
            s = scores.get(w)
            row["candidates"][label] = {"score": s, "beats_all": s is not None and bool(ranked)
                                        and all(s > b for b in ranked.values()),
                                        "beaten": sum(s > b for b in ranked.values()) if s is not None else 0,
                                        "ranked": len(ranked)}
        rows.append(row)
    return rows
