"""From a candidate's text to an AST: preprocess it alone in the sandbox, then parse it with
pycparser.

The preprocessor runs with -nostdinc in a sandbox that shows it /usr, its own /proc and the
candidate's directory, nothing else: an #include (also spelled %:include, or through a macro)
can name no file that holds a secret and cannot block on /dev/stdin or fill memory from
/dev/zero, and any text it brings in from another file, even an empty one, is rejected here.
Comments, line continuations, macros and digraphs are resolved by the real preprocessor, so
the parser sees the tokens the compiler will see; and the compiler gets exactly this
preprocessed text (the task's units #include it), not the candidate's original.
"""
from __future__ import annotations

import dataclasses
import re

from pycparser import c_ast, c_parser

from .grammar import Grammar

LINEMARKER = re.compile(r'^#\s*(?:line\s+)?(\d+)\s+"((?:[^"\\]|\\.)*)"(.*)$')
PRELUDE_FILE = "<policyforge prelude>"
# C++ qualified names of the allowlist become single identifiers for the C parser
STD_NAME = re.compile(r"\bstd\s*::\s*([A-Za-z_]\w*)")
STD_PREFIX = "pf__std__"


class CheckFailed(Exception):
    """The candidate fails this step; the message is the feedback for the generator."""


@dataclasses.dataclass
class Preprocessed:
    text: str          # the candidate's preprocessed lines, with #line markers: what gets compiled
    parser_text: str   # what the C parser reads (C++ std:: names mapped, prelude prepended)


def preprocess_command(grammar: Grammar, output: str) -> list[str]:
    """The real preprocessor on the candidate's file alone (<grammar.file> in the job's
    working directory), with no include path: run it in the sandbox."""
    # the dialect the task's compiler uses, so the two agree on predefined macros (`linux` is one
    # in GNU modes only): C++ units are built with -std=c++17, C ones in gcc's and clang's GNU C
    lang = ["-x", "c++", "-std=c++17"] if grammar.language == "c++" else ["-x", "c", "-std=gnu11"]
    return ["gcc", "-E", "-nostdinc", *lang, grammar.file, "-o", output]


def preprocess_failed(stderr: str, reason: str, grammar: Grammar) -> CheckFailed:
    """The feedback for a preprocessor that failed: its own words (about the candidate's
    text only: it saw no other file), or why it was stopped."""
    msg = stderr.strip() or reason
    inc = re.search(r"^([^:\n]+):(\d+):\d+: (?:fatal )?error: (?:no include path in which to search for "
                    r"(\S+)|([^:\n]+): No such file or directory)", msg, re.M)
    if inc:   # the candidate's line: where its #include is, even when the error is in the header it found
        via = re.search(rf"^In file included from {re.escape(grammar.file)}:(\d+)", msg, re.M)
        line = via.group(1) if via else inc.group(2) if inc.group(1) == grammar.file else "1"
        header = "" if via else (inc.group(3) or inc.group(4) or "").strip()   # not a header it pulled in
        return CheckFailed(f"{grammar.file}:{line}: #include{' ' + header if header else ''} is not allowed: everything the function "
                           "may use is already declared (remove the #include)")
    if "timeout" in reason or "out of memory" in reason:
        msg = f"{grammar.file}: the preprocessor did not finish ({reason}); #include is not allowed"
    lines = msg.splitlines()
    if len(lines) > 12:
        lines = lines[:12] + [f"... ({len(lines) - 12} more lines)"]
    return CheckFailed("\n".join(lines))


def read_preprocessed(text: str, grammar: Grammar) -> Preprocessed:
    """The preprocessor's output for the candidate, checked to hold nothing but its lines."""
    return Preprocessed(*_candidate_lines(text, grammar.file, grammar))


def _candidate_lines(out: str, name: str, grammar: Grammar) -> tuple[str, str]:
    """Keep the main file's lines. Any other file (an #include that found something, even an
    empty one; a #line naming another file) is rejected."""
    keep: list[str] = []
    current, line_no, content = None, 0, False
    for raw in out.splitlines():
        m = LINEMARKER.match(raw)
        if m:
            line_no, current, flags = int(m.group(1)), m.group(2), m.group(3).split()
            if "1" in flags or current not in (name, "<built-in>", "<command-line>") or \
                    current != name and content:
                where = f"{grammar.file}:{_last_main_line(keep)}" if keep else grammar.file
                raise CheckFailed(f"{where}: #include and #line are not allowed (the template already "
                                  f"provides everything the function may use)")
            if current == name:
                keep.append(f'#line {line_no} "{grammar.file}"')
            continue
        if current != name:
            continue
        keep.append(raw)
        content = content or bool(raw.strip())
        line_no += 1
    text = "\n".join(keep) + "\n"
    parser_text = STD_NAME.sub(lambda m: STD_PREFIX + m.group(1), text) if grammar.language == "c++" else text
    prelude = "".join(f"typedef int {t};\n" for t in grammar.typedefs)
    if grammar.language == "c++":
        prelude += "typedef int bool;\n"
    return text, f'#line 1 "{PRELUDE_FILE}"\n{prelude}{parser_text}'


