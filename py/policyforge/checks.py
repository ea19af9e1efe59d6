"""Static rules for candidates that are pure functions (cache priority(), EPLB rules).

The template owns all state; a candidate defines only the required functions, each a
pure, loop-free computation over its arguments. Each rule gives a precise message with
the line number, so a generator can repair it. Kernel code (cc) has its own rules.
"""
from __future__ import annotations

import re

ALLOWED_CALLS = {"pf_div", "pf_min", "pf_max", "pf_log", "log", "log2", "log10", "log1p", "sqrt",
                 "exp", "fabs", "floor", "ceil", "fmin", "fmax", "pow"}
KEYWORDS = {"if", "else", "return", "sizeof", "while", "for", "do", "switch", "double", "int", "long", "unsigned", "const", "struct",
            "float", "char", "short", "signed"}
FORBIDDEN_WORDS = {
    "for": "loops are not allowed (priority() must run in constant time)",
    "while": "loops are not allowed (priority() must run in constant time)",
    "do": "loops are not allowed (priority() must run in constant time)",
    "goto": "goto is not allowed",
    "static": "static storage is not allowed: priority() must not keep state",
    "asm": "inline assembly is not allowed", "__asm__": "inline assembly is not allowed",
    "volatile": "volatile is not allowed",
    "malloc": "allocation is not allowed", "calloc": "allocation is not allowed",
    "realloc": "allocation is not allowed", "free": "allocation is not allowed",
    "__attribute__": "attributes are not allowed",
}


def strip_comments(src: str) -> str:
    """C source without comments; newlines are kept so that line numbers stay right."""
    src = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def top_level(code: str) -> tuple[list[str], list[str], bool]:
    """Scan comment-free C at brace depth 0.

    Returns (the text before each top-level ``{`` block, i.e. the function heads; the
    top-level declarations ending in ``;`` such as globals and prototypes; whether the braces
    balance)."""
    depth, heads, decls, buf = 0, [], [], ""
    for ch in code:
        if ch == "{":
            if depth == 0:
                heads.append(buf.strip())
                buf = ""
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            buf += ch
            if ch == ";" and buf.strip(" ;\n"):
                decls.append(buf.strip())
                buf = ""
    return heads, decls, depth == 0


def check_source(src: str, function: str = "priority", signature: str | None = None,
                 functions: tuple[str, ...] | None = None, file: str = "policy.c",
                 calls: set[str] | None = None) -> list[str]:
    """Violations as 'FILE:LINE: message' lines; empty when the source passes.

    ``signature`` is a regex the definition must match; ``functions`` the names of all
    functions to define (default: ``function`` alone)."""
    functions = functions or (function,)
    allowed = ALLOWED_CALLS if calls is None else calls
    errs: list[str] = []
    code = strip_comments(src)
    lines = code.splitlines()
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("#"):
            errs.append(f"{file}:{no}: preprocessor directives are not allowed ({s.split()[0]}); "
                        "the template already includes <math.h>")
        if "[" in s:
            errs.append(f"{file}:{no}: indexing ('[') is not allowed; read features through obj-> and ctx->")
        if re.search(r"\(\s*(const\s+)?(struct\s+)?\w+\s*\*+\s*\)", s):
            errs.append(f"{file}:{no}: pointer casts are not allowed (obj and ctx are read-only)")
        for word in re.findall(r"[A-Za-z_]\w*", s):
            if word in FORBIDDEN_WORDS:
                errs.append(f"{file}:{no}: '{word}': {FORBIDDEN_WORDS[word]}")
        for call in re.findall(r"([A-Za-z_]\w*)\s*\(", s):
            if call in KEYWORDS or call in functions and re.match(rf"\s*(static\s+)?(inline\s+)?double\s+{call}\s*\(", line):
                continue
            if call in functions:
                errs.append(f"{file}:{no}: {call}() must not call a policy function")
            elif call not in allowed:
                errs.append(f"{file}:{no}: call to '{call}' is not allowed; allowed: " + ", ".join(sorted(allowed)))
    for fn in functions:
        pattern = signature if signature and len(functions) == 1 else rf"\bdouble\s+{fn}\s*\([^)]*\)\s*\{{"
        if not re.search(pattern, code):
            errs.append(f"{file}: must define {fn}() with the signature given in the prompt")
    # Only one top-level definition: the function itself (no globals, no helpers).
    top, decls, balanced = top_level(code)
    for decl in decls:
        errs.append(f"{file}: top-level declaration '{decl[:60]}' is not allowed "
                    "(no globals or prototypes; define only the function)")
    if not balanced:
        errs.append(f"{file}: unbalanced braces")
    if len([t for t in top if t]) > len(functions):
        errs.append(f"{file}: define exactly {', '.join(f + '()' for f in functions)}; "
                    f"found {len(top)} top-level blocks")
    return errs
