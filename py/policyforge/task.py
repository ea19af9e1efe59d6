"""The Task interface: everything the engine knows about a domain.

A domain (cache, cc, eplb, ...) is a package under ``policyforge.tasks`` that exposes
``TASK_CLASS``, a subclass of :class:`Task`. The engine drives it one way:

    source --check()--> CheckOutcome --evaluate()--> Evaluation --> store

Adding a domain touches no engine file: the registry finds it by its package name.
"""
from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable



class TaskError(Exception):
    """A problem the user can fix (bad option, bad trace, missing tool): one clear line."""


@dataclasses.dataclass
class Hole:
    """A function a candidate defines, in the task's language (Task.language): its name, its
    signature as the candidate writes it, and the vocabulary the offline generator builds
    expressions from (feature name -> an expression over the parameters, in that language).
    The prompt's rules come from the task's checker grammar where it has one."""
    name: str                     # e.g. "priority"
    signature: str                # C: "double priority(...)"; Python: "def decide(a, b)"
    variables: dict[str, str]     # feature name -> expression over the parameters
    doc: str = ""                 # what the function is for, shown in prompts without a grammar
    integer: bool = False         # integer-only arithmetic (kernel code)
    constants: tuple = ()         # constant pool for the offline generator; defaults by number type

    @property
    def ops(self) -> dict[str, int]:
        from .search.expr import FLOAT_OPS, INT_OPS
        return INT_OPS if self.integer else FLOAT_OPS

    @property
    def constant_pool(self) -> tuple:
        from .search.expr import FLOAT_CONSTANTS, INT_CONSTANTS
        return self.constants or (INT_CONSTANTS if self.integer else FLOAT_CONSTANTS)


@dataclasses.dataclass
class Option:
    """A task option settable with ``policyforge run TASK -o name=value``."""
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