def _last_main_line(keep: list[str]) -> int:
    n = 0
    for ln in keep:
        m = LINEMARKER.match(ln)
        n = int(m.group(1)) if m else n + 1
    return max(1, n - 1)


_PARSE_ERROR = re.compile(r"^(?P<file>[^:]*):(?P<line>\d+):(?:(?P<col>\d+):)?\s*(?P<msg>.*)$", re.S)
_NOT_C = {
    "__attribute__": "attributes are not allowed", "__asm__": "inline assembly is not allowed",
    "__asm": "inline assembly is not allowed", "asm": "inline assembly is not allowed",
    "__extension__": "GNU extensions are not allowed", "__typeof__": "typeof is not allowed",
    "typeof": "typeof is not allowed", "template": "templates are not allowed",
    "auto": "write the type (auto is not allowed)", "class": "classes are not allowed",
    "namespace": "namespaces are not allowed", "operator": "operators cannot be overloaded",
    "static_cast": "write a C cast, e.g. (double)x", "constexpr": "constexpr is not allowed",
    "<:": "digraphs are not allowed", ":>": "digraphs are not allowed", "<%": "digraphs are not allowed",
    "%>": "digraphs are not allowed", "::": "only std:: calls of the allowed list may be qualified",
}


def parse(pre: Preprocessed, grammar: Grammar) -> c_ast.FileAST:
    """pycparser's AST of the preprocessed candidate; a syntax error becomes one message."""
    parser = c_parser.CParser()
    try:
        return parser.parse(pre.parser_text, filename=grammar.file)
    except Exception as e:  # pycparser raises ParseError, and a few lexer errors as others
        text = str(e)
        m = _PARSE_ERROR.match(text)
        line = m.group("line") if m else _where_it_stopped(parser)
        msg = (m.group("msg") if m else text.split(": ", 1)[-1]).strip()
        source_line = _line(pre, int(line)) if line.isdigit() else ""
        hint = _hint(source_line)
        msg = msg.replace(STD_PREFIX, "std::")
        unknown = _unknown_type(source_line, grammar)
        if unknown:   # `uint64_t x = ...`: a type the parser cannot know, said in the rules' words
            raise CheckFailed(f"{grammar.file}:{line}: type '{unknown}' is not allowed; use one of: "
                              f"{', '.join(grammar.types)}") from None
        raise CheckFailed(f"{grammar.file}:{line}: cannot parse this as a C function"
                          f"{f' ({hint})' if hint else ''}: {msg}") from None


def _unknown_type(source_line: str, grammar: Grammar) -> str | None:
    """A word used as a type in this line (`NAME ident` before = ; , or )) that is no type of
    the grammar: uint64_t, bool, size_t... The parser only sees an unexpected identifier."""
    known = set(grammar.types) | {"const", "struct", "return", "static", "volatile", "register", "extern", "signed",
                                  "unsigned", "long", "short", "inline", "else", "case", "goto", "sizeof"}
    for m in re.finditer(r"\b([A-Za-z_]\w*)\s+\**\s*[A-Za-z_]\w*\s*[=;,)\[]", source_line):
        if m.group(1) not in known:
            return m.group(1)
    return None


def _where_it_stopped(parser: c_parser.CParser) -> str:
    """The line of the token the parser stopped at, for the errors it reports without one
    (it keeps its tokens in a private buffer: read it if it is there)."""
    stream = getattr(parser, "_tokens", None)
    buf, i = getattr(stream, "_buffer", None), getattr(stream, "_index", None)
    if not buf or i is None:
        return "?"
    tok = buf[min(i, len(buf) - 1)] or (buf[-2] if len(buf) > 1 else None)
    return str(getattr(tok, "lineno", "?"))


def _hint(source_line: str) -> str:
    """What a construct the parser does not know is, in the words of the rules."""
    for tok, hint in _NOT_C.items():
        if tok.isidentifier() and re.search(rf"\b{re.escape(tok)}\b", source_line) or \
                not tok.isidentifier() and tok in source_line:
            return hint
    return ""


def _line(pre: Preprocessed, number: int) -> str:
    """The preprocessed text of the candidate's line `number`."""
    n = 0
    for ln in pre.text.splitlines():
        m = LINEMARKER.match(ln)
        if m:
            n = int(m.group(1))
            continue
        if n == number:
            return ln
        n += 1
    return ""
