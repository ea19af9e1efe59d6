"""The generator interface."""
from __future__ import annotations

import dataclasses
import random
from abc import ABC, abstractmethod

from ...task import Task
from ..prompt import Parent, Repair


class GeneratorError(Exception):
    """The generator failed (endpoint unreachable, refusing, answering garbage): the run stops
    and exits non-zero, naming the endpoint and the last error."""


class GeneratorStop(GeneratorError):
    """The generator has nothing more to give by design (budget spent, replay file at its
    end): the run stops early and that is a normal end."""


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


class Generator(ABC):
    name = ""
    #: proposals of one round may be requested concurrently (network-bound generators)
    concurrent = False

    @abstractmethod
    def propose(self, task: Task, parents: list[Parent], rng: random.Random,
                avoid: set[str] | None = None, model: str | None = None) -> Proposal:
        """A new candidate inspired by ``parents`` (best first). ``avoid``: normalized
        sources already in the store, which a generator should not propose again. ``model``:
        the model to ask, when the controller chose it (--model-choice ucb); else the
        generator's own choice."""

    @abstractmethod
    def repair(self, task: Task, parents: list[Parent], failed: Repair, rng: random.Random,
               model: str | None = None) -> Proposal:
        """A corrected version of ``failed.source`` given the checker's feedback."""
