"""Which model to ask, learned from the run (--model-choice ucb): UCB1 over the models of the
ensemble, rewarding improvement per dollar (the idea of ShinkaEvolve's bandit over LLMs).

A model's reward for one candidate it wrote is the share of the candidates scored before it
that it beats (0 when it failed; 1 when it is a new best), plus how far it went above its best
parent, as a fraction of the spread of scores so far; divided by what the candidate cost
relative to the run's mean cost per candidate (a model half as expensive earns twice the reward
for the same result). The share rewards a model whose candidates land near the top even when
they do not set a new best, which is most of the time. UCB1 then picks
mean reward + c * sqrt(2 ln N / n); a model not tried yet goes first.

Everything is computed from the store as it stood when the round began, and a round's slots
are planned one after the other before any call is made, so a resumed run plans exactly what
an uninterrupted one would have.
"""
from __future__ import annotations

import json
import math

from .database import Store


def model_stats(store: Store, models: list[str], before_round: int) -> dict[str, tuple[int, float]]:
    """model -> (candidates it wrote, summed reward) over the rounds before `before_round`."""
    rows = store.candidates(before_round=before_round, generated=True)
    scored = store.scored(before_round=before_round)
    scores = [r["score"] for r in scored]
    spread = (max(scores) - min(scores)) if len(scores) > 1 else 0.0
    spread = spread or 1.0
    costs = [r["cost_usd"] for r in rows if r["model"] in models]
    mean_cost = sum(costs) / len(costs) if costs and sum(costs) > 0 else 0.0
    out = {m: (0, 0.0) for m in models}
    for r in rows:
        if r["model"] not in out:
            continue
        parents = [store.candidate(p) for p in json.loads(r["parents"] or "[]")]
        base = max((p["score"] for p in parents if p is not None and p["score"] is not None), default=None)
        gain = 0.0
        if r["status"] == "evaluated" and r["score"] is not None:
            earlier = [x["score"] for x in scored if x["id"] < r["id"]]
            gain = sum(x < r["score"] for x in earlier) / len(earlier) if earlier else 1.0
            gain += max(0.0, (r["score"] - base) / spread) if base is not None else 0.0
        rel_cost = (r["cost_usd"] / mean_cost) if mean_cost > 0 and r["cost_usd"] > 0 else 1.0
        n, total = out[r["model"]]
        out[r["model"]] = (n + 1, total + gain / rel_cost)
    return out


def plan(models: list[str], stats: dict[str, tuple[int, float]], slots: int, c: float = 0.5) -> list[str]:
    """The model for each slot of a round: UCB1, each choice counted (with the model's mean
    reward so far) before the next slot is planned, so a round spreads over the models the
    way exploration asks."""
    n = {m: stats.get(m, (0, 0.0))[0] for m in models}
    mean = {m: (stats[m][1] / stats[m][0]) if stats.get(m, (0, 0))[0] else 0.0 for m in models}
    out = []
    for _ in range(slots):
        untried = [m for m in models if n[m] == 0]
        if untried:
            pick = untried[0]
        else:
            total = sum(n.values())
            pick = max(models, key=lambda m: mean[m] + c * math.sqrt(2 * math.log(total) / n[m]))
        out.append(pick)
        n[pick] += 1
    return out
