"""The checking pipeline every template shares: parse, don't grep.

    one sandbox job (build()):  candidate --preprocess alone--> policy.i
                                units that #include policy.i --compile-->  objects
    then, here:                 policy.i --parse (pycparser)--> --allowlist (rules.py)-->
                                the candidate's object --audit (audit.py)--> probe (the task's)

The compiler gets exactly the preprocessed text the checker reads (the units include
policy.i), so what was checked is what runs; compiling before checking runs no candidate code
(the compiler only reads it, in the sandbox), and one job instead of two is half the sandbox's
cost. A task declares a :class:`Grammar` for its holes; :func:`check_preprocessed` returns the
checked text with what it reads, or raises :class:`CheckFailed` whose message is the feedback
for repair; :func:`pipeline` runs the whole sequence for a task.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shlex
import threading
import uuid
from pathlib import Path

from .. import sandbox
from ..task import TaskError
from .audit import audit_object
from .grammar import Call, Function, Grammar, Param, HELPERS_DOUBLE, SCALAR_C, math_calls, rules_text
from .parse import CheckFailed, Preprocessed, parse, preprocess_command, preprocess_failed, read_preprocessed
from .rules import check

__all__ = ["Call", "CheckFailed", "Checked", "Function", "Grammar", "HELPERS_DOUBLE", "Param", "SCALAR_C",
           "StageFailed", "audit_object", "build", "check_preprocessed", "math_calls", "pipeline", "rules_text",
           "preprocess_command", "template_macros", "PREPROCESSED"]

PREPROCESSED = "policy.i"   # the preprocessed candidate, in the work directory


@dataclasses.dataclass
class Checked:
    pre: Preprocessed                   # .text: the checked, preprocessed candidate
    reads: dict[str, set[str]]          # struct -> fields read
    calls: set[str]
    defined: set[str] = dataclasses.field(default_factory=set)   # the holes it defines

    @property
    def text(self) -> str:
        return self.pre.text


def check_preprocessed(pre: Preprocessed, grammar: Grammar, macros: frozenset[str] = frozenset()) -> Checked:
    """Parse and check a preprocessed candidate."""
    result = check(parse(pre, grammar), grammar, macros)
    if result.errors:
        raise CheckFailed("\n".join(result.errors))
    return Checked(pre, result.reads, result.calls, result.defined)


@dataclasses.dataclass
class Build:
    failed: str | None          # the name of the step that failed, or None
    stderr: str                 # that step's messages
    reason: str                 # why the job ended, if it failed as a whole (timeout, memory)


def build(steps: list[tuple[str, list[str]]], workdir: Path, ro: list[Path] = (), timeout_s: float = 120,
          mem_mb: int = 2048) -> Build:
    """Named commands, in order, in one sandbox job ("build" profile) that may write only
    `workdir`; it stops at the first that fails. Each step's stderr goes to its own file."""
    # each job its own stderr files: sandbox jobs may run as different uids, and a later job in
    # the same directory cannot overwrite an earlier one's files
    tag = f".{uuid.uuid4().hex[:8]}"
    script = []
    for i, (name, cmd) in enumerate(steps):
        script.append(f"{shlex.join(cmd)} 2> {tag}.step{i}.err || exit {10 + i}")
    r = sandbox.run(["/bin/sh", "-c", "\n".join(script)], cwd=workdir, rw=[workdir], ro=list(ro),
                    timeout_s=timeout_s, mem_mb=mem_mb, max_procs=16, profile="build")
    if r.ok:
        return Build(None, "", "")
    step = r.returncode - 10 if r.returncode is not None and 10 <= r.returncode < 10 + len(steps) else None
    if step is None:   # the job itself was stopped: blame the step that was running
        step = next((i for i in range(len(steps)) if not (workdir / f"{tag}.step{i + 1}.err").exists()),
                    len(steps) - 1)
    try:
        err = (workdir / f"{tag}.step{step}.err").read_text(errors="replace")
    except OSError:
        err = ""
    return Build(steps[step][0], err or r.stderr, r.reason)


class StageFailed(Exception):
    """A candidate failed a stage of the pipeline: `stage` ("static", "compile", "audit") and the
    feedback for the generator."""

    def __init__(self, stage: str, feedback: str):
        super().__init__(feedback)
        self.stage, self.feedback = stage, feedback


def compiler_feedback(stderr: str) -> str:
    """A compiler's messages about the candidate, without the lines that name the template's
    own units ("In file included from unit.c:2:"), which the model never wrote."""
    return "\n".join(ln for ln in stderr.splitlines()
                     if not ln.startswith(("In file included from", "                 from "))).strip()


def pipeline(source: str, grammar: Grammar, workdir: Path, compile_steps: list[tuple[str, list[str]]],
             audit: tuple[str, set[str], set[str]], macros: frozenset[str], ro: list[Path] = (),
             timeout_s: float = 120) -> Checked:
    """The checking pipeline, for any template: write the candidate to workdir/<grammar.file>;
    in one sandbox job preprocess it alone into policy.i and run `compile_steps` (units that
    #include policy.i); then parse and check policy.i, and audit the object `audit` names
    (path in workdir, allowed undefined symbols, the holes' symbol names). Raises StageFailed."""
    (workdir / grammar.file).write_text(source)
    job = build([("preprocess", preprocess_command(grammar, PREPROCESSED)), *compile_steps], workdir, ro=ro,
                timeout_s=timeout_s)
    if job.failed == "preprocess":
        raise StageFailed("static", str(preprocess_failed(job.stderr, job.reason, grammar)))
    try:
        pre = read_preprocessed((workdir / PREPROCESSED).read_text(errors="replace"), grammar)
        checked = check_preprocessed(pre, grammar, macros)
    except CheckFailed as e:
        raise StageFailed("static", str(e)) from None
    if job.failed:        # the grammar's messages come first; then the compiler's
        raise StageFailed("compile", compiler_feedback(job.stderr) or job.reason)
    obj, allowed, holes = audit
    problems = audit_object(workdir / obj, allowed, holes, file=grammar.file)
    if problems:
        raise StageFailed("audit", "\n".join(problems))
    return checked


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
    # the dialect the candidate is compiled in: g++ -std=c++17 (no GNU `linux`/`unix` macros)
    compiler = ["g++", "-std=c++17"] if language == "c++" else ["gcc"]
    r = sandbox.run([*compiler, "-dM", "-E", *defines, *(f"-I{d}" for d in include_dirs), src.name],
                    cwd=workdir, ro=[workdir, *include_dirs], timeout_s=60, mem_mb=1024, profile="build",
                    max_output=16 << 20)
    if not r.ok:
        raise TaskError(f"the template does not preprocess: {r.stderr.strip()[:300] or r.reason}")
    names = frozenset(ln.split()[1].split("(")[0] for ln in r.stdout.splitlines() if ln.startswith("#define "))
    with _macro_lock:
        _macro_cache[key] = names
    return names
