"""Mahimahi link traces: one integer per line, the millisecond at which one 1500-byte packet
may leave; the file loops. Here: read and check them, their mean rate, and a constant-rate
generator. The committed variable-rate trace comes from traces/make_traces.py."""
from __future__ import annotations

import math
from pathlib import Path

PACKET_BITS = 1500 * 8
TRACE_DIR = Path(__file__).parent / "traces"


class TraceError(ValueError):
    """A trace file that is missing or not in Mahimahi format."""


def read_trace(path: str | Path) -> list[int]:
    """The delivery opportunities (ms) of a trace, checked: integers, ascending, last > 0."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"link trace {p} does not exist")
    opportunities = []
    for n, line in enumerate(p.read_text().split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        if not line.isdigit():
            raise TraceError(f"{p}:{n}: expected a millisecond timestamp, got {line[:30]!r}")
        ms = int(line)
        if opportunities and ms < opportunities[-1]:
            raise TraceError(f"{p}:{n}: timestamps must not decrease ({ms} after {opportunities[-1]})")
        opportunities.append(ms)
    if not opportunities or opportunities[-1] == 0:
        raise TraceError(f"{p}: a trace needs at least one opportunity after 0 ms")
    return opportunities


def trace_rate_mbps(path: str | Path) -> float:
    """Mean rate of a looping trace: its opportunities over its period (the last timestamp)."""
    opportunities = read_trace(path)
    return len(opportunities) * PACKET_BITS / (opportunities[-1] / 1000) / 1e6


def trace_capacity_mbps(path: str | Path, start_s: float, end_s: float) -> float:
    """The rate a looping trace offers between start_s and end_s of its time (what a run
    that used this window could have carried at most)."""
    opportunities = read_trace(path)
    period, count = opportunities[-1], 0
    start_ms, end_ms = start_s * 1000, end_s * 1000
    loop = int(start_ms // period) * period
    while loop < end_ms:
        count += sum(1 for ms in opportunities if start_ms <= loop + ms < end_ms)
        loop += period
    return count * PACKET_BITS / (end_s - start_s) / 1e6 if end_s > start_s else 0.0


def _write(path: Path, per_ms: list[int]) -> Path:
    lines = [str(ms + 1) for ms, count in enumerate(per_ms) for _ in range(count)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _spread(rates_mbps: list[float]) -> list[int]:
    """Packets per millisecond for a per-ms rate, carrying the fraction so the mean is exact."""
    per_ms, carry = [], 0.0
    for rate in rates_mbps:
        carry += rate * 1e6 / 1000 / PACKET_BITS
        whole = math.floor(carry)
        per_ms.append(whole)
        carry -= whole
    return per_ms


def constant_rate_trace(path: str | Path, rate_mbps: float, seconds: float = 1.0) -> Path:
    """A trace that loops a constant rate (what Mahimahi's generated traces are)."""
    if rate_mbps <= 0:
        raise TraceError("a trace rate must be > 0")
    per_ms = _spread([rate_mbps] * int(seconds * 1000))
    if sum(per_ms) == 0:
        raise TraceError(f"{rate_mbps} Mbit/s gives no packet in {seconds} s")
    # the period must end on an opportunity: move the last packet to the last millisecond
    while per_ms[-1] == 0:
        last = max(i for i, c in enumerate(per_ms) if c)
        per_ms[last] -= 1
        per_ms[-1] += 1
    return _write(Path(path), per_ms)


def window_trace(path: str | Path, offset_s: float, out: str | Path) -> Path:
    """The same looping trace started `offset_s` into it (modulo its period): linkem plays
    every trace from its time 0, so an evaluation on several windows of one trace runs each
    window's rotated copy. The copy's period is the original's, up to the gap that the cut
    falls into."""
    opportunities = read_trace(path)
    period = opportunities[-1]
    off = int(round(offset_s * 1000)) % period
    rotated = [ms - off for ms in opportunities if ms > off] + [ms + period - off for ms in opportunities if ms <= off]
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(map(str, rotated)) + "\n")
    return p


def cellular_trace(path: str | Path, seconds: float = 60.0, seed: int = 1, mean_mbps: float = 6.0,
                   low_mbps: float = 0.5, high_mbps: float = 20.0, outage_per_min: float = 3.0) -> Path:
    """A synthetic cellular link with the statistics real ones show (Winstein et al.'s
    Sprout traces): the rate is a random walk in log space in 50 ms steps with heavy-tailed
    jumps (10x within a few seconds is common), kept within [low, high] Mbit/s and pulled
    toward `mean_mbps`; outages of 0.2-1 s with no delivery at all arrive `outage_per_min`
    times a minute. Deterministic from `seed`."""
    import numpy as np
    if not 0 < low_mbps <= mean_mbps <= high_mbps:
        raise TraceError(f"cellular trace: need 0 < low <= mean <= high, got {low_mbps}, {mean_mbps}, {high_mbps}")
    if seconds < 1:
        raise TraceError("cellular trace: at least 1 s")
    rng = np.random.default_rng(seed)
    steps = int(seconds * 20)
    log_r, log_mean, rates = math.log(mean_mbps), math.log(mean_mbps), []
    outage = 0
    for _ in range(steps):
        jump = rng.standard_t(3) * 0.25                       # heavy tails: now and then a big swing
        log_r = log_r + jump + 0.05 * (log_mean - log_r)      # mean-reverting
        log_r = min(max(log_r, math.log(low_mbps)), math.log(high_mbps))
        if outage == 0 and rng.random() < outage_per_min / (60 * 20):
            outage = int(rng.integers(4, 21))                 # 0.2 to 1 s
        rates.extend([0.0 if outage else math.exp(log_r)] * 50)
        outage = max(0, outage - 1)
    per_ms = _spread(rates)
    if sum(per_ms) == 0:
        raise TraceError("cellular trace: no packet at all")
    while per_ms[-1] == 0:                                     # the period ends on an opportunity
        last = max(i for i, c in enumerate(per_ms) if c)
        per_ms[last] -= 1
        per_ms[-1] += 1
    return _write(Path(path), per_ms)
