"""Generators propose candidate source: offline program search, an OpenAI-compatible chat
ensemble, or recorded responses replayed in order."""
from __future__ import annotations

from ..types import Proposal
from .base import Generator, GeneratorError, GeneratorStop


def make(kind: str, **kw) -> Generator:
    if kind == "offline":
        from .offline import OfflineGenerator
        return OfflineGenerator(refine=kw.get("refine", 0.0))
    if kind == "openai":
        from .openai_chat import OpenAIGenerator
        return OpenAIGenerator(models=kw.get("models") or [], budget_usd=kw.get("budget_usd"),
                               prices=kw.get("prices") or {}, temperature=kw.get("temperature", 0.8))
    if kind == "replay":
        from .replay import ReplayGenerator
        if not kw.get("replay_file"):
            raise GeneratorError("--generator replay needs --replay FILE (a JSONL of recorded responses)")
        return ReplayGenerator(kw["replay_file"])
    raise GeneratorError(f"unknown generator '{kind}'; choose offline, openai or replay")


__all__ = ["Generator", "GeneratorError", "GeneratorStop", "Proposal", "make"]