def number(kind: Callable[[str], Any] = float, *, min: float | None = None, above: float | None = None,
           max: float | None = None) -> Callable[[str], Any]:
    """A parser for a numeric option: `kind` (int or float), finite, and within the bounds
    given (`min` inclusive, `above` exclusive, `max` inclusive). Its ValueError says which
    bound a value broke, so `-o timeout_s=-1` is refused in one line instead of timing out
    every run after -1 s."""
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except (TypeError, ValueError):
            raise ValueError(f"expected {'an integer' if kind is int else 'a number'}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("must be a finite number")
        if min is not None and v < min:
            raise ValueError(f"must be at least {min:g}")
        if above is not None and v <= above:
            raise ValueError(f"must be greater than {above:g}")
        if max is not None and v > max:
            raise ValueError(f"must be at most {max:g}")
        return v
    parse.__name__ = kind.__name__     # `policyforge tasks` shows the option's type
    return parse


def boolean(text: str) -> bool:
    """A yes/no option: 1/true/yes/on or 0/false/no/off, anything else refused."""
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false (1/0, yes/no, on/off)")


@dataclasses.dataclass
class Seed:
    """A hand-written starting policy. ``genome`` maps hole name -> expression (offline DSL)."""
    name: str
    genome: dict[str, str]
    source: str = ""          # filled by Task.render() when empty


@dataclasses.dataclass
class CheckOutcome:
    """Result of compiling and verifying one candidate.

    ``stage`` names the checker stage that failed ("static", "compile", "verifier", "probe"),
    or "ok". ``feedback`` is the exact text that goes back to the generator for repair.
    ``artifact`` is what evaluate() consumes (a .so, a .bpf.o, ...). ``checked_source`` is
    the text that was checked and compiled (the preprocessed candidate): exports build from it.
    """
    ok: bool
    stage: str
    feedback: str = ""
    artifact: Path | None = None
    seconds: float = 0.0
    checked_source: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Evaluation:
    """Metrics of one candidate (or baseline). ``score``: higher is better."""
    ok: bool
    score: float | None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    reason: str = ""          # why it failed: "timeout", "crash (SIGSEGV)", "memory", "invalid: ..."
    stage: str = "full"       # the last cascade stage it reached
    seconds: float = 0.0


@dataclasses.dataclass
class Baseline:
    name: str
    evaluation: Evaluation
    ranked: bool = True       # False for bounds such as Belady: shown, never "beaten"


class Task(ABC):
    """One domain. Subclasses set the class attributes and implement the methods."""

    name: str = ""                    # CLI name: "cache"
    title: str = ""                   # one line for reports
    language: str = "c"               # fenced-code language expected from an LLM
    score_label: str = "score"        # what the score means, e.g. "hit ratio (1 - miss ratio)"
    options: list[Option] = []
    #: the allowlist grammar (policyforge.checking.Grammar) the checker enforces on candidates;
    #: the prompt's rules are rendered from it, so the two cannot disagree
    grammar: Any = None

    def __init__(self, **values: Any):
        known = {o.name: o for o in self.options}
        self.opts: dict[str, Any] = {o.name: o.default for o in self.options}
        for k, v in values.items():
            if k not in known:
                raise TaskError(f"unknown option '{k}' for task {self.name}; "
                                f"known: {', '.join(sorted(known)) or 'none'}")
            try:
                self.opts[k] = known[k].parse(v) if isinstance(v, str) else v
            except (ValueError, TypeError) as e:
                raise TaskError(f"bad value for option {k}={v!r}: {e}") from None

    # --- what the generator sees -------------------------------------------------------
    @abstractmethod
    def holes(self) -> list[Hole]:
        """The functions a candidate defines, with their signature and feature vocabulary."""

    @abstractmethod
    def describe(self) -> str:
        """Problem statement and constraints for the prompt (natural language + API)."""

    @abstractmethod
    def seeds(self) -> list[Seed]:
        """Hand-written seed policies (at least one)."""

    def render(self, genome: dict[str, str]) -> str:
        """Source of the candidate, in the task's language, for an expression genome (the
        offline generator)."""
        from .search.expr import render_function, parse
        return "\n".join(render_function(h, parse(genome[h.name]), self.language) for h in self.holes())

    # --- check / evaluate (run in engine worker threads; anything that executes
    #     candidate code must go through policyforge.sandbox) --------------------------
    def prepare(self, workdir: Path) -> None:
        """Once per run before anything else: build traces, workloads, shared objects."""

    @abstractmethod
    def check(self, source: str, workdir: Path) -> CheckOutcome:
        """Static rules, compile, verify. Must never raise for bad candidate code."""

    @abstractmethod
    def evaluate(self, check: CheckOutcome, workdir: Path,
                 best_so_far: float | None = None) -> Evaluation:
        """Run the checked candidate. Cascade: cheap screens first; a candidate that a screen
        rejects (compared with ``best_so_far``) returns with ``stage`` set to that screen."""

    def verify(self, check: CheckOutcome, workdir: Path, evaluation: Evaluation) -> Evaluation:
        """Re-establish a result that matters (it beats the best baseline, or it is the winner)
        in processes the first evaluation did not run in. The default evaluates again: a
        different score means the candidate is not deterministic, and the result is invalid.
        Tasks that can recount a result in trusted code do that instead (cache)."""
        t0 = time.monotonic()
        again = self.evaluate(check, workdir, None)
        if not again.ok or again.score != evaluation.score:
            got = again.reason if not again.ok else f"{again.score!r}"
            return Evaluation(False, None, evaluation.metrics, stage=evaluation.stage,
                              reason=f"invalid: not deterministic: scored {evaluation.score!r}, then {got}",
                              seconds=evaluation.seconds + time.monotonic() - t0)
        return dataclasses.replace(evaluation, metrics={**evaluation.metrics, "verified": "second evaluation"},
                                   seconds=evaluation.seconds + time.monotonic() - t0)

    @abstractmethod
    def baselines(self, workdir: Path) -> list[Baseline]:
        """The standard baselines on the same workload, in the same build."""

    @abstractmethod
    def export(self, source: str, check: CheckOutcome, out_dir: Path) -> dict[str, Any]:
        """Write the deployable artifacts of a winner; return {'files': [...], 'usage': str}."""

    def curves(self, check: CheckOutcome, baselines: list[str]) -> dict[str, Any] | None:
        """Optional, for the report: the winner and the named baselines along a dimension the
        task varies cheaply (cache: miss ratio against cache size). {'x_label', 'y_label',
        'x': [...], 'series': {name: [...]}}, or None."""
        return None

    #: optional feature: evaluate one policy on every trace of a directory (`eval --traces`)
    supports_transfer: bool = False

    def transfer(self, source: str, traces_dir: Path, workdir: Path) -> dict[str, Any]:
        """One policy on every workload in `traces_dir` (tasks with supports_transfer)."""
        raise TaskError(f"task {self.name} does not evaluate across --traces")

    #: the trade-off a reader should see besides the score, as two metric names and their labels
    #: (x, y, x label, y label): the report plots every scheme in that plane (cc: p95 delay and
    #: throughput). None: no such plot.
    tradeoff: tuple[str, str, str, str] | None = None

    #: how people read a score (the engine always maximizes `score`): a label and a transform,
    #: e.g. the cache task's score is the hit ratio and its field speaks of miss ratio
    shown_label: str = ""

    def shown(self, score: float) -> float:
        return score

    def behaviour(self, genome: dict[str, str]) -> str:
        """A candidate's niche for the MAP-Elites archive of the offline search
        (search/selector.py): by default the set of features its expressions read. Tasks with
        many features group them (cache: recency, frequency, ghost, reuse gap, statistics), so
        that the archive has tens of cells, not one per candidate."""
        from .search import expr
        used: set[str] = set()
        for text in genome.values():
            used |= expr.variables(expr.parse(text))
        return "+".join(sorted(used)) or "constant"

    def ray_resources(self) -> dict[str, Any]:
        """What a node must have to check and evaluate this task's candidates, as Ray
        resources for `--executor ray`: num_cpus (default 1), num_gpus, and custom resources
        that a node declares with `ray start --resources` (docs/engine.md, "Run on a cluster")."""
        return {}

    def describe_run(self) -> dict[str, Any]:
        """Options and workload identity, stored with the run and printed in reports."""
        return dict(self.opts)
