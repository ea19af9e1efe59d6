"""Prompt builder: what a chat model sees, and how its answer becomes source.

A new-candidate prompt holds the problem (Task.describe), the functions to write with
their signatures and feature vocabulary, and the top-k earlier candidates with scores.
A repair prompt adds the failed source and the checker's exact output.
"""
from __future__ import annotations

import re

from ..task import Task
from .types import Parent, Repair


def _holes_text(task: Task) -> str:
    parts = []
    for h in task.holes():
        feats = "\n".join(f"    {name:<18} = {expr}" for name, expr in h.variables.items())
        kind = "integer-only arithmetic (no floating point)" if h.integer else "double arithmetic"
        parts.append(f"- `{h.signature}` ({kind})\n  {h.doc}\n  Useful expressions:\n{feats}")
    return "\n".join(parts)


def system_message(task: Task) -> str:
    """The problem (Task.describe) and the rules, rendered from the grammar the checker
    enforces when the task has one (every real task does): fields with their meaning and units,
    the allowed calls and statements, when each function runs and what the template does with
    its result. Said once."""
    names = ", ".join(h.name for h in task.holes())
    if task.grammar is not None:
        from ..checking import rules_text
        rules = rules_text(task.grammar)
    else:
        rules = f"Functions to define:\n{_holes_text(task)}"
    return (
        f"You design {task.title}. You write the policy function(s) that a fixed native template "
        f"calls; nothing outside them.\n\n{task.describe().strip()}\n\n{rules}\n\n"
        f"Answer with exactly one ```{task.language} code block that defines {names} and nothing "
        "else; a repair answers with the whole corrected block. The score is higher-is-better.")


def new_candidate_messages(task: Task, parents: list[Parent]) -> list[dict]:
    lines = ["Earlier candidates, best first:"] if parents else ["No candidates were scored yet."]
    for p in parents:
        score = "failed" if p.score is None else f"{p.score:.6f}"
        lines.append(f"\n### candidate {p.id}: score {score}\n```{task.language}\n{p.source.strip()}\n```")
    lines.append("\nWrite a new policy that scores higher than all of them. Think about which features "
                 "the best ones use and why; then try a genuinely different idea or a refinement.")
    return [{"role": "system", "content": system_message(task)},
            {"role": "user", "content": "\n".join(lines)}]


def repair_messages(task: Task, parents: list[Parent], repair: Repair) -> list[dict]:
    msgs = new_candidate_messages(task, parents)
    msgs.append({"role": "assistant", "content": f"```{task.language}\n{repair.source.strip()}\n```"})
    history = ""
    if repair.earlier:
        rows = [f"- attempt {i + 1} failed the {stage} check: {_short(feedback)}"
                for i, (stage, feedback) in enumerate(repair.earlier)]
        history = ("Earlier attempts at this candidate failed too; do not bring those problems back:\n"
                   + "\n".join(rows) + "\n")
    msgs.append({"role": "user", "content":
                 f"That candidate failed the {repair.stage} check. The checker printed:\n"
                 f"```\n{repair.feedback.strip()}\n```\n{history}"
                 "Fix the problem and answer with the whole corrected code block."})
    return msgs


def _short(feedback: str, lines: int = 2, width: int = 200) -> str:
    """The first lines of a checker's output, for the history of a repair."""
    kept = [ln.strip()[:width] for ln in feedback.splitlines() if ln.strip()][:lines]
    return " / ".join(kept) or "(no output)"


def render_messages(msgs: list[dict]) -> str:
    """Plain-text form stored with the candidate."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in msgs)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[ \t]*\n(.*?)```", re.S)


def extract_code(response: str) -> str:
    """The first fenced code block of a chat answer (or the whole answer when it has none)."""
    m = _FENCE.search(response)
    return (m.group(2) if m else response).strip() + "\n"


def normalize(source: str, language: str = "c") -> str:
    """Source without comments and whitespace runs (in the task's language): identical
    policies hash the same."""
    if language == "python":
        s = re.sub(r"#[^\n]*", " ", source)
    else:
        s = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
        s = re.sub(r"//[^\n]*", " ", s)
    return " ".join(s.split())
