"""The spot-scheduling world, in plain Python with no dependencies (the sandboxed runner
imports it too).

A job needs `work` ticks of compute before `deadline`. Each tick the policy chooses:
0 stay idle, 1 run on a spot instance (cheap, only while spot capacity is available, and taken
away when it goes), 2 run on an on-demand instance (expensive, always there). Starting an
instance (from idle, or switching kind) spends `overhead` ticks of that tick on setup; a
tick on a running instance makes 1 tick of progress. A job that misses its deadline scores 0
on that trace; one that finishes scores (the cost of running on demand from the start) /
(its cost): 1 for the on-demand policy, higher the more it uses spot safely.

Availability traces are two-state Markov chains (spot up or down) drawn per seed, with
regimes from long calm stretches to frequent short outages.
"""
from __future__ import annotations

import random

SPOT_PRICE, OD_PRICE = 0.3, 1.0
IDLE, SPOT, ON_DEMAND = 0, 1, 2


def trace(seed: int, length: int) -> list[int]:
    """Spot availability per tick (1 up, 0 down) for one seed."""
    rng = random.Random(seed)
    p_fail = rng.choice((0.02, 0.05, 0.1, 0.2))        # per tick, while up
    p_back = rng.choice((0.05, 0.1, 0.3, 0.5))         # per tick, while down
    up, out = rng.random() < 0.8, []
    for _ in range(length):
        out.append(1 if up else 0)
        up = (rng.random() >= p_fail) if up else (rng.random() < p_back)
    return out


def state(t: int, deadline: int, work_left: float, avail: int, current: int, overhead: float,
          seen_up: int) -> dict:
    """What a policy sees at tick t: the arguments of decide()."""
    return {"time_left": deadline - t, "work_left": work_left, "spot": avail, "on_spot": int(current == SPOT),
            "on_demand": int(current == ON_DEMAND), "overhead": overhead,
            "spot_rate": seen_up / t if t else 1.0}


def choice(x) -> int:
    """A policy's return value as a choice: rounded, clamped to 0..2 (non-numbers mean idle)."""
    try:
        c = int(round(float(x)))
    except (TypeError, ValueError, OverflowError):
        return IDLE
    return min(max(c, IDLE), ON_DEMAND)


def run(decide, avail: list[int], work: float, deadline: int, overhead: float) -> list[int]:
    """The decisions of `decide` over one trace (the runner calls this on the candidate)."""
    decisions, left, current, seen = [], work, IDLE, 0
    for t in range(deadline):
        if left <= 1e-9:
            break
        c = choice(decide(**state(t, deadline, left, avail[t], current, overhead, seen)))
        decisions.append(c)
        left, current = _step(c, avail[t], left, current, overhead)[:2]
        seen += avail[t]
    return decisions


def _step(c: int, up: int, left: float, current: int, overhead: float) -> tuple[float, int, float]:
    """One tick: (work left, instance now running, cost of the tick)."""
    if c == SPOT and not up:
        c = IDLE                                   # no spot capacity: nothing runs
    if c == IDLE:
        return left, IDLE, 0.0
    progress = 1.0 - (overhead if c != current else 0.0)
    price = SPOT_PRICE if c == SPOT else OD_PRICE
    return max(0.0, left - max(0.0, progress)), c, price


def replay(decisions: list[int], avail: list[int], work: float, deadline: int, overhead: float) -> dict:
    """What `decisions` achieve on a trace, computed here (trusted): cost, finished, score."""
    if len(decisions) > deadline or any(d not in (IDLE, SPOT, ON_DEMAND) for d in decisions):
        raise ValueError("decisions out of range")
    left, current, cost = work, IDLE, 0.0
    for t, c in enumerate(decisions):
        if left <= 1e-9:
            break
        left, current, price = _step(c, avail[t], left, current, overhead)
        cost += price
    finished = left <= 1e-9
    reference = (work + overhead) * OD_PRICE
    return {"cost": cost, "finished": finished, "score": reference / cost if finished and cost > 0 else 0.0}


# --- baselines, as decide() functions -------------------------------------------------------
def on_demand(**s) -> int:
    return ON_DEMAND


def greedy(**s) -> int:
    """Spot whenever it is there; idle while the slack allows; on demand once it does not
    (and stay there: switching back costs setup)."""
    if s["on_demand"]:
        return ON_DEMAND
    if s["spot"]:
        return SPOT
    slack = s["time_left"] - s["work_left"] - 2 * s["overhead"]
    return ON_DEMAND if slack < 1 else IDLE


def uniform_progress(**s) -> int:
    """Keep at least the progress of a steady pace to the deadline: on demand when behind
    it, spot when available, idle otherwise (the baseline of the ADRS study)."""
    behind = s["work_left"] + s["overhead"] >= s["time_left"] - 1
    if behind:
        return ON_DEMAND
    return SPOT if s["spot"] else IDLE
