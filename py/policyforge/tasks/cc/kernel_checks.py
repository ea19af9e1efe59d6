"""Static rules for kernel-side policies, checked before clang sees the code.

Kernel code has no floating point, must never divide by zero (pf_div returns 0 for that;
BPF has no signed division anyway), must terminate (loops only over the history windows,
with a constant bound), and may call only the template's helpers.
"""
from __future__ import annotations

import re

from ...checks import strip_comments, top_level

HELPERS = {"pf_div", "pf_min", "pf_max", "pf_window"}
TYPES = {"u32", "u64", "s32", "s64", "int", "long", "unsigned", "const", "struct", "__u32", "__u64", "__s64",
         "char", "short", "signed", "if", "else", "return", "sizeof", "for", "break", "continue"}
BOUNDED_FOR = re.compile(r"for\s*\(\s*(?:s64|int|u32|long)?\s*(\w+)\s*=\s*\d+\s*;\s*\1\s*<\s*(PF_HIST|\d+)\s*;"
                         r"\s*(?:\1\s*\+\+|\+\+\s*\1|\1\s*\+=\s*1)\s*\)")
SIGNATURE = re.compile(r"\bu32\s+policy_cong_control\s*\(\s*const\s+struct\s+pf_cc_state\s*\*\s*\w+\s*,"
                       r"\s*const\s+struct\s+pf_cc_history\s*\*\s*\w+\s*\)\s*\{")


def check_kernel_policy(src: str) -> list[str]:
    errs = []
    code = strip_comments(src)
    for no, line in enumerate(code.splitlines(), 1):
        s = line.strip()
        where = f"policy.c:{no}:"
        if "\\" in s:
            # a line continuation could splice a banned word (fl\<newline>oat) past these rules
            errs.append(f"{where} backslashes (line continuations, escapes) are not allowed")
        if s.startswith("#"):
            errs.append(f"{where} preprocessor directives are not allowed")
        if re.search(r"\b(float|double)\b", s):
            errs.append(f"{where} floating point is not allowed in kernel code (use integers, e.g. scale by 1000)")
        if re.search(r"(?<![\w.])\d+\.\d*([eE][-+]?\d+)?|\b\d+[eE][-+]?\d+", s):
            errs.append(f"{where} floating-point literal is not allowed in kernel code")
        if re.search(r"(?<![/*])/(?![/*=])|/=", s):
            errs.append(f"{where} division must use pf_div(a, b), which returns 0 when b == 0")
        if re.search(r"%", s):
            errs.append(f"{where} modulo is not allowed (a value not checked against zero); use a - pf_div(a, b) * b")
        for kw in ("while", "do", "goto", "static", "asm", "__asm__", "volatile", "extern"):
            if re.search(rf"\b{kw}\b", s):
                errs.append(f"{where} '{kw}' is not allowed" + (" (loops must be `for (i = 0; i < PF_HIST; i++)`)"
                                                                 if kw in ("while", "do", "goto") else ""))
        if re.search(r"\bfor\b", s) and not BOUNDED_FOR.search(s):
            errs.append(f"{where} unbounded loop: only `for (int i = 0; i < PF_HIST; i++)` is allowed")
        for m in re.finditer(r"\bfor\s*\([^;]*;\s*\w+\s*<\s*(\d+)", s):
            if int(m.group(1)) > 10:
                errs.append(f"{where} loop bound {m.group(1)} exceeds PF_HIST (10)")
        if "[" in s and not re.search(r"\bh->w\[", s):
            errs.append(f"{where} indexing is only allowed through pf_window(h, k) (bounds are checked there)")
        if re.search(r"\bh->w\[", s):
            errs.append(f"{where} read history windows through pf_window(h, k), not h->w[...]")
        if re.search(r"\(\s*(const\s+)?(struct\s+)?\w+\s*\*+\s*\)", s):
            errs.append(f"{where} pointer casts are not allowed")
        for call in re.findall(r"([A-Za-z_]\w*)\s*\(", s):
            if call in TYPES or call == "policy_cong_control":
                continue
            if call not in HELPERS:
                errs.append(f"{where} call to '{call}' is not allowed; allowed: {', '.join(sorted(HELPERS))}")
    if not SIGNATURE.search(code):
        errs.append("policy.c: must define 'u32 policy_cong_control(const struct pf_cc_state *s, "
                    "const struct pf_cc_history *h) { ... }'")
    heads, decls, balanced = top_level(code)
    for decl in decls:
        errs.append(f"policy.c: top-level declaration '{decl[:50]}' is not allowed")
    if not balanced:
        errs.append("policy.c: unbalanced braces")
    if len(heads) > 1:
        errs.append("policy.c: define exactly one function, policy_cong_control()")
    return errs
