"""Scores of one experiment's metrics: one number, higher is better. PolicySmith's is
throughput / p95 per-packet delay; `power_floor` (the cc task's default) is the same with a
throughput floor relative to a reference scheme on the same link; utilization and delay stay
in the metrics."""
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


# power_floor: the share of the reference's throughput below which the score collapses, and how fast;
# the exponent of the delivered share (1 - loss)
FLOOR, FLOOR_EXPONENT, LOSS_EXPONENT = 0.8, 4, 4


def _power_floor(m: dict) -> float:
    """throughput / p95 delay, times (throughput / (0.8 x the reference's))^4 below that floor,
    times (1 - loss)^4.
    The reference is another scheme's throughput on the same link and interval
    (`reference_throughput_mbps`, the cc task measures cubic); without one, the plain ratio.
    Throughput / delay alone rewards starving a bloated link: on a cellular link, a window of
    two packets (1 Mbit/s at 25 ms) outscores filling it (5 Mbit/s at 150 ms) 6 to 1; the floor
    makes giving up throughput for delay pay only above 80 % of what the standard scheme
    carries, and a policy at half of that loses 94 % of its score. The loss factor stops the
    opposite way of gaming it: a window far above the BDP keeps a droptail queue full, so the
    link delivers at its rate with a bounded delay while most packets are dropped (a search
    found such a policy: 77 % loss at the bottleneck); (1 - loss)^4 keeps 92 % of the score at
    2 % loss and a third at 25 %."""
    base = _throughput_over_p95_delay(m) * (1.0 - min(1.0, m.get("loss") or 0.0)) ** LOSS_EXPONENT
    ref = m.get("reference_throughput_mbps")
    if not ref:
        return base
    return base * min(1.0, m["throughput_mbps"] / (FLOOR * ref)) ** FLOOR_EXPONENT


SCORES = {
    "power_floor": _power_floor,
    "throughput_over_p95_delay": _throughput_over_p95_delay,
    "power": _power,
    "utilization": lambda m: m["utilization"],
    "utilization_minus_queueing": _utilization_minus_queueing,
    "neg_p95_delay": lambda m: -(m.get("p95_delay_ms") or 1e9),
}
# names the cc task used before the vocabulary was one (stored runs keep them)
ALIASES = {"tput_over_p95": "throughput_over_p95_delay", "neg_p95": "neg_p95_delay"}


NEEDS_REFERENCE = {"power_floor"}


def score(metrics: dict, name: str = "throughput_over_p95_delay") -> float:
    name = ALIASES.get(name, name)
    if name not in SCORES:
        raise HarnessError(f"unknown score '{name}' (choose from {', '.join(SCORES)})")
    return float(SCORES[name](metrics))
