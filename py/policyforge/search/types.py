"""The types the search's parts pass to each other: a parent shown to a generator, a failed
attempt to repair, a generator's proposal. In one module so that the selector, the prompt
builder and the generators import them from the same place."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Parent:
    id: int
    source: str
    score: float | None
    genome: dict | None = None
    metrics: dict | None = None


@dataclasses.dataclass
class Repair:
    source: str
    stage: str
    feedback: str
    earlier: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (stage, feedback), oldest first


@dataclasses.dataclass
class Proposal:
    source: str
    genome: dict | None = None
    operation: str = ""
    model: str = ""
    prompt: str = ""
    response: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
