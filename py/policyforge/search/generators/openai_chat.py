"""OpenAI-compatible chat generator with a weighted model ensemble.

Works with any endpoint speaking the chat-completions protocol (OpenAI, vLLM, llama.cpp
server, Ollama): OPENAI_BASE_URL and OPENAI_API_KEY as the `openai` package reads them.
Each call picks a model by weight, retries transient failures with exponential backoff,
counts tokens and cost, and refuses to start a call once the budget is spent.
"""
from __future__ import annotations

import os
import random
import threading
import time

from ...task import Task
from ..prompt import Parent, Repair, extract_code, new_candidate_messages, render_messages, repair_messages
from ..types import Proposal
from .base import Generator, GeneratorError, GeneratorStop

# USD per million tokens (input, output); override with --price MODEL=IN/OUT.
DEFAULT_PRICES = {
    "gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6), "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6), "o3-mini": (1.1, 4.4), "o4-mini": (1.1, 4.4),
}


class OpenAIGenerator(Generator):
    name = "openai"
    concurrent = True

    def __init__(self, models: list[tuple[str, float]], budget_usd: float | None = None,
                 prices: dict[str, tuple[float, float]] | None = None, temperature: float = 0.8,
                 retries: int = 4, backoff_s: float = 1.0, timeout_s: float = 120.0):
        try:
            import openai
        except ImportError:
            raise GeneratorError("the openai package is not installed (make deps)") from None
        self.models = models or [(os.environ.get("POLICYFORGE_MODEL", "gpt-4o-mini"), 1.0)]
        self.budget_usd = budget_usd
        self.prices = {**DEFAULT_PRICES, **(prices or {})}
        self.temperature = temperature
        self.retries = retries
        # the first retry's wait; each next one doubles (POLICYFORGE_BACKOFF_S: a local server
        # that restarts fast, or tests)
        self.backoff_s = float(os.environ.get("POLICYFORGE_BACKOFF_S", backoff_s))
        self._spent = 0.0
        self._lock = threading.Lock()
        self._openai = openai
        # The client reads OPENAI_BASE_URL; the key is required even for a local server that
        # checks none (any value does), so a forgotten key is named instead of failing later.
        self.endpoint = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise GeneratorError(f"--generator openai needs OPENAI_API_KEY for {self.endpoint} "
                                 "(any value for a local server that checks none)")
        self.client = openai.OpenAI(api_key=key, base_url=self.endpoint, timeout=timeout_s, max_retries=0)

    @property
    def spent_usd(self) -> float:
        return self._spent

    def restore(self, calls: int, spent_usd: float) -> None:
        self._spent = spent_usd

    def _cost(self, model: str, tin: int, tout: int) -> float:
        pin, pout = self.prices.get(model, (0.0, 0.0))
        return (tin * pin + tout * pout) / 1e6

    def _chat(self, msgs: list[dict], rng: random.Random, op: str, model: str | None = None) -> Proposal:
        with self._lock:
            if self.budget_usd is not None and self._spent >= self.budget_usd:
                raise GeneratorStop(f"budget of ${self.budget_usd:.2f} spent (${self._spent:.4f})")
        names = [m for m, _ in self.models]
        pick = rng.choices(names, [w for _, w in self.models])[0]   # drawn always: the rng stays in step
        model = model or pick
        t0 = time.monotonic()
        transient = (self._openai.APIConnectionError, self._openai.APITimeoutError,
                     self._openai.RateLimitError, self._openai.InternalServerError)
        for attempt in range(self.retries + 1):
            try:
                resp = self.client.chat.completions.create(
                    model=model, messages=msgs, temperature=self.temperature)
                break
            except transient as e:
                if attempt == self.retries:
                    raise GeneratorError(f"{self.endpoint} failed after {attempt + 1} tries: "
                                         f"{_one_line(e)}") from None
                time.sleep(self.backoff_s * (2 ** attempt) * (0.5 + rng.random()))
            except self._openai.APIStatusError as e:  # 4xx: a request the endpoint will never take
                raise GeneratorError(f"{self.endpoint} refused the request (HTTP {e.status_code}): "
                                     f"{_one_line(e.message)}") from None
            except (self._openai.APIError, ValueError, TypeError) as e:   # a reply that is not JSON
                raise GeneratorError(f"{self.endpoint} answered with no chat completion "
                                     f"({type(e).__name__}: {_one_line(e, 120)})") from None
        try:
            content = resp.choices[0].message.content or ""
            usage = resp.usage
            tin = int(usage.prompt_tokens or 0) if usage else 0
            tout = int(usage.completion_tokens or 0) if usage else 0
        except (AttributeError, IndexError, TypeError, ValueError):
            raise GeneratorError(f"{self.endpoint} answered with no chat completion "
                                 f"(no choices[0].message in {_one_line(str(resp), 80)})") from None
        if not isinstance(content, str):
            raise GeneratorError(f"{self.endpoint} answered with a message that is not text")
        cost = self._cost(model, tin, tout)
        with self._lock:
            self._spent += cost
        return Proposal(source=extract_code(content), operation=op, model=model,
                        prompt=render_messages(msgs), response=content, tokens_in=tin,
                        tokens_out=tout, cost_usd=cost, seconds=time.monotonic() - t0)

    def propose(self, task: Task, parents: list[Parent], rng: random.Random,
                avoid: set[str] | None = None, model: str | None = None) -> Proposal:
        return self._chat(new_candidate_messages(task, parents), rng, "llm", model)

    def repair(self, task: Task, parents: list[Parent], failed: Repair, rng: random.Random,
               model: str | None = None) -> Proposal:
        return self._chat(repair_messages(task, parents, failed), rng, "llm-repair", model)


def _one_line(e: object, limit: int = 200) -> str:
    """An error as one short line (HTTP bodies can span many)."""
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
