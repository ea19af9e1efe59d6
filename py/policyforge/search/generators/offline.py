"""Offline generator: genetic programming over the task's expression vocabulary.

No network. Each candidate is a genome {hole: expression tree}; new ones come from the
parents (best first, from the selector) by subtree mutation, crossover between two
parents, tuning of one constant, or a fresh random subtree; a share `refine` of the proposals
refines the constants of the best parent in small steps instead (expr.refine: a local search
that runs alongside the global one). Seeds are the task's hand-written
policies. Source is rendered by Task.render(), so it always satisfies the template's rules;
a failed check (rare: e.g. a probe finding a non-deterministic result) is "repaired" by
mutating again.
"""
from __future__ import annotations

import random
import time

from ...task import Task
from .. import expr
from ..prompt import Parent, Repair, normalize
from ..types import Proposal
from .base import Generator


class OfflineGenerator(Generator):
    name = "offline"

    def __init__(self, refine: float = 0.0):
        self.refine = refine

    def _genomes(self, task: Task, parents: list[Parent]) -> list[dict[str, expr.Tree]]:
        hole_names = [h.name for h in task.holes()]
        out = []
        for p in parents:
            if p.genome and all(n in p.genome for n in hole_names):
                out.append({n: expr.parse(p.genome[n]) for n in hole_names})
        if not out:  # no genome-bearing parents (e.g. LLM-only history): start from the seeds
            out = [{n: expr.parse(s.genome[n]) for n in hole_names} for s in task.seeds()]
        return out

    def _child(self, task: Task, pool: list[dict], rng: random.Random) -> tuple[dict, str]:
        holes = task.holes()
        if self.refine and rng.random() < self.refine:   # (no draw at 0: older runs replay alike)
            hole = rng.choice(holes)
            child = dict(pool[0])
            child[hole.name] = expr.refine(hole, pool[0][hole.name], rng)
            return child, "refine"
        # Rank-biased choice: better parents are picked more often.
        weights = [1.0 / (i + 1) for i in range(len(pool))]
        a = rng.choices(pool, weights)[0]
        child = dict(a)
        hole = rng.choice(holes)
        roll = rng.random()
        if roll < 0.3 and len(pool) > 1:
            b = rng.choices(pool, weights)[0]
            child[hole.name] = expr.crossover(a[hole.name], b[hole.name], rng)
            op = "crossover"
            if rng.random() < 0.5:
                child[hole.name] = expr.mutate(hole, child[hole.name], rng)
                op = "crossover+mutate"
        elif roll < 0.5:
            child[hole.name] = expr.tune(hole, a[hole.name], rng)
            op = "tune"
        elif roll < 0.9:
            child[hole.name] = expr.mutate(hole, a[hole.name], rng)
            op = "mutate"
            if rng.random() < 0.3:
                child[hole.name] = expr.mutate(hole, child[hole.name], rng)
                op = "mutate x2"
        else:
            child[hole.name] = expr.random_tree(hole, rng, depth=rng.choice((2, 3, 4)))
            op = "random"
        return child, op

    def propose(self, task: Task, parents: list[Parent], rng: random.Random,
                avoid: set[str] | None = None, model: str | None = None) -> Proposal:
        t0 = time.monotonic()
        pool = self._genomes(task, parents)
        avoid = avoid or set()
        for _ in range(50):
            genome, op = self._child(task, pool, rng)
            text = {k: expr.to_text(v) for k, v in genome.items()}
            source = task.render(text)
            if normalize(source, task.language) not in avoid:
                break
        return Proposal(source=source, genome=text, operation=op, model="gp",
                        seconds=time.monotonic() - t0)

    def repair(self, task: Task, parents: list[Parent], failed: Repair, rng: random.Random,
               model: str | None = None) -> Proposal:
        # The offline generator cannot read compiler output; it proposes a fresh mutation.
        prop = self.propose(task, parents, rng)
        prop.operation = "repair:" + prop.operation
        return prop
