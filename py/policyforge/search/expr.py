"""Expression genomes for the offline generator.

A task declares each function a candidate must define as a :class:`policyforge.task.Hole`:
its signature and a vocabulary of features (DSL name -> expression in the task's language).
The offline generator evolves expression trees over that vocabulary and renders them in the
task's language: C and C++ (``return <expr>;``) or Python (``return <expr>``).

Trees are nested tuples ``(op, child, ...)``; leaves are feature names (str) or numbers.
The text form is an S-expression, e.g. ``(add count (div last_access 1000))``.

Rendered code calls helpers the template must define for the hole's number type:
``pf_div`` (0 when the divisor is 0), ``pf_min``, ``pf_max`` and, for floating-point holes,
``pf_log`` (log(1 + |x|)).
"""
from __future__ import annotations

import math
import random
import re
from typing import Union

from ..task import Hole

Tree = Union[str, float, int, tuple]

# op -> arity. 'ifgt a b c d' means (a > b ? c : d); 'shr a k' is a right shift by a constant.
FLOAT_OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "min": 2, "max": 2, "log": 1, "neg": 1, "ifgt": 4}
INT_OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "min": 2, "max": 2, "shr": 2, "ifgt": 4}
FLOAT_CONSTANTS = (0.5, 1.0, 2.0, 3.0, 10.0, 100.0, 1000.0, 1e6)
INT_CONSTANTS = (1, 2, 3, 4, 8, 10, 100, 1000)
MAX_NODES = 31


class ExprError(ValueError):
    pass


# --- text form --------------------------------------------------------------------------
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def parse(text: str) -> Tree:
    tokens = _TOKEN.findall(text)
    pos = 0

    def atom(tok: str) -> Tree:
        try:
            return int(tok)
        except ValueError:
            pass
        try:
            return float(tok)
        except ValueError:
            return tok

    def walk() -> Tree:
        nonlocal pos
        if pos >= len(tokens):
            raise ExprError(f"unexpected end of expression: {text!r}")
        tok = tokens[pos]
        pos += 1
        if tok == ")":
            raise ExprError(f"unexpected ')' in {text!r}")
        if tok != "(":
            return atom(tok)
        items = []
        while pos < len(tokens) and tokens[pos] != ")":
            items.append(walk())
        if pos >= len(tokens):
            raise ExprError(f"missing ')' in {text!r}")
        pos += 1
        if not items or not isinstance(items[0], str):
            raise ExprError(f"expected an operator after '(' in {text!r}")
        return tuple(items)

    tree = walk()
    if pos != len(tokens):
        raise ExprError(f"trailing tokens in {text!r}")
    return tree


def to_text(tree: Tree) -> str:
    if isinstance(tree, tuple):
        return "(" + " ".join(to_text(t) for t in tree) + ")"
    if isinstance(tree, float):
        return repr(tree)
    return str(tree)


def validate(hole: Hole, tree: Tree) -> None:
    if isinstance(tree, tuple):
        op, args = tree[0], tree[1:]
        if op not in hole.ops:
            raise ExprError(f"operator '{op}' is not allowed in {hole.name}")
        if len(args) != hole.ops[op]:
            raise ExprError(f"'{op}' takes {hole.ops[op]} arguments, got {len(args)}")
        for a in args:
            validate(hole, a)
    elif isinstance(tree, str):
        if tree not in hole.variables:
            raise ExprError(f"unknown feature '{tree}' in {hole.name}")
    elif hole.integer and isinstance(tree, float):
        raise ExprError(f"floating-point constant {tree} in integer-only {hole.name}")


# --- rendering, in the task's language --------------------------------------------------
def _num(hole: Hole, x: float | int, language: str) -> str:
    if hole.integer:
        return f"{int(x)}LL" if language != "python" else str(int(x))
    v = float(x)
    return repr(v) if "e" in repr(v) or "." in repr(v) else repr(v) + ".0"


def render_expr(hole: Hole, tree: Tree, language: str = "c") -> str:
    if isinstance(tree, str):
        return f"({hole.variables[tree]})"
    if not isinstance(tree, tuple):
        return _num(hole, tree, language)
    op, args = tree[0], [render_expr(hole, a, language) for a in tree[1:]]
    if op in ("add", "sub", "mul"):
        return f"({args[0]} {dict(add='+', sub='-', mul='*')[op]} {args[1]})"
    if op in ("div", "min", "max", "log"):
        return f"pf_{op}({', '.join(args)})"
    if op == "neg":
        return f"(-{args[0]})"
    if op == "shr":  # shift by a small non-negative amount only
        return f"({args[0]} >> (({args[1]}) & 15))"
    if op == "ifgt":
        if language == "python":
            return f"({args[2]} if {args[0]} > {args[1]} else {args[3]})"
        return f"(({args[0]} > {args[1]}) ? {args[2]} : {args[3]})"
    raise ExprError(f"unknown operator {op}")


def render_function(hole: Hole, tree: Tree, language: str = "c") -> str:
    validate(hole, tree)
    body = render_expr(hole, tree, language)
    if language == "python":
        return f"{hole.signature}:\n    return {body}\n"
    return f"{hole.signature}\n{{\n    return {body};\n}}\n"


# --- genetic operators ------------------------------------------------------------------
def size(tree: Tree) -> int:
    return 1 + sum(size(c) for c in tree[1:]) if isinstance(tree, tuple) else 1


