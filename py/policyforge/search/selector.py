"""Parent selection: islands with ring migration, top-k plus a few random picks per island.

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
    def __init__(self, islands: int = 2, top_k: int = 4, random_picks: int = 2, migrate_every: int = 3):
        self.islands = max(1, islands)
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
        pool.sort(key=lambda r: (-r["score"], r["id"]))
        return [_parent(r) for r in pool]
