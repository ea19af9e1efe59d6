"""The checking pipeline every template shares: parse, don't grep.

    candidate text --preprocess (sandbox)--> --parse (pycparser)--> --allowlist (rules.py)-->
    checked text --(the task splices it into its template and compiles it in the sandbox)-->
    object --audit (audit.py)--> probe (the task's)

A task declares a :class:`Grammar` for its holes; :func:`check_source` either returns the
checked text (what the compiler must get: the preprocessed candidate, not its original) with
what it reads, or raises :class:`CheckFailed` whose message is the feedback for repair.
"""
from __future__ import annotations

import dataclasses
import hashlib
import threading
from pathlib import Path

from .. import sandbox
from ..task import TaskError
from .audit import audit_object
from .grammar import Call, Function, Grammar, Param, HELPERS_DOUBLE, SCALAR_C, math_calls
from .parse import CheckFailed, Preprocessed, parse, preprocess, spliceable
from .rules import check

__all__ = ["Call", "CheckFailed", "Checked", "Function", "Grammar", "HELPERS_DOUBLE", "Param", "SCALAR_C",
           "audit_object", "check_source", "math_calls", "spliceable", "template_macros"]


@dataclasses.dataclass
class Checked:
    pre: Preprocessed                   # .text: the checked, preprocessed candidate
    reads: dict[str, set[str]]          # struct -> fields read
    calls: set[str]

    @property
    def text(self) -> str:
        return self.pre.text


def check_source(source: str, grammar: Grammar, workdir: Path,
                 macros: frozenset[str] = frozenset()) -> Checked:
    """Write the candidate to workdir/<grammar.file> (for the reader), preprocess, parse and
    check it."""
    (Path(workdir) / grammar.file).write_text(source)
    pre = preprocess(source, grammar)
    result = check(parse(pre, grammar), grammar, macros)
    if result.errors:
        raise CheckFailed("\n".join(result.errors))
    return Checked(pre, result.reads, result.calls)


_macro_cache: dict[str, frozenset[str]] = {}
_macro_lock = threading.Lock()


def template_macros(head: str, language: str, include_dirs: list[Path], workdir: Path,
                    defines: list[str] = ()) -> frozenset[str]:
    """The names that are macros where the template compiles the candidate (gcc -dM -E on the
    template's text above the hole, in the sandbox; once per distinct template)."""
    key = hashlib.sha256(f"{head}\0{language}\0{include_dirs}\0{defines}".encode()).hexdigest()
    with _macro_lock:
        if key in _macro_cache:
            return _macro_cache[key]
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / ("head.cpp" if language == "c++" else "head.c")
    src.write_text(head)
    compiler = "g++" if language == "c++" else "gcc"
    r = sandbox.run([compiler, "-dM", "-E", *defines, *(f"-I{d}" for d in include_dirs), src.name],
                    cwd=workdir, ro=[workdir, *include_dirs], timeout_s=60, mem_mb=1024, profile="build",
                    max_output=16 << 20)
    if not r.ok:
        raise TaskError(f"the template does not preprocess: {r.stderr.strip()[:300] or r.reason}")
    names = frozenset(ln.split()[1].split("(")[0] for ln in r.stdout.splitlines() if ln.startswith("#define "))
    with _macro_lock:
        _macro_cache[key] = names
    return names