def variables(tree: Tree) -> set[str]:
    """The features a tree reads."""
    if isinstance(tree, tuple):
        return set().union(*(variables(c) for c in tree[1:]))
    return {tree} if isinstance(tree, str) else set()


def _paths(tree: Tree, prefix=()):
    yield prefix
    if isinstance(tree, tuple):
        for i, c in enumerate(tree[1:], start=1):
            yield from _paths(c, prefix + (i,))


def _get(tree: Tree, path) -> Tree:
    for i in path:
        tree = tree[i]
    return tree


def _put(tree: Tree, path, sub: Tree) -> Tree:
    if not path:
        return sub
    i = path[0]
    return tree[:i] + (_put(tree[i], path[1:], sub),) + tree[i + 1:]


def random_leaf(hole: Hole, rng: random.Random) -> Tree:
    if rng.random() < 0.7:
        return rng.choice(sorted(hole.variables))
    return rng.choice(hole.constant_pool)


def random_tree(hole: Hole, rng: random.Random, depth: int = 3) -> Tree:
    if depth <= 0 or rng.random() < 0.3:
        return random_leaf(hole, rng)
    op = rng.choice(sorted(hole.ops))
    args = []
    for k in range(hole.ops[op]):
        if op == "shr" and k == 1:
            args.append(rng.choice((1, 2, 3, 4)))
        else:
            args.append(random_tree(hole, rng, depth - 1))
    return (op, *args)


def mutate(hole: Hole, tree: Tree, rng: random.Random) -> Tree:
    """One of: replace a subtree, perturb a constant, swap a feature or an operator for
    another, wrap in an op."""
    for _ in range(20):
        paths = list(_paths(tree))
        path = rng.choice(paths)
        node = _get(tree, path)
        kind = rng.random()
        if isinstance(node, str) and kind < 0.5:     # point mutation: another feature
            others = sorted(set(hole.variables) - {node})
            if not others:
                continue
            new = rng.choice(others)
        elif isinstance(node, (int, float)) and kind < 0.6:
            factor = rng.choice((0.5, 0.8, 1.25, 2.0))
            new = max(1, int(round(node * factor))) if hole.integer else float(node) * factor
        elif isinstance(node, tuple) and kind < 0.4:
            same = [o for o, n in hole.ops.items() if n == hole.ops[node[0]] and o != node[0]]
            if not same:
                continue
            new = (rng.choice(same),) + node[1:]
        elif kind < 0.6:
            op = rng.choice([o for o, n in hole.ops.items() if n == 2 and o != "shr"])
            other = random_tree(hole, rng, 1)
            new = (op, node, other) if rng.random() < 0.5 else (op, other, node)
        else:
            new = random_tree(hole, rng, rng.choice((1, 2, 3)))
        out = _put(tree, path, new)
        if size(out) <= MAX_NODES and out != tree:
            return out
    return tree


def _constant_paths(tree: Tree) -> list:
    """The paths of the numeric constants a search may change (not a shift's amount)."""
    return [p for p in _paths(tree) if isinstance(_get(tree, p), (int, float)) and not
            (len(p) and _get(tree, p[:-1])[0] == "shr")]


def tune(hole: Hole, tree: Tree, rng: random.Random) -> Tree:
    """Scale one numeric constant by a log-normal factor (3 significant digits); the
    numbers in a good program's shape are often what is left to find."""
    consts = _constant_paths(tree)
    if not consts:
        return mutate(hole, tree, rng)
    path = rng.choice(consts)
    value = _get(tree, path)
    scaled = value * math.exp(rng.gauss(0, 1.0)) if value else rng.choice(hole.constant_pool)
    if hole.integer:
        new = max(1, int(round(scaled)))
    else:
        new = float(f"{scaled:.3g}")
    out = _put(tree, path, new)
    return out if out != tree else mutate(hole, tree, rng)


def refine(hole: Hole, tree: Tree, rng: random.Random, sigma: float = 0.2) -> Tree:
    """Local search over the constants of a good tree: scale one constant (or, one time in
    three, every constant) by a small log-normal factor. `tune` makes coarse jumps (sigma 1)
    to find a constant's order of magnitude; this makes the fine steps that follow, a
    stochastic coordinate search when it is applied to the best tree round after round."""
    consts = _constant_paths(tree)
    if not consts:
        return mutate(hole, tree, rng)
    chosen = consts if len(consts) > 1 and rng.random() < 1 / 3 else [rng.choice(consts)]
    out = tree
    for path in chosen:
        value = _get(out, path)
        scaled = value * math.exp(rng.gauss(0, sigma)) if value else rng.choice((-1, 1)) * 0.1
        new = max(1, int(round(scaled))) if hole.integer else float(f"{scaled:.4g}")
        out = _put(out, path, new)
    return out if out != tree else mutate(hole, tree, rng)


def crossover(a: Tree, b: Tree, rng: random.Random) -> Tree:
    """Replace a random subtree of ``a`` with a random subtree of ``b``."""
    for _ in range(10):
        pa = rng.choice(list(_paths(a)))
        pb = rng.choice(list(_paths(b)))
        out = _put(a, pa, _get(b, pb))
        if size(out) <= MAX_NODES:
            return out
    return a
