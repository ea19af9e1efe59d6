"""What a candidate may write: the allowlist grammar a task declares for its holes.

A candidate is a list of function definitions, exactly the template's holes. Inside them the
checker (rules.py) allows only what the grammar names: reads of the parameters' listed
fields, locals of the listed scalar types (initialized where declared), arithmetic, ``if``,
``switch``, ``?:``, calls of the listed functions, and ``for`` loops only when ``max_trips``
is set and the loop's bound is a constant the checker can see. Everything else (pointers and
addresses, indexing, casts to pointers, unions and structs, static or global storage, asm,
attributes, strings, other calls, recursion) is rejected with a message naming the line.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a hole: a scalar (``double``) or a read-only struct pointer."""
    name: str                            # the name in the prompt's signature (any name is accepted)
    type: str                            # "double" or "const struct pf_obj *"
    struct: str | None = None            # for struct pointers: the struct's name

    @property
    def is_pointer(self) -> bool:
        return self.struct is not None


@dataclasses.dataclass(frozen=True)
class Function:
    """A hole: a function the candidate must define (or, `optional`, may define) with this
    exact signature."""
    name: str
    returns: str
    params: tuple[Param, ...]
    doc: str = ""                        # when the template calls it and what it does with the result
    optional: bool = False               # the template has a default when it is not defined

    @property
    def signature(self) -> str:
        args = ", ".join(f"{p.type}{'' if p.type.endswith('*') else ' '}{p.name}" for p in self.params)
        return f"{self.returns} {self.name}({args})"


@dataclasses.dataclass(frozen=True)
class Call:
    """A function a candidate may call. ``pointer_args`` maps an argument's position to the
    struct whose parameter must be passed there as is (``pf_window(h, k)``); ``returns`` names
    the struct a call returns a read-only pointer to, or None for a scalar."""
    name: str                            # as written: "pf_div", "std::tanh"
    arity: int
    pointer_args: tuple[tuple[int, str], ...] = ()
    returns: str | None = None
    doc: str = ""                        # what it computes, for the prompt ("a / b, 0 when b == 0")
    args: tuple[str, ...] = ()           # argument names for the prompt (default a, b or x)


@dataclasses.dataclass(frozen=True)
class Grammar:
    language: str                        # "c" or "c++"
    file: str                            # the name messages use: "policy.c", "rules.cpp"
    functions: tuple[Function, ...]
    calls: tuple[Call, ...]
    structs: dict[str, tuple[str, ...]]  # struct -> readable fields
    types: tuple[str, ...]               # scalar type names for locals and casts
    typedefs: tuple[str, ...] = ()       # of those, the ones that are typedefs (s64, u32)
    constants: dict[str, float] = dataclasses.field(default_factory=dict)  # PF_HIST = 10
    floating: bool = True                # False: no floating-point types or literals (kernel)
    division: bool = True                # False: '/' and '%' only through pf_div
    max_trips: int = 0                   # 0: no loops; else the most iterations of one loop
    max_nesting: int = 2
    field_hints: dict[str, str] = dataclasses.field(default_factory=dict)  # field -> what to do instead
    purpose: str = "it runs on every call"  # why loops are not allowed, for the message
    fields: dict[str, str] = dataclasses.field(default_factory=dict)  # "struct.field" -> meaning, units

    def call(self, name: str) -> Call | None:
        return next((c for c in self.calls if c.name == name), None)

    def function(self, name: str) -> Function | None:
        return next((f for f in self.functions if f.name == name), None)

    @property
    def loop_hint(self) -> str:
        bound = next(iter(self.constants), str(self.max_trips))
        return f"for (int i = 0; i < {bound}; i++)"


# math a priority or a rule may use: pure, deterministic, no errno games that matter
MATH_C = ("log", "log2", "log10", "log1p", "sqrt", "exp", "fabs", "floor", "ceil", "fmin", "fmax", "pow",
          "tanh", "atan", "cbrt", "round", "trunc")
MATH_ARITY = {"pow": 2, "fmin": 2, "fmax": 2}
HELPERS_DOUBLE = (Call("pf_div", 2, doc="a / b, 0 when b == 0"), Call("pf_min", 2, doc="the smaller"),
                  Call("pf_max", 2, doc="the larger"), Call("pf_log", 1, doc="log(1 + |x|)"))


def math_calls(cxx: bool) -> tuple[Call, ...]:
    """The <math.h> list, and for C++ its std:: spellings plus std::min / std::max / std::abs."""
    calls = [Call(n, MATH_ARITY.get(n, 1)) for n in MATH_C]
    if cxx:
        calls += [Call(f"std::{n}", MATH_ARITY.get(n, 1)) for n in MATH_C]
        calls += [Call("std::min", 2), Call("std::max", 2), Call("std::abs", 1)]
    return tuple(calls)


def _call_text(c: Call) -> str:
    args = ", ".join(c.args or (("x",) if c.arity == 1 else tuple("abcd"[:c.arity])))
    text = f"{c.name}({args})"
    if c.returns:
        text += f" -> const struct {c.returns} *"
    return text + (f" = {c.doc}" if c.doc else "")


