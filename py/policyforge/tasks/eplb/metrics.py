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
