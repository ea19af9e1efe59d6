"""Replay generator: recorded chat responses, read in order from a JSONL file.

Each line is either an OpenAI chat-completion object ({"choices": [{"message": {...}}],
"usage": {...}}) or {"content": "...", "model": "..."}. Every generator call (new
candidate or repair) consumes the next line. Reproduces a run without the endpoint.
"""
from __future__ import annotations

import json
import random
import threading
from pathlib import Path

from ...task import Task
from ..prompt import Parent, Repair, extract_code, new_candidate_messages, render_messages, repair_messages
from ..types import Proposal
from .base import Generator, GeneratorError, GeneratorStop


class ReplayGenerator(Generator):
    name = "replay"

    def __init__(self, path: str | Path):
        path = Path(path)
        try:
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        except OSError as e:
            raise GeneratorError(f"cannot read replay file {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise GeneratorError(f"replay file {path} is not text (JSONL of recorded responses)") from None
        self.responses = []
        for i, ln in enumerate(lines, 1):
            try:
                obj = json.loads(ln)
                if "choices" in obj:
                    content = obj["choices"][0]["message"]["content"]
                    usage = obj.get("usage") or {}
                    self.responses.append((content, obj.get("model", "replay"),
                                           usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)))
                else:
                    self.responses.append((obj["content"], obj.get("model", "replay"), 0, 0))
                if not isinstance(self.responses[-1][0], str):
                    raise TypeError("content is not text")
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise GeneratorError(f"{path}:{i}: not a chat completion or {{\"content\": ...}} object") from None
        if not self.responses:
            raise GeneratorError(f"replay file {path} holds no response")
        self.position = 0
        self._lock = threading.Lock()

    def restore(self, calls: int, spent_usd: float) -> None:
        self.position = calls

    def _next(self, msgs: list[dict], op: str) -> Proposal:
        with self._lock:
            if self.position >= len(self.responses):
                raise GeneratorStop(f"replay file exhausted after {len(self.responses)} responses")
            content, model, tin, tout = self.responses[self.position]
            self.position += 1
        return Proposal(source=extract_code(content), operation=op, model=model,
                        prompt=render_messages(msgs), response=content, tokens_in=tin, tokens_out=tout)

    def propose(self, task: Task, parents: list[Parent], rng: random.Random,
                avoid: set[str] | None = None, model: str | None = None) -> Proposal:
        return self._next(new_candidate_messages(task, parents), "llm")

    def repair(self, task: Task, parents: list[Parent], failed: Repair, rng: random.Random,
               model: str | None = None) -> Proposal:
        return self._next(repair_messages(task, parents, failed), "llm-repair")
