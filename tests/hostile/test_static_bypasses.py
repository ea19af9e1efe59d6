"""Attack: get past the static rules. Before, they were regular expressions over the text: a
backslash-newline split a banned word (wh\\<newline>ile), a name and its `(` on separate lines
hid a call, the digraphs %: <: :> passed the `#` and `[` rules, a '{' character literal
unbalanced the brace counter and hid extra top-level definitions, and __asm was not banned.

Now the real preprocessor resolves all of that spelling and a real parser reads the result;
every case is rejected, at the line it is on, by `policyforge check`."""
import pytest

from hostile import CACHE_OPTS, PRIORITY, check_file

P = PRIORITY


@pytest.mark.parametrize("name, source, message", [
    ("line continuation", P + "{\n    double a = 0;\n    wh\\\nile (a < 3) a++;\n    return a;\n}\n",
     "policy.c:4: loops are not allowed"),
    ("call split over lines", P + "{\n    return system\n        (\"id\");\n}\n",
     "policy.c:3: call to 'system' is not allowed"),
    ("digraph hash", "%:define X 1\n" + P + "{\n    return obj->count + X;\n}\n", None),
    ("digraph brackets", P + "{\n    return ctx<:0:>.now;\n}\n", "policy.c:3: cannot parse this as a C function"),
    ("brace in a character", P + "{\n    char c = '{';\n    return c;\n}\ndouble leak(void) { return 1; }\n",
     "policy.c:6: defining 'leak' is not allowed"),
    ("__asm", P + "{\n    __asm(\"syscall\");\n    return 1;\n}\n", "policy.c:3: inline assembly is not allowed"),
    ("__asm__ volatile", P + "{\n    __asm__ volatile(\"nop\");\n    return 1;\n}\n", "inline assembly is not allowed"),
    ("attribute", "__attribute__((constructor)) static void boot(void) { }\n" + P + "{\n    return 1;\n}\n",
     "(attributes are not allowed)"),
    ("pragma operator", "_Pragma(\"GCC optimize(\\\"O0\\\")\")\n" + P + "{\n    return 1;\n}\n",
     "policy.c:1: #pragma is not allowed"),
    ("typeof", P + "{\n    __typeof__(obj) o = obj;\n    return o->count;\n}\n", "typeof is not allowed"),
    ("statement expression", P + "{\n    return ({ double t = obj->count; t; });\n}\n",
     "policy.c:3: statement expressions ({ ... }) are not allowed"),
    ("macro hides a call", "#define CALL(f) f(\"x\")\n" + P + "{\n    return CALL(puts);\n}\n",
     "policy.c:4: call to 'puts' is not allowed"),
])
def test_spellings_that_fooled_the_old_rules_are_rejected(tmp_path, name, source, message):
    rc, out = check_file(tmp_path, "cache", source, CACHE_OPTS)
    if message is None:      # a macro (spelled %:define) is fine: the checker sees its expansion
        assert rc == 0, out
    else:
        assert rc == 1 and "FAILED at stage 'static'" in out and message in out, out
