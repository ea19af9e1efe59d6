"""Native templates: a fixed source file with one hole that a checked candidate fills.

Every task with a native template uses this one mechanism:

    t = Template.find("cache", "pq_template.c")      # where the file is
    t.splice(checked_text)                            # the file with the candidate in its hole
    t.head()                                          # the file above the hole (for macro names)

The hole is the line holding ``/* PF_POLICY_HOLE */``. The candidate's text goes in its place,
and a ``#line`` marker after it makes the compiler number the template's own lines as in the
file, so a message about either part names the right line (the candidate's text carries its
own ``#line`` markers from the checker's preprocessing).

Finding a template: a checkout's source tree first (``native/<part>/``, ``bpf/``), where an
edited template is used at once; the copy installed beside the native build
(``_native/share/<part>/``) otherwise, for an installed package without a checkout.
"""
from __future__ import annotations

from pathlib import Path

from .native import native_dir
from .task import TaskError

MARK = "/* PF_POLICY_HOLE */"
CHECKOUT = Path(__file__).resolve().parents[2]          # py/policyforge/template.py -> the checkout
# where each part's templates live in a checkout
SOURCES = {"cache": CHECKOUT / "native" / "cache", "eplb": CHECKOUT / "native" / "eplb", "cc": CHECKOUT / "bpf"}


class Template:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.name

    @classmethod
    def find(cls, part: str, name: str) -> "Template":
        """The template `name` of `part` (cache, cc, eplb): the checkout's copy, else the
        installed one."""
        for base in (SOURCES.get(part), native_dir() / "share" / part):
            if base is not None and (base / name).is_file():
                return cls(base / name)
        raise TaskError(f"the {part} template {name} is missing: rebuild with `make build`")

    @property
    def dir(self) -> Path:
        """The template's directory: its headers are found there (-I)."""
        return self.path.parent

    def text(self) -> str:
        text = self.path.read_text()
        if MARK not in text:
            raise TaskError(f"the template {self.path} has no policy hole ({MARK})")
        return text

    def head(self, text: str | None = None) -> str:
        """The template above its hole: what the candidate's text is compiled below."""
        text = self.text() if text is None else text
        return text[: text.index(MARK)]

    def splice(self, checked: str, text: str | None = None, name: str | None = None) -> str:
        """The template (or `text`, a variant of it) with `checked` in its hole; the lines
        after it keep their numbers in `name` (default the template's file name)."""
        text = self.text() if text is None else text
        n = text[: text.index(MARK)].count("\n") + 1
        if not checked.endswith("\n"):
            checked += "\n"
        return text.replace(MARK, f'{checked}#line {n + 1} "{name or self.name}"', 1)
