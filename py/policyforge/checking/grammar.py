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
    """A hole: a function the candidate must define, with this exact signature."""
    name: str
    returns: str
    params: tuple[Param, ...]

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
HELPERS_DOUBLE = (Call("pf_div", 2), Call("pf_min", 2), Call("pf_max", 2), Call("pf_log", 1))


def math_calls(cxx: bool) -> tuple[Call, ...]:
    """The <math.h> list, and for C++ its std:: spellings plus std::min / std::max / std::abs."""
    calls = [Call(n, MATH_ARITY.get(n, 1)) for n in MATH_C]
    if cxx:
        calls += [Call(f"std::{n}", MATH_ARITY.get(n, 1)) for n in MATH_C]
        calls += [Call("std::min", 2), Call("std::max", 2), Call("std::abs", 1)]
    return tuple(calls)


SCALAR_C = ("double", "float", "int", "long", "unsigned", "short", "char", "signed", "_Bool")
