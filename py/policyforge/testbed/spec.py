"""Experiments as data: a link and some flows, to and from JSON. The same description runs
on the host (linkem) and in the VM (Mininet + netem)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .traces import TraceError, trace_rate_mbps


class HarnessError(Exception):
    """A testbed problem the user can fix (missing tool, unknown scheme, bad trace or spec)."""


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
            try:
                return trace_rate_mbps(self.trace)
            except TraceError as e:
                raise HarnessError(str(e)) from None
        return float(self.rate_mbps or 0.0)     # 0: no bottleneck, only delay

    def validate(self) -> None:
        """Raise HarnessError with one line for a description linkem cannot run."""
        if self.rate_mbps is not None and self.rate_mbps <= 0:
            raise HarnessError(f"link rate must be > 0 Mbit/s (or None for no bottleneck), got {self.rate_mbps}")
        if self.delay_ms < 0:
            raise HarnessError(f"link delay must be >= 0 ms, got {self.delay_ms}")
        if not 0 <= self.loss < 1:
            raise HarnessError(f"link loss must be in [0, 1), got {self.loss}")
        for name in ("queue_pkts", "queue_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise HarnessError(f"link {name} must be >= 1, got {value}")
        if self.queue_pkts and self.queue_bytes:
            raise HarnessError("give the queue in packets or in bytes, not both")
        self.capacity_mbps()                # reads and checks the trace

    def bdp_pkts(self) -> int:
        if not self.capacity_mbps():
            return 0
        return max(4, int(self.capacity_mbps() * 1e6 / 8 * (2 * self.delay_ms / 1000) / 1500))


@dataclasses.dataclass
class FlowSpec:
    scheme: str                          # kernel congestion control name (cubic, bbr, pf_...)
    start_s: float = 0.0
    duration_s: float = 5.0

    def validate(self) -> None:
        if not self.scheme or not self.scheme.replace("_", "").isalnum():
            raise HarnessError(f"flow scheme must be a congestion-control name, got {self.scheme!r}")
        if self.start_s < 0 or self.duration_s < 1:
            raise HarnessError(f"flow {self.scheme}: start must be >= 0 s and duration >= 1 s (iperf3)")


@dataclasses.dataclass
class Experiment:
    link: LinkSpec
    flows: list[FlowSpec]
    name: str = "experiment"

    def validate(self) -> None:
        if not self.flows:
            raise HarnessError("an experiment needs at least one flow")
        self.link.validate()
        for flow in self.flows:
            flow.validate()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Experiment":
        try:
            d = json.loads(text)
            return cls(LinkSpec(**d["link"]), [FlowSpec(**f) for f in d["flows"]], d.get("name", "experiment"))
        except (ValueError, KeyError, TypeError) as e:
            raise HarnessError(f"not an experiment description: {e}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Experiment":
        return cls.from_json(Path(path).read_text())
