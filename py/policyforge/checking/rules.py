"""The allowlist: walk a candidate's AST and accept only what its grammar names.

Every node type the walker does not know is rejected, so a construct nobody thought of fails
closed. Messages have one form, ``FILE:LINE: what is not allowed; what to write instead``,
because they go back to the generator for repair.
"""
from __future__ import annotations

import dataclasses
import math
import re

from pycparser import c_ast

from .grammar import Grammar
from .parse import PRELUDE_FILE, STD_PREFIX

# names a local may not take: the compiler's and the templates' own (they may be macros there)
RESERVED = re.compile(r"^(__|_[A-Z]|pf_|PF_)")
CXX_KEYWORDS = {"and", "or", "not", "xor", "bitand", "bitor", "compl", "new", "delete", "this", "class",
                "template", "typename", "namespace", "operator", "friend", "virtual", "private", "public",
                "protected", "try", "catch", "throw", "using", "export", "mutable", "explicit", "nullptr",
                "true", "false", "bool", "wchar_t", "char8_t", "char16_t", "char32_t", "alignas", "alignof",
                "decltype", "noexcept", "static_assert", "thread_local", "concept", "requires", "co_await",
                "co_return", "co_yield", "consteval", "constinit", "constexpr", "asm", "std"}
ASSIGN_OPS = {"=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "|=", "^="}
COMPARISONS = {"<": "up", "<=": "up", ">": "down", ">=": "down", "!=": "ne"}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclasses.dataclass
class Result:
    errors: list[str]
    reads: dict[str, set[str]]            # struct -> fields the candidate reads
    calls: set[str]
    defined: set[str] = dataclasses.field(default_factory=set)   # the holes it defines


@dataclasses.dataclass
class _Local:
    kind: str                              # "scalar" or "ptr:<struct>"


class _Scope:
    def __init__(self, parent: "_Scope | None" = None):
        self.parent, self.names = parent, {}

    def find(self, name: str) -> _Local | None:
        s = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return None


def check(ast: c_ast.FileAST, grammar: Grammar, macros: frozenset[str] = frozenset()) -> Result:
    """Errors (empty when the candidate passes), and what it reads and calls.

    ``macros``: names that are macros where the template compiles the candidate; a local of
    that name would be replaced there by something the checker never saw."""
    return _Checker(grammar, macros).run(ast)


class _Checker:
    def __init__(self, grammar: Grammar, macros: frozenset[str]):
        self.g = grammar
        self.macros = macros
        self.errors: list[str] = []
        self.reads: dict[str, set[str]] = {}
        self.calls: set[str] = set()
        self.constants = dict(grammar.constants)
        self.rejected: set[str] = set()   # names of rejected top-level declarations: no follow-up errors
        if grammar.language == "c++":
            self.constants.update(true=1, false=0)

    # --- helpers ------------------------------------------------------------------------------
    def err(self, node: c_ast.Node | None, text: str) -> None:
        line = getattr(getattr(node, "coord", None), "line", None)
        self.errors.append(f"{self.g.file}:{line}: {text}" if line else f"{self.g.file}: {text}")

    def _call_name(self, name: str) -> str:
        return "std::" + name[len(STD_PREFIX):] if name.startswith(STD_PREFIX) else name

    # --- the file -------------------------------------------------------------------------------
    def run(self, ast: c_ast.FileAST) -> Result:
        defined: set[str] = set()
        holes = ", ".join(f.name + "()" for f in self.g.functions)
        for ext in ast.ext:
            if getattr(ext.coord, "file", None) == PRELUDE_FILE:
                continue
            if isinstance(ext, c_ast.FuncDef):
                name = ext.decl.name
                fn = self.g.function(name)
                if fn is None:
                    self.err(ext, f"defining '{name}' is not allowed: define only {holes} (no helper "
                                  f"functions; write the computation inline)")
                    continue
                if name in defined:
                    self.err(ext, f"{name}() is defined twice")
                    continue
                defined.add(name)
                self.function(ext, fn)
            elif isinstance(ext, c_ast.Pragma):
                self.err(ext, "#pragma is not allowed")
            else:
                what = getattr(ext, "name", None) or type(ext).__name__.lower()
                self.err(ext, f"top-level declaration '{what}' is not allowed (no globals, prototypes or "
                              f"types; define only {holes})")
                if getattr(ext, "name", None):
                    self.rejected.add(ext.name)
        for fn in self.g.functions:
            if fn.name not in defined and not fn.optional:
                self.errors.append(f"{self.g.file}: must define {fn.name}() with the signature `{fn.signature}`")
        return Result(list(dict.fromkeys(self.errors)), self.reads, self.calls, defined)

    def function(self, fd: c_ast.FuncDef, fn) -> None:
        decl = fd.decl
        if decl.storage or decl.funcspec or getattr(decl, "align", None):
            words = " ".join(decl.storage + [getattr(x, "name", str(x)) for x in decl.funcspec])
            self.err(fd, f"'{words}' is not allowed on {fn.name}(): write `{fn.signature}`")
        ftype = decl.type
        params = ftype.args.params if isinstance(ftype, c_ast.FuncDecl) and ftype.args else []
        got_ret = _type_str(ftype.type) if isinstance(ftype, c_ast.FuncDecl) else "?"
        got = [(_type_str(p.type), getattr(p, "name", None)) for p in params]
        want = [p.type for p in fn.params]
        if fd.param_decls or got_ret != fn.returns or [t for t, _ in got] != want or any(n is None for _, n in got):
            self.err(fd, f"{fn.name}() must have the signature `{fn.signature}`")
            return
        scope = _Scope()
        for (_, name), p in zip(got, fn.params):
            scope.names[name] = _Local(f"param:{p.struct}" if p.is_pointer else "param-scalar")
        self.fn = fn
        self.stmt(fd.body, scope, loops=0, protected=set())

    # --- statements ---------------------------------------------------------------------------
    def stmt(self, node: c_ast.Node | None, scope: _Scope, loops: int, protected: set[str]) -> None:
        if node is None or isinstance(node, (c_ast.EmptyStatement, c_ast.Break, c_ast.Continue)):
            return
        if isinstance(node, c_ast.Compound):
            inner = _Scope(scope)
            for item in node.block_items or []:
                self.stmt(item, inner, loops, protected)
        elif isinstance(node, c_ast.Decl):
            self.local(node, scope)
        elif isinstance(node, c_ast.DeclList):
            for d in node.decls:
                self.local(d, scope)
        elif isinstance(node, c_ast.If):
            self.scalar(node.cond, scope, protected)
            self.stmt(node.iftrue, _Scope(scope), loops, protected)
            self.stmt(node.iffalse, _Scope(scope), loops, protected)
        elif isinstance(node, c_ast.Switch):
            self.scalar(node.cond, scope, protected)
            self.stmt(node.stmt, _Scope(scope), loops, protected)
        elif isinstance(node, (c_ast.Case, c_ast.Default)):
            if isinstance(node, c_ast.Case) and self.const(node.expr) is None:
                self.err(node, "a case label must be a constant")
            for s in node.stmts or []:
                self.stmt(s, scope, loops, protected)
        elif isinstance(node, c_ast.Return):
            if node.expr is None:
                self.err(node, f"{self.fn.name}() must return a value")
            else:
                self.scalar(node.expr, scope, protected)
        elif isinstance(node, c_ast.For):
            self.loop(node, scope, loops, protected)
        elif isinstance(node, (c_ast.While, c_ast.DoWhile)):
            self.err(node, self._loop_message())
        elif isinstance(node, (c_ast.Goto, c_ast.Label)):
            self.err(node, "goto and labels are not allowed")
        elif isinstance(node, c_ast.Pragma):
            self.err(node, "#pragma is not allowed")
        elif isinstance(node, c_ast.Cast) and _type_str(node.to_type.type) == "void" and isinstance(node.expr, c_ast.ID):
            self.expr(node.expr, scope, protected)     # `(void)ctx;`: marks a name used, does nothing
        elif isinstance(node, (c_ast.Assignment, c_ast.UnaryOp, c_ast.FuncCall, c_ast.ExprList,
                               c_ast.BinaryOp, c_ast.TernaryOp, c_ast.ID, c_ast.Constant, c_ast.Cast,
                               c_ast.StructRef)):
            self.expr(node, scope, protected)
        else:
            self.err(node, f"{type(node).__name__} statements are not allowed")

    def _loop_message(self) -> str:
        if not self.g.max_trips:
            return f"loops are not allowed ({self.g.purpose}): write it without a loop"
        return (f"only for loops with a bound the checker can see are allowed, e.g. `{self.g.loop_hint}` "
                f"(at most {self.g.max_trips} iterations; extra conditions with &&, counting down and other "
                f"constant steps are fine)")

    def local(self, d: c_ast.Decl, scope: _Scope) -> None:
        name = d.name
        shadowed = scope.find(name) if name else None
        if name:   # known from here on even when rejected below: one message, not one per use
            scope.names.setdefault(name, _Local("scalar"))
        if d.storage or d.funcspec or getattr(d, "align", None):
            what = " ".join(d.storage) or "this specifier"
            self.err(d, f"'{what}' is not allowed: locals are plain (no static or global state)")
            return
        if d.bitsize is not None:
            self.err(d, "bit fields are not allowed")
            return
        t = d.type
        if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.IdentifierType):
            tname = " ".join(t.type.names)
            if not self._scalar_type(t.type.names, d):
                return
            if "volatile" in t.quals:
                self.err(d, "volatile is not allowed")
                return
            kind = "scalar"
        elif isinstance(t, c_ast.PtrDecl) and isinstance(t.type, c_ast.TypeDecl) and \
                isinstance(t.type.type, c_ast.Struct) and self._pointer_call_for(t.type.type.name):
            tname = f"const struct {t.type.type.name} *"
            if "const" not in t.type.quals or t.quals:
                self.err(d, f"a pointer local must be declared `{tname}{name}` (read-only, never reassigned)")
                return
            kind = f"ptr:{t.type.type.name}"
        else:
            self.err(d, self._type_message(t, name))
            return
        if name is None:
            self.err(d, "a declaration must name a local")
            return
        self._check_name(d, name, shadowed)
        if d.init is None:
            self.err(d, f"local '{name}' must be initialized where it is declared (`{tname} {name} = ...;`)")
        elif isinstance(d.init, (c_ast.InitList, c_ast.CompoundLiteral)):
            self.err(d, "initializer lists are not allowed")
        elif kind == "scalar":
            self.scalar(d.init, scope, set())
        else:
            if isinstance(d.init, c_ast.BinaryOp):
                self.err(d, f"pointer arithmetic is not allowed: write `{tname}{name} = "
                            f"{self._pointer_call_for(kind[4:]).name}(...);`")
                scope.names[name] = _Local(kind)
                return
            got = self.expr(d.init, scope, set())
            if got != kind:
                call = self._pointer_call_for(kind[4:])
                self.err(d, f"pointer local '{name}' must be initialized from {call.name}(...)")
        scope.names[name] = _Local(kind)

    def _type_message(self, t: c_ast.Node, name: str | None) -> str:
        if isinstance(t, c_ast.ArrayDecl):
            return "arrays are not allowed: use scalar locals"
        if isinstance(t, c_ast.PtrDecl):
            return "pointers are not allowed: read fields through the parameters (obj->field)"
        if isinstance(t, c_ast.FuncDecl):
            return "declaring functions is not allowed"
        inner = getattr(t, "type", None)
        if isinstance(inner, (c_ast.Struct, c_ast.Union, c_ast.Enum)):
            return f"{type(inner).__name__.lower()} types are not allowed: use scalar locals"
        return f"the type of '{name}' is not allowed; use one of: {', '.join(self.g.types)}"

    def _scalar_type(self, names: list[str], node: c_ast.Node) -> bool:
        bad = [n for n in names if n not in self.g.types]
        if bad:
            floats = {"double", "float"} & set(names)
            if floats and not self.g.floating:
                self.err(node, "floating point is not allowed in kernel code (use integers, e.g. scale by 1000)")
            else:
                self.err(node, f"type '{' '.join(names)}' is not allowed; use one of: {', '.join(self.g.types)}")
            return False
        return True

    def _check_name(self, node: c_ast.Node, name: str, shadowed: _Local | None) -> None:
        cxx = self.g.language == "c++" and name in CXX_KEYWORDS    # `new`, `this`: plain names in C
        if RESERVED.match(name) or cxx or name in self.macros or name.startswith(STD_PREFIX):
            self.err(node, f"the name '{name}' is reserved by the template or the compiler; choose another")
        elif self.g.call(name) or self.g.function(name) or name in self.constants:
            self.err(node, f"the name '{name}' is already a function or a constant; choose another")
        elif shadowed is not None and shadowed.kind.startswith("param"):
            self.err(node, f"'{name}' is a parameter; choose another name for the local")

    def _pointer_call_for(self, struct: str):
        return next((c for c in self.g.calls if c.returns == struct), None)

    # --- loops ----------------------------------------------------------------------------------
    def loop(self, node: c_ast.For, scope: _Scope, loops: int, protected: set[str]) -> None:
        if not self.g.max_trips:
            self.err(node, self._loop_message())
            return
        if loops >= self.g.max_nesting:
            self.err(node, f"loops may nest at most {self.g.max_nesting} deep")
            return
        inner = _Scope(scope)
        var, start, unsigned = None, None, False
        if isinstance(node.init, c_ast.DeclList) and len(node.init.decls) == 1:
            d = node.init.decls[0]
            self.local(d, inner)
            var, start = d.name, self.const(d.init) if d.init is not None else None
            names = getattr(getattr(d.type, "type", None), "names", [])
            unsigned = any(n == "unsigned" or n.lstrip("_").startswith("u") for n in names)
        elif isinstance(node.init, c_ast.Assignment) and node.init.op == "=" and isinstance(node.init.lvalue, c_ast.ID):
            unsigned = False
            self.expr(node.init, inner, protected)
            var, start = node.init.lvalue.name, self.const(node.init.rvalue)
        bound = self._bound(node.cond, var) if var else None
        step = self._step(node.next, var) if var else None
        if var and step is not None and step < 0 and unsigned:
            self.err(node, f"a loop counter that counts down must be signed (`int {var}`): an unsigned one never "
                           "goes below 0")
            return
        if bound is not None and bound[0] == "ne" and start is not None and step is not None:
            # `k != LIMIT` ends only if the steps land on LIMIT exactly
            if (limit := bound[2]) == start or (limit - start) / step <= 0 or (limit - start) % step:
                self.err(node, f"this loop's `!=` bound is never reached by its step; write `{var} < ...`")
                return
            bound = ("up", "<", limit) if step > 0 else ("down", ">", limit)
        if start is None or bound is None or step is None or (bound[0] == "up") != (step > 0):
            what = ("its counter must be initialized to a constant" if start is None else
                    "its condition needs `counter < CONSTANT` (or >, <=, >=, != against a constant)" if bound is None
                    else "its step must be a constant increment (k++, k += 2) or decrement" if step is None
                    else "its step goes away from its bound")
            self.err(node, f"{self._loop_message()} (here {what})")
            return
        direction, op, limit = bound
        span = (limit - start) if direction == "up" else (start - limit)
        span += 1 if op in ("<=", ">=") else 0
        trips = max(0, math.ceil(span / abs(step)))
        if trips > self.g.max_trips:
            self.err(node, f"this loop runs {trips} times; at most {self.g.max_trips} are allowed")
            return
        for conj in _conjuncts(node.cond):
            self.scalar(conj, inner, protected | {var})     # the condition may not move the counter
        self.expr(node.next, inner, protected)
        guarded = protected | {var}
        self.stmt(node.stmt, _Scope(inner), loops + 1, guarded)

    def _bound(self, cond: c_ast.Node | None, var: str) -> tuple[str, str, float] | None:
        """(direction, operator, constant limit) of the first `var OP const` conjunct."""
        for conj in _conjuncts(cond):
            if not isinstance(conj, c_ast.BinaryOp) or conj.op not in COMPARISONS:
                continue
            op, left, right = conj.op, conj.left, conj.right
            if isinstance(right, c_ast.ID) and right.name == var:
                op, left, right = FLIPPED.get(op, op), right, left
            if isinstance(left, c_ast.ID) and left.name == var:
                limit = self.const(right)
                if limit is not None:
                    return COMPARISONS[op], op, limit
        return None

    def _step(self, nxt: c_ast.Node | None, var: str) -> float | None:
        if isinstance(nxt, c_ast.UnaryOp) and isinstance(nxt.expr, c_ast.ID) and nxt.expr.name == var:
            return {"p++": 1, "++": 1, "p--": -1, "--": -1}.get(nxt.op)
        if isinstance(nxt, c_ast.Assignment) and isinstance(nxt.lvalue, c_ast.ID) and nxt.lvalue.name == var:
            if nxt.op in ("+=", "-="):
                k = self.const(nxt.rvalue)
                if k is not None and k > 0:
                    return k if nxt.op == "+=" else -k
            if nxt.op == "=" and isinstance(nxt.rvalue, c_ast.BinaryOp) and nxt.rvalue.op in "+-" and \
                    isinstance(nxt.rvalue.left, c_ast.ID) and nxt.rvalue.left.name == var:
                k = self.const(nxt.rvalue.right)
                if k is not None and k > 0:
                    return k if nxt.rvalue.op == "+" else -k
        return None

    def _shift_count_ok(self, node: c_ast.Node) -> bool:
        """A shift count that is provably 0..62: a constant, or anything masked with `& C`."""
        k = self.const(node)
        if k is not None:
            return 0 <= k <= 62
        if isinstance(node, c_ast.BinaryOp) and node.op == "&":
            masks = [self.const(node.left), self.const(node.right)]
            return any(m is not None and 0 <= m <= 62 for m in masks)
        return False

    def const(self, node: c_ast.Node | None) -> float | None:
        """The value of an integer constant expression, else None."""
        if isinstance(node, c_ast.Constant) and node.type.endswith("int"):
            digits = node.value.rstrip("uUlL")
            try:
                if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xXbB":
                    return int(digits, 8)
                return int(digits, 0)
            except ValueError:
                return None
        if isinstance(node, c_ast.ID) and node.name in self.constants:
            return self.constants[node.name]
        if isinstance(node, c_ast.UnaryOp) and node.op in ("-", "+"):
            v = self.const(node.expr)
            return None if v is None else (-v if node.op == "-" else v)
        if isinstance(node, c_ast.BinaryOp) and node.op in ("<<", ">>", "/"):
            a, b = self.const(node.left), self.const(node.right)
            if a is not None and b is not None and 0 <= b < 63 and (node.op != "/" or b != 0):
                a, b = int(a), int(b)
                return a << b if node.op == "<<" else a >> b if node.op == ">>" else int(a / b)
            return None
        if isinstance(node, c_ast.BinaryOp) and node.op in ("+", "-", "*"):
            a, b = self.const(node.left), self.const(node.right)
            if a is not None and b is not None:
                return a + b if node.op == "+" else a - b if node.op == "-" else a * b
        return None

    # --- expressions ----------------------------------------------------------------------------
    def scalar(self, node: c_ast.Node, scope: _Scope, protected: set[str]) -> None:
        kind = self.expr(node, scope, protected)
        if kind is not None and kind != "scalar":
            self.err(node, self._pointer_use(node, kind))

    def _pointer_use(self, node: c_ast.Node, kind: str) -> str:
        if kind.startswith("param:"):
            fields = ", ".join(self.g.structs.get(kind[6:], ()))
            return f"a parameter may only be read through -> (e.g. {_name(node)}->{fields.split(',')[0]}); " \
                   "pointer arithmetic, comparisons and copies are not allowed"
        return "pointer locals may only be read through ->"

    def expr(self, node: c_ast.Node, scope: _Scope, protected: set[str]) -> str | None:
        """Check an expression; its kind: "scalar", "param:S", "ptr:S" (None after an error)."""
        if isinstance(node, c_ast.Constant):
            if node.type == "string":
                self.err(node, "string literals are not allowed")
            elif node.type in ("double", "float", "long double") and not self.g.floating:
                self.err(node, "floating-point literals are not allowed in kernel code (use integers, e.g. scale by 1000)")
            return "scalar"
        if isinstance(node, c_ast.ID):
            local = scope.find(node.name)
            if local is not None:
                return "scalar" if local.kind == "param-scalar" else local.kind
            if node.name in self.constants:
                return "scalar"
            if self.g.call(self._call_name(node.name)) or self.g.function(node.name):
                self.err(node, f"'{self._call_name(node.name)}' may only be called")
                return None
            if node.name in self.rejected:      # already said: a global is not allowed
                return None
            name = self._call_name(node.name)
            if re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
                self.err(node, f"'{name}' is not declared here: no header macros or constants are available "
                               f"(write the number itself{', or use ' + ', '.join(self.g.constants) if self.g.constants else ''})")
            else:
                self.err(node, f"'{name}' is not declared here; read features through the parameters "
                               f"({', '.join(p.name for p in self.fn.params)}) and declare locals before use")
            return None
        if isinstance(node, c_ast.StructRef):
            return self.field(node, scope, protected)
        if isinstance(node, c_ast.ArrayRef):
            hint = next(iter(self.g.field_hints.values()), "read features through the parameters' fields")
            self.err(node, f"indexing ('[') is not allowed; {hint}")
            return None
        if isinstance(node, c_ast.UnaryOp):
            return self.unary(node, scope, protected)
        if isinstance(node, c_ast.BinaryOp):
            if node.op in ("<<", ">>"):
                if not self._shift_count_ok(node.right):
                    self.err(node, "a shift's count must be a constant from 0 to 62, or masked into that range "
                                   "(`x >> (k & 15)`): a count of 64 or more, or a negative one, is undefined")
            if node.op in ("/", "%") and not self.g.division:
                self.err(node, "division must use pf_div(a, b), which returns 0 when b == 0" if node.op == "/" else
                         "modulo (%) is not allowed; write a - pf_div(a, b) * b")
            self.scalar(node.left, scope, protected)
            self.scalar(node.right, scope, protected)
            return "scalar"
        if isinstance(node, c_ast.TernaryOp):
            for part in (node.cond, node.iftrue, node.iffalse):
                self.scalar(part, scope, protected)
            return "scalar"
        if isinstance(node, c_ast.Assignment):
            return self.assignment(node, scope, protected)
        if isinstance(node, c_ast.Cast):
            t = node.to_type.type
            if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.IdentifierType):
                if self._scalar_type(t.type.names, node):
                    if "volatile" in t.quals:
                        self.err(node, "volatile is not allowed")
                    self.scalar(node.expr, scope, protected)
            else:
                self.err(node, "casts to pointers or other non-scalar types are not allowed "
                               "(the parameters are read-only)")
            return "scalar"
        if isinstance(node, c_ast.FuncCall):
            return self.call(node, scope, protected)
        if isinstance(node, c_ast.ExprList):
            kind = None
            for e in node.exprs:
                kind = self.expr(e, scope, protected)
            return kind
        if isinstance(node, (c_ast.CompoundLiteral, c_ast.InitList)):
            self.err(node, "compound literals and initializer lists are not allowed")
            return None
        if isinstance(node, c_ast.Compound):
            self.err(node, "statement expressions ({ ... }) are not allowed")
            return None
        self.err(node, f"{type(node).__name__} is not allowed here")
        return None

    def field(self, node: c_ast.StructRef, scope: _Scope, protected: set[str]) -> str | None:
        base = self.expr(node.name, scope, protected)
        if node.type != "->":
            if base is not None:
                self.err(node, "'.' is not allowed: read fields through the parameters with ->")
            return None
        if base is None:
            return None
        if base == "scalar":
            self.err(node, "-> needs one of the parameters (or a pointer from an allowed call)")
            return None
        struct = base.split(":", 1)[1]
        fname = node.field.name
        readable = self.g.structs.get(struct, ())
        if fname not in readable:
            hint = self.g.field_hints.get(fname)
            self.err(node, f"'{fname}' is not a readable field of struct {struct}"
                           + (f"; {hint}" if hint else f"; readable: {', '.join(readable)}"))
            return None
        self.reads.setdefault(struct, set()).add(fname)
        return "scalar"

    def unary(self, node: c_ast.UnaryOp, scope: _Scope, protected: set[str]) -> str | None:
        op = node.op
        if op in ("&", "*"):
            self.err(node, "taking an address ('&') is not allowed" if op == "&" else
                     "dereferencing ('*') is not allowed: read fields through the parameters with ->")
            self.expr(node.expr, scope, protected)       # and whatever else is wrong inside
            return None
        if op in ("sizeof", "_Alignof", "alignof", "__alignof__"):
            self.err(node, f"{op} is not allowed")
            return None
        if op in ("p++", "p--", "++", "--"):
            self._target(node.expr, scope, protected, node)
            return "scalar"
        self.scalar(node.expr, scope, protected)
        return "scalar"

    def assignment(self, node: c_ast.Assignment, scope: _Scope, protected: set[str]) -> str:
        if node.op in ("/=", "%=") and not self.g.division:
            self.err(node, "division must use pf_div(a, b), which returns 0 when b == 0")
        self._target(node.lvalue, scope, protected, node)
        self.scalar(node.rvalue, scope, protected)
        return "scalar"

    def _target(self, lvalue: c_ast.Node, scope: _Scope, protected: set[str], node: c_ast.Node) -> None:
        if not isinstance(lvalue, c_ast.ID):
            errors = len(self.errors)
            self.expr(lvalue, scope, protected)      # names what it is made of first
            if len(self.errors) == errors:
                self.err(node, "only locals may be assigned (the parameters and what they point to are read-only)")
            return
        local = scope.find(lvalue.name)
        if local is None:
            self.expr(lvalue, scope, protected)
        elif local.kind.startswith("param"):
            self.err(node, f"'{lvalue.name}' is a parameter: parameters are read-only; copy it into a local")
        elif local.kind != "scalar":
            self.err(node, f"pointer local '{lvalue.name}' cannot be reassigned")
        elif lvalue.name in protected:
            self.err(node, f"the loop counter '{lvalue.name}' may only change in the loop's header")

    def call(self, node: c_ast.FuncCall, scope: _Scope, protected: set[str]) -> str | None:
        if not isinstance(node.name, c_ast.ID):
            self.err(node, "only the allowed functions may be called, by name")
            return None
        name = self._call_name(node.name.name)
        args = node.args.exprs if node.args else []
        if name in ("asm", "__asm", "__asm__"):
            self.err(node, "inline assembly is not allowed")
            return None
        if self.g.function(name):
            self.err(node, f"{name}() must not call a policy function (no recursion)")
            return None
        spec = self.g.call(name)
        if spec is None:
            allowed = ", ".join(sorted(c.name for c in self.g.calls))
            self.err(node, f"call to '{name}' is not allowed; allowed: {allowed}")
            return None
        self.calls.add(name)
        if len(args) != spec.arity:
            self.err(node, f"{name}() takes {spec.arity} argument{'s' if spec.arity != 1 else ''}")
            return None
        pointer_args = dict(spec.pointer_args)
        for i, a in enumerate(args):
            if i in pointer_args:
                kind = self.expr(a, scope, protected) if isinstance(a, c_ast.ID) else None
                if kind != f"param:{pointer_args[i]}":
                    self.err(a, f"argument {i + 1} of {name}() must be the struct {pointer_args[i]} parameter itself")
            else:
                self.scalar(a, scope, protected)
        return f"ptr:{spec.returns}" if spec.returns else "scalar"


def _conjuncts(node: c_ast.Node | None) -> list[c_ast.Node]:
    if isinstance(node, c_ast.BinaryOp) and node.op == "&&":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node] if node is not None else []


def _name(node: c_ast.Node) -> str:
    return node.name if isinstance(node, c_ast.ID) else "param"


def _type_str(t: c_ast.Node) -> str:
    """A declaration's type as the prompt writes it: "const struct pf_obj *", "double"."""
    if isinstance(t, c_ast.PtrDecl):
        inner = _type_str(t.type)
        return f"{inner} *" + (" " + " ".join(t.quals) if t.quals else "")
    if isinstance(t, c_ast.TypeDecl):
        quals = " ".join(t.quals)
        inner = t.type
        if isinstance(inner, c_ast.IdentifierType):
            base = " ".join(inner.names)
        elif isinstance(inner, c_ast.Struct):
            base = f"struct {inner.name}"
        else:
            base = type(inner).__name__
        return f"{quals} {base}".strip()
    return type(t).__name__
