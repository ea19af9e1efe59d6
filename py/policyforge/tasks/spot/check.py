"""The allowlist for a Python decide(): a checked candidate can only compute with its
arguments. Python's own parser (ast) reads it; anything not named here is refused with the
line and what to do instead, the same shape as the C checker's messages."""
from __future__ import annotations

import ast

PARAMS = ("time_left", "work_left", "spot", "on_spot", "on_demand", "overhead", "spot_rate")
CALLS = {"pf_div": 2, "pf_min": 2, "pf_max": 2, "pf_log": 1, "min": 2, "max": 2, "abs": 1}
BINOPS = (ast.Add, ast.Sub, ast.Mult)
UNARY = (ast.USub, ast.UAdd, ast.Not)
COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
SIGNATURE = f"def decide({', '.join(PARAMS)})"


def check(source: str, file: str = "policy.py") -> list[str]:
    """Problems, one line each (empty when the candidate passes)."""
    try:
        tree = ast.parse(source, file)
    except SyntaxError as e:
        return [f"{file}:{e.lineno}: not valid Python: {e.msg}"]
    errors: list[str] = []

    def err(node: ast.AST, text: str) -> None:
        errors.append(f"{file}:{getattr(node, 'lineno', '?')}: {text}")

    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    for n in tree.body:
        if not isinstance(n, ast.FunctionDef):
            err(n, f"only `{SIGNATURE}:` may be defined at the top level (no imports, globals or other code)")
        elif n.name != "decide":
            err(n, f"defining '{n.name}' is not allowed: define only decide() (no helper functions)")
    decide = [f for f in fns if f.name == "decide"]
    if len(decide) != 1:
        return errors + [f"{file}: must define decide() once, as `{SIGNATURE}:`"]
    fn = decide[0]
    a = fn.args
    if fn.decorator_list or fn.returns or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs \
            or [x.arg for x in a.args] != list(PARAMS) or any(x.annotation for x in a.args):
        err(fn, f"decide() must be written `{SIGNATURE}:` exactly")
        return errors
    known = set(PARAMS)

    def expr(node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, bool):
                err(node, "only numbers may be constants (no strings, bytes or None)")
        elif isinstance(node, ast.Name):
            if node.id not in known and node.id not in CALLS:
                err(node, f"'{node.id}' is not defined here; use decide()'s arguments and locals")
            elif node.id in CALLS:
                err(node, f"'{node.id}' may only be called")
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, BINOPS):
                err(node, "only +, - and * are allowed; divide with pf_div(a, b), which returns 0 when b == 0")
            expr(node.left)
            expr(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, UNARY):
                err(node, "only -x, +x and `not x` are allowed")
            expr(node.operand)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                expr(v)
        elif isinstance(node, ast.Compare):
            if not all(isinstance(op, COMPARE) for op in node.ops):
                err(node, "only <, <=, >, >=, ==, != comparisons are allowed")
            expr(node.left)
            for c in node.comparators:
                expr(c)
        elif isinstance(node, ast.IfExp):
            for v in (node.test, node.body, node.orelse):
                expr(v)
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in CALLS or node.keywords:
                err(node, f"only these calls are allowed, with positional arguments: {', '.join(CALLS)}")
                return
            if len(node.args) != CALLS[name]:
                err(node, f"{name}() takes {CALLS[name]} argument{'s' if CALLS[name] > 1 else ''}")
            for x in node.args:
                expr(x)
        else:
            err(node, f"{type(node).__name__} is not allowed (arithmetic on the arguments only: no attributes, "
                      "indexing, lambdas, comprehensions or strings)")

    def stmt(node: ast.AST) -> None:
        if isinstance(node, ast.Assign):
            if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                err(node, "assign to one plain local name at a time")
                return
            expr(node.value)
            target = node.targets[0].id
            if target.startswith("_") or target in CALLS or target == "decide":
                err(node, f"'{target}' cannot be a local's name")
            known.add(target)
        elif isinstance(node, ast.AugAssign):
            if not isinstance(node.target, ast.Name) or node.target.id not in known:
                err(node, "augmented assignment only to a local that exists")
            elif not isinstance(node.op, BINOPS):
                err(node, "only +=, -= and *= are allowed")
            expr(node.value)
        elif isinstance(node, ast.If):
            expr(node.test)
            for s in node.body + node.orelse:
                stmt(s)
        elif isinstance(node, ast.Return):
            if node.value is None:
                err(node, "return a number: 0 idle, 1 spot, 2 on demand")
            else:
                expr(node.value)
        elif isinstance(node, ast.Pass):
            pass
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            pass                                        # a docstring
        else:
            what = {ast.For: "loops", ast.While: "loops", ast.Import: "imports", ast.ImportFrom: "imports",
                    ast.Global: "globals", ast.Nonlocal: "nonlocal names", ast.Try: "try",
                    ast.With: "with", ast.FunctionDef: "nested functions", ast.Raise: "raise"}.get(type(node))
            err(node, f"{what or type(node).__name__ + ' statements'} are not allowed: decide() runs every tick "
                      "and may only compute with its arguments")

    for s in fn.body:
        stmt(s)
    return errors
