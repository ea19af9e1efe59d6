"""Expert-load histories: [steps, layers, experts] token counts.

Synthetic ones are deterministic (seeded): per-layer skew (Zipf or lognormal popularity),
drift (popularity moves between experts over time), and bursts (an expert spikes for a
few dozen steps). `load_vllm_json` reads logs a user supplies.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...task import TaskError


def synthetic(kind: str = "drifting", steps: int = 1000, layers: int = 58, experts: int = 256,
              tokens_per_step: int = 8192, seed: int = 0) -> np.ndarray:
    """kind: 'static' (skew only), 'drifting' (skew + drift + bursts), 'bursty' (skew + bursts)."""
    if kind not in ("static", "drifting", "bursty"):
        raise TaskError(f"unknown workload kind '{kind}' (static, drifting, bursty)")
    rng = np.random.default_rng(seed)
    # per-layer popularity: half the layers Zipf-like, half lognormal; skew of the order seen
    # in production MoE layers trained with load balancing (top expert a few % of tokens)
    base = np.empty((layers, experts))
    for l in range(layers):
        if l % 2 == 0:
            alpha = rng.uniform(0.2, 0.6)
            base[l] = rng.permutation(np.arange(1, experts + 1) ** -alpha)
        else:
            base[l] = rng.lognormal(0.0, rng.uniform(0.3, 0.7), experts)
    logits = np.log(base)
    out = np.empty((steps, layers, experts), dtype=np.float64)
    drift_dir = rng.normal(0, 1, (layers, experts))
    burst_until = np.zeros((layers, experts), dtype=np.int64)
    burst_gain = np.ones((layers, experts))
    for t in range(steps):
        if kind == "drifting":
            # popularity wanders: a slow random walk plus a persistent direction
            logits += 0.0008 * drift_dir + rng.normal(0, 0.006, logits.shape)
        if kind in ("drifting", "bursty") and t % 10 == 0:
            start = rng.random((layers, experts)) < 0.0004
            burst_until[start] = t + rng.integers(20, 150, start.sum())
            burst_gain[start] = rng.uniform(2, 5, start.sum())
        gain = np.where(burst_until > t, burst_gain, 1.0)
        p = np.exp(logits - logits.max(1, keepdims=True)) * gain
        p /= p.sum(1, keepdims=True)
        out[t] = rng.poisson(p * tokens_per_step)
    return out


def load_vllm_json(path: Path) -> np.ndarray:
    """A user's expert-load log (see load_expert_log), as [steps][layers][experts]."""
    return load_expert_log(path)[0]


def _complete_records(records: list) -> tuple[list, int]:
    """vLLM's load_history as it is: records whose layer count is not the log's usual one (a
    log cut off mid-step) are left out and counted."""
    shapes = [np.shape(r) for r in records]
    if not shapes:
        return [], 0
    usual = max(set(shapes), key=shapes.count)
    keep = [r for r, s in zip(records, shapes) if s == usual]
    return keep, len(records) - len(keep)


def load_expert_log(path: Path) -> tuple[np.ndarray, int]:
    """A user's expert-load log and how many incomplete records it skipped. Accepted:
    {"expert_load": [[[...E] x L] x steps]}; a list of {"step": s, "expert_load": [[...E] x L]}
    records; or vLLM's EPLB log as in the public data set, {"load_history":
    [{"logical_expert_load": [[...E] x L]}, ...]}, whose records with missing layers (the end of
    a real log) are skipped."""
    try:
        obj = json.loads(Path(path).read_text())
    except OSError as e:
        raise TaskError(f"cannot read expert-load log {path}: {e.strerror}") from None
    except ValueError as e:
        raise TaskError(f"{path} is not JSON: {e}") from None
    skipped = 0
    try:
        if isinstance(obj, dict) and "load_history" in obj:
            records = [r["logical_expert_load"] for r in obj["load_history"]]
            records, skipped = _complete_records(records)
            arr = np.asarray(records, dtype=np.float64)
        elif isinstance(obj, dict):
            arr = np.asarray(obj["expert_load"], dtype=np.float64)
        else:
            arr = np.asarray([r["expert_load"] for r in sorted(obj, key=lambda r: r.get("step", 0))],
                             dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise TaskError(f"{path}: expected {{\"expert_load\": [steps][layers][experts]}}, a list of "
                        "{\"step\", \"expert_load\": [layers][experts]} records, or vLLM's "
                        "{\"load_history\": [{\"logical_expert_load\": [layers][experts]}]}") from None
    if arr.ndim != 3 or min(arr.shape) == 0:
        raise TaskError(f"{path}: expert_load must be [steps][layers][experts], got shape {arr.shape}")
    if (arr < 0).any() or not np.isfinite(arr).all():
        raise TaskError(f"{path}: expert loads must be finite and non-negative")
    return arr, skipped


def windows(history: np.ndarray, window: int) -> np.ndarray:
    """[n_windows, layers, experts]: token counts summed over each window of `window` steps."""
    n = history.shape[0] // window
    if n < 2:
        raise TaskError(f"the workload has {history.shape[0]} steps: need at least two windows of {window}")
    return history[: n * window].reshape(n, window, *history.shape[1:]).sum(1)
