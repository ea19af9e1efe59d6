"""Validation (the reward-hack guard) and balancedness of an expert placement."""
from __future__ import annotations

import numpy as np


def validate(phy2log, log2phy, logcnt, weight, R: int, M: int) -> str:
    """Empty string when valid, else what is wrong."""
    L, E = weight.shape
    phy2log, log2phy, logcnt = map(np.asarray, (phy2log, log2phy, logcnt))
    if phy2log.shape != (L, R):
        return f"phy2log has shape {phy2log.shape}, expected {(L, R)}"
    if logcnt.shape != (L, E):
        return f"logcnt has shape {logcnt.shape}, expected {(L, E)}"
    if log2phy.ndim != 3 or log2phy.shape[:2] != (L, E):
        return f"log2phy has shape {log2phy.shape}, expected {(L, E)} + (maxcnt,)"
    if (logcnt < 0).any():
        return "negative replica counts"
    if (logcnt.sum(1) != R).any():
        return "replica counts do not sum to num_replicas in every layer"
    if ((phy2log < 0) | (phy2log >= E)).any():
        return "phy2log names experts that do not exist"
    cold = (weight > 0) & (logcnt == 0)
    if cold.any():
        l, e = np.argwhere(cold)[0]
        return f"expert {e} of layer {l} has load but no replica"
    for l in range(L):
        if (np.bincount(phy2log[l], minlength=E) != logcnt[l]).any():
            return f"phy2log and logcnt disagree in layer {l}"
        for e in range(E):
            slots = log2phy[l, e]
            real = slots[slots >= 0]
            if real.size != logcnt[l, e] or (slots[real.size:] != -1).any() or (phy2log[l, real] != e).any():
                return f"log2phy is inconsistent with phy2log for expert {e} of layer {l}"
    # R/M slots per GPU holds by construction of phy2log's [L, R] shape with R % M == 0
    return ""


def gpu_loads(phy2log, logcnt, load, M: int) -> np.ndarray:
    """[L, M]: each replica carries load[e] / logcnt[e]."""
    L, R = phy2log.shape
    per_replica = np.take_along_axis(load, phy2log, 1) / np.take_along_axis(logcnt, phy2log, 1)
    return per_replica.reshape(L, M, R // M).sum(2)


def balancedness(phy2log, logcnt, load, M: int) -> float:
    """sum over layers of mean GPU load / sum over layers of max GPU load (1 = perfect)."""
    g = gpu_loads(np.asarray(phy2log), np.asarray(logcnt), np.asarray(load, dtype=np.float64), M)
    mx = g.max(1).sum()
    return float(g.mean(1).sum() / mx) if mx > 0 else 1.0


def logcnt_of(phy2log: np.ndarray, E: int) -> np.ndarray:
    """[L, E]: how many physical slots each logical expert has in phy2log [L, R]."""
    L = phy2log.shape[0]
    flat = (phy2log + E * np.arange(L)[:, None]).ravel()
    return np.bincount(flat, minlength=L * E).reshape(L, E)


def plan_problem(phy2log: np.ndarray, weight: np.ndarray, R: int) -> str:
    """Why a phy2log [L, R] is not a valid plan for loads `weight` [L, E] ('' when it is).
    Counts and slot lists are derived from phy2log itself, so they agree with it by
    construction; what can be wrong is the shape, an expert that does not exist, or an expert
    with load and no replica (the reward hack of cold experts)."""
    L, E = weight.shape
    if phy2log.shape != (L, R):
        return f"phy2log has shape {phy2log.shape}, expected {(L, R)}"
    if ((phy2log < 0) | (phy2log >= E)).any():
        return "phy2log names experts that do not exist"
    cold = (weight > 0) & (logcnt_of(phy2log, E) == 0)
    if cold.any():
        l, e = np.argwhere(cold)[0]
        return f"expert {e} of layer {l} has load but no replica"
    return ""


def score_plans(windows: np.ndarray, plans: list[np.ndarray], R: int, M: int) -> dict:
    """Plan i (made from window i) scored on window i + 1: balancedness = sum over windows and
    layers of mean GPU load / the same of max GPU load. Every plan is validated first."""
    E = windows.shape[2]
    means = maxes = 0.0
    per_window = []
    for i, phy2log in enumerate(plans):
        problem = plan_problem(phy2log, windows[i] + windows[i + 1], R)
        if problem:
            return {"valid": False, "reason": f"window {i}: {problem}"}
        g = gpu_loads(phy2log, logcnt_of(phy2log, E), windows[i + 1], M)
        means += g.mean(1).sum()
        maxes += g.max(1).sum()
        per_window.append(float(g.mean(1).sum() / g.max(1).sum()) if g.max(1).sum() > 0 else 1.0)
    return {"valid": True, "balancedness": float(means / maxes) if maxes > 0 else 1.0, "per_window": per_window,
            "runtime_ms": 0.0}
