"""Writes the deterministic Mahimahi-format traces in this folder.

lte.trace: 30 s of a cellular-like link whose rate wanders between 4 and 40 Mbit/s
(a bounded random walk in 100 ms steps, seeded), as millisecond timestamps at which one
1500-byte packet may leave (Mahimahi's format; the file loops).
const24.trace: a constant 24 Mbit/s (2 opportunities per ms), for validating linkem.

    python py/policyforge/testbed/traces/make_traces.py
"""
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def rate_to_trace(rates_mbps, step_ms: int) -> list[int]:
    out, credit, t = [], 0.0, 0
    for r in rates_mbps:
        for _ in range(step_ms):
            t += 1
            credit += r * 1e6 / 8 / 1500 / 1000      # opportunities per ms
            while credit >= 1:
                out.append(t)
                credit -= 1
    return out


def main() -> None:
    rng = np.random.default_rng(2025)
    r, rates = 20.0, []
    for _ in range(300):
        r = float(np.clip(r * np.exp(rng.normal(0, 0.15)), 4, 40))
        rates.append(r)
    (HERE / "lte.trace").write_text("\n".join(map(str, rate_to_trace(rates, 100))) + "\n")
    (HERE / "const24.trace").write_text("\n".join(map(str, rate_to_trace([24.0] * 10, 100))) + "\n")


if __name__ == "__main__":
    main()
