"""Parent selection: islands with ring migration, top-k plus a few random picks per island,
plus (with `elites`) parents from a MAP-Elites archive.

The archive keeps the best candidate of each behaviour cell (Task.behaviour: for the cache, which
groups of features its priority reads). Drawing elites from cells chosen uniformly, not by
score, keeps lines of search alive that are behind the best today (a policy reading the reuse
gap, say, while the leaders read frequency) and gives crossover different material.

Selection reads only candidates of earlier rounds, so a round's proposals depend on the
store as it stood when the round began: a resumed run proposes exactly what an
uninterrupted one would have.
"""
from __future__ import annotations

import json
import random

from .database import Store
from .types import Parent


def _parent(row) -> Parent:
    return Parent(id=row["id"], source=row["source"], score=row["score"],
                  genome=json.loads(row["genome"]) if row["genome"] else None,
                  metrics=json.loads(row["metrics"]) if row["metrics"] else None)


def _distinct(rows: list) -> list:
    """One candidate per score: equal scores almost always mean the same behaviour (e.g.
    `x + 0` and `x`), and a pool of look-alikes stops the search from exploring."""
    seen: set[float] = set()
    out = []
    for r in rows:
        key = round(r["score"], 12)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


class IslandSelector:
    def __init__(self, islands: int = 2, top_k: int = 4, random_picks: int = 2, migrate_every: int = 3,
                 elites: int = 0, behaviour=None):
        self.islands = max(1, islands)
        self.elites = elites if behaviour is not None else 0
        self.behaviour = behaviour        # genome -> cell name (Task.behaviour)
        self._cells: dict[int, str | None] = {}   # candidate id -> its cell, computed once
        self.top_k = top_k
        self.random_picks = random_picks
        self.migrate_every = migrate_every

    def island_of(self, slot: int) -> int:
        return slot % self.islands

    def parents(self, store: Store, island: int, rnd: int, rng: random.Random) -> list[Parent]:
        scored = store.scored(before_round=rnd)
        # Seeds (island -1) belong to every island.
        own = _distinct([r for r in scored if r["island"] in (island, -1)])
        pool = own[: self.top_k]
        rest = own[self.top_k:]
        pool += rng.sample(rest, min(self.random_picks, len(rest)))
        if self.islands > 1 and rnd % self.migrate_every == 0:
            neighbour = (island - 1) % self.islands
            migrants = [r for r in scored if r["island"] == neighbour][:1]
            pool += [m for m in migrants if m["id"] not in {p["id"] for p in pool}]
        if self.elites:
            taken = {p["id"] for p in pool}
            archive = [r for r in self.archive(scored).values() if r["id"] not in taken]
            archive.sort(key=lambda r: r["id"])          # a stable order for the seeded draw
            pool += rng.sample(archive, min(self.elites, len(archive)))
        pool.sort(key=lambda r: (-r["score"], r["id"]))
        return [_parent(r) for r in pool]

    def cell(self, row) -> str | None:
        if row["id"] not in self._cells:
            genome = json.loads(row["genome"]) if row["genome"] else None
            try:
                self._cells[row["id"]] = self.behaviour(genome) if genome else None
            except ValueError:          # a genome that does not parse: no cell
                self._cells[row["id"]] = None
        return self._cells[row["id"]]

    def archive(self, scored: list) -> dict[str, object]:
        """cell -> the best candidate in it (`scored` is best first)."""
        out: dict[str, object] = {}
        for r in scored:
            c = self.cell(r)
            if c is not None and c not in out:
                out[c] = r
        return out
