"""Scores of one experiment's metrics: one number, higher is better. The default is
PolicySmith's throughput / p95 per-packet delay; utilization and delay stay in the metrics."""
from __future__ import annotations

from .spec import HarnessError


def _throughput_over_p95_delay(m: dict) -> float:
    # Mbit/s per ms of p95 one-way delay through the link (propagation + queueing)
    return m["throughput_mbps"] / m["p95_delay_ms"] if m.get("p95_delay_ms") else 0.0


def _power(m: dict) -> float:
    # Kleinrock's power with the mean delay
    return m["throughput_mbps"] / m["mean_delay_ms"] if m.get("mean_delay_ms") else 0.0


def _utilization_minus_queueing(m: dict) -> float:
    # utilization, minus 1 per 100 ms of p95 queueing delay (Pantheon-like trade-off)
    return m["utilization"] - (m.get("p95_queueing_ms") or 0.0) / 100.0


SCORES = {
    "throughput_over_p95_delay": _throughput_over_p95_delay,
    "power": _power,
    "utilization": lambda m: m["utilization"],
    "utilization_minus_queueing": _utilization_minus_queueing,
    "neg_p95_delay": lambda m: -(m.get("p95_delay_ms") or 1e9),
}
# names the cc task used before the vocabulary was one (stored runs keep them)
ALIASES = {"tput_over_p95": "throughput_over_p95_delay", "neg_p95": "neg_p95_delay"}


def score(metrics: dict, name: str = "throughput_over_p95_delay") -> float:
    name = ALIASES.get(name, name)
    if name not in SCORES:
        raise HarnessError(f"unknown score '{name}' (choose from {', '.join(SCORES)})")
    return float(SCORES[name](metrics))