def _calls_text(g: Grammar) -> str:
    """Helpers one per line with what they compute; the math functions in one line."""
    math = {n for n in MATH_C}
    lines = [_call_text(c) for c in g.calls if c.name not in math and not c.name.startswith("std::")]
    plain = [c.name for c in g.calls if c.name in math]
    if plain:
        two = [n for n in plain if MATH_ARITY.get(n, 1) == 2]
        header = "<cmath>" if g.language == "c++" else "<math.h>"
        line = f"math: {', '.join(plain)} (as in {header}; {', '.join(two)} take two arguments, the others one)"
        if any(c.name.startswith("std::") for c in g.calls):
            extra = [c.name for c in g.calls if c.name.startswith("std::") and c.name[5:] not in math]
            line += f"; each also spelled std::log etc.; and {', '.join(extra)} on doubles"
        lines.append(line)
    return "\n    ".join(lines)


def rules_text(g: Grammar) -> str:
    """What a candidate may write, in words, rendered from the grammar the checker enforces:
    the prompt and the checker cannot disagree (tests/engine/test_prompts.py holds them to it)."""
    fns = "\n".join(f"    {f.signature}" + ("   (optional)" if f.optional else "")
                    + (f"\n        {f.doc}" if f.doc else "") for f in g.functions)
    some = any(f.optional for f in g.functions)
    out = [f"Define exactly these function(s) in one file ({g.file}), with these signatures, and nothing "
           f"else (no helper functions, no globals, no #include: everything below is already declared)"
           + ("; those marked optional only when you want to replace the template's default" if some else "")
           + f":\n{fns}"]
    for struct, names in g.structs.items():
        via = [(f, p.name) for f in g.functions for p in f.params if p.struct == struct]
        where = f"{via[0][1]}->" if via else ""
        if not via:
            call = next((c for c in g.calls if c.returns == struct), None)
            where = f"{call.name}(...)->" if call else f"struct {struct}: "
        rows = [f"    {where}{n:<20} {g.fields.get(f'{struct}.{n}', '')}".rstrip() for n in names]
        out.append(f"Read-only fields of struct {struct}" + (f" (parameter `{via[0][1]}`)" if via else "")
                   + ":\n" + "\n".join(rows))
    if g.constants:
        out.append("Constants: " + ", ".join(f"{k} = {v:g}" for k, v in g.constants.items()))
    out.append("Allowed calls (no others):\n    " + _calls_text(g))
    types = ", ".join(t for t in g.types if g.floating or t not in ("double", "float"))
    stmts = [f"locals of the types {types}, each initialized where it is declared"
             + (" (and `const struct ... *` locals from the calls above that return one)"
                if any(c.returns for c in g.calls) else ""),
             "assignments, if/else, switch on integers, ?:, return (every path returns a value)"]
    if g.max_trips:
        stmts.append(f"`for` loops whose bound the checker can see: a counter initialized to a constant, a "
                     f"condition `counter < CONSTANT` (further conditions may follow with &&), a constant "
                     f"step, e.g. `{g.loop_hint}`; the counter changes only in the loop's header; a counter "
                     f"that counts down is signed; at most {g.max_trips} iterations, nested at most "
                     f"{g.max_nesting} deep; break and continue are allowed; no while, do or goto")
    else:
        stmts.append(f"no loops of any kind ({g.purpose})")
    stmts.append("integer arithmetic only: no float or double types or literals" if not g.floating
                 else "double and integer arithmetic")
    if not g.division:
        stmts.append("no `/` or `%`: divide with pf_div(a, b)")
    elif g.floating:
        stmts.append("`/` divides (x / 0 is inf or nan in floating point; pf_div(a, b) gives 0 instead)")
    if g.floating:
        stmts.append("results must be finite numbers for every input the template can pass, including 0 and "
                     "very large values: the checker calls the function(s) on sample inputs and rejects inf or "
                     "nan (bound exponents, divide with pf_div, take logs with pf_log)")
    stmts.append("it is compiled with warnings as errors (-Wall -Werror): e.g. an unused local fails; a local "
                 "may not take the name of a macro of the template's headers (the checker names it)")
    if g.language == "c++":
        stmts.append("C-style C++: write each type (no auto), C casts ((double)x, not static_cast), no constexpr, "
                     "lambdas, templates, classes or namespaces, no digraphs or alternative tokens (<% %>, and, "
                     "or, not: write { }, &&, ||, !)")
    stmts.append("shifts (<<, >>) only by a constant count from 0 to 62, or a count masked into that range (x >> (k & 15))")
    stmts.append("not allowed: pointers of your own, & (address), [] (indexing), casts to pointers, "
                 "structs, unions, arrays, strings, static or global variables, asm, attributes, #pragma, "
                 "recursion, calls not listed above")
    out.append("Statements and expressions:\n    " + "\n    ".join(stmts))
    return "\n\n".join(out)


SCALAR_C = ("double", "float", "int", "long", "unsigned", "short", "char", "signed", "_Bool")
