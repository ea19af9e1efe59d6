"""Static rules for a candidate priority() before it reaches the compiler.

The template owns all state; a candidate is one pure function. Each rule gives a precise
message with the line number, so a generator can repair it.
"""
from __future__ import annotations

import re

ALLOWED_CALLS = {"pf_div", "pf_min", "pf_max", "pf_log", "log", "log2", "log10", "log1p", "sqrt",
                 "exp", "fabs", "floor", "ceil", "fmin", "fmax", "pow"}
KEYWORDS = {"if", "else", "return", "sizeof", "double", "int", "long", "unsigned", "const", "struct",
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


def _strip_comments(src: str) -> str:
    # keep newlines so line numbers stay right
    src = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def check_source(src: str, function: str = "priority") -> list[str]:
    """Violations as 'policy.c:LINE: message' lines; empty when the source passes."""
    errs: list[str] = []
    code = _strip_comments(src)
    lines = code.splitlines()
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("#"):
            errs.append(f"policy.c:{no}: preprocessor directives are not allowed ({s.split()[0]}); "
                        "the template already includes <math.h>")
        if "[" in s:
            errs.append(f"policy.c:{no}: indexing ('[') is not allowed; read features through obj-> and ctx->")
        if re.search(r"\(\s*(const\s+)?(struct\s+)?\w+\s*\*+\s*\)", s):
            errs.append(f"policy.c:{no}: pointer casts are not allowed (obj and ctx are read-only)")
        for word in re.findall(r"[A-Za-z_]\w*", s):
            if word in FORBIDDEN_WORDS:
                errs.append(f"policy.c:{no}: '{word}': {FORBIDDEN_WORDS[word]}")
        for call in re.findall(r"([A-Za-z_]\w*)\s*\(", s):
            if call in KEYWORDS or call == function and re.match(rf"\s*double\s+{function}\s*\(", line):
                continue
            if call == function:
                errs.append(f"policy.c:{no}: {function}() must not call itself")
            elif call not in ALLOWED_CALLS:
                errs.append(f"policy.c:{no}: call to '{call}' is not allowed; allowed: "
                            + ", ".join(sorted(ALLOWED_CALLS)))
    if not re.search(rf"\bdouble\s+{function}\s*\(\s*const\s+struct\s+pf_obj\s*\*\s*\w+\s*,"
                     rf"\s*const\s+struct\s+pf_ctx\s*\*\s*\w+\s*\)\s*\{{", code):
        errs.append(f"policy.c: must define 'double {function}(const struct pf_obj *obj, "
                    "const struct pf_ctx *ctx) { ... }'")
    # Only one top-level definition: the function itself (no globals, no helpers).
    depth, top = 0, []
    buf = ""
    for ch in code:
        if ch == "{":
            if depth == 0:
                top.append(buf.strip())
                buf = ""
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            buf += ch
            if ch == ";" and buf.strip(" ;\n"):
                errs.append(f"policy.c: top-level declaration '{buf.strip()[:60]}' is not allowed "
                            "(no globals or prototypes; define only the function)")
                buf = ""
    if depth != 0:
        errs.append("policy.c: unbalanced braces")
    if len([t for t in top if t]) > 1:
        errs.append(f"policy.c: define exactly one function, {function}(); found {len(top)} top-level blocks")
    return errs
