"""Experiments as data: a link and some flows, to and from JSON. The same description runs
on the host (linkem) and in the VM (Mininet + netem)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path


@dataclasses.dataclass
class LinkSpec:
    rate_mbps: float | None = 24.0      # fixed bottleneck rate, or
    trace: str | None = None            # a Mahimahi trace (ms timestamps of 1500-byte opportunities)
    delay_ms: float = 10.0              # one-way delay (RTT = 2 x delay)
    queue_pkts: int | None = None       # droptail limit; default: 1 BDP
    queue_bytes: int | None = None
    loss: float = 0.0                   # random loss on the data direction

    def capacity_mbps(self) -> float:
        if self.trace:
            ts = [int(x) for x in Path(self.trace).read_text().split()]
            return len(ts) * 1500 * 8 / (ts[-1] / 1000) / 1e6
        return float(self.rate_mbps)

    def bdp_pkts(self) -> int:
        return max(4, int(self.capacity_mbps() * 1e6 / 8 * (2 * self.delay_ms / 1000) / 1500))


@dataclasses.dataclass
class FlowSpec:
    scheme: str                          # kernel congestion control name (cubic, bbr, pf_...)
    start_s: float = 0.0
    duration_s: float = 5.0


@dataclasses.dataclass
class Experiment:
    link: LinkSpec
    flows: list[FlowSpec]
    name: str = "experiment"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Experiment":
        d = json.loads(text)
        return cls(LinkSpec(**d["link"]), [FlowSpec(**f) for f in d["flows"]], d.get("name", "experiment"))
