"""The generator interface."""
from __future__ import annotations

import random
from abc import ABC, abstractmethod

from ...task import Task
from ..types import Parent, Proposal, Repair


class GeneratorError(Exception):
    """The generator failed (endpoint unreachable, refusing, answering garbage): the run stops
    and exits non-zero, naming the endpoint and the last error."""


class GeneratorStop(GeneratorError):
    """The generator has nothing more to give by design (budget spent, replay file at its
    end): the run stops early and that is a normal end."""


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

    def restore(self, calls: int, spent_usd: float) -> None:
        """Continue a resumed run where it stopped: `calls` answers were consumed so far
        (proposals and repairs), `spent_usd` was spent. Generators without such state ignore it."""

    @abstractmethod
    def repair(self, task: Task, parents: list[Parent], failed: Repair, rng: random.Random,
               model: str | None = None) -> Proposal:
        """A corrected version of ``failed.source`` given the checker's feedback."""
