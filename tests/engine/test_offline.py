"""The expression genome and the offline generator."""
import random
import subprocess

import pytest

from policyforge.search import expr
from policyforge.task import Hole
from policyforge.search.controller import Controller, RunConfig
from policyforge.search.prompt import extract_code, normalize

FLOAT = Hole("p", "double p(double a, double b)", {"a": "a", "b": "b"})
INT = Hole("q", "long long q(long long a)", {"a": "a"}, integer=True)
HELPERS = """
#include <math.h>
static inline double pf_div(double a, double b) { return b == 0 ? 0 : a / b; }
static inline double pf_min(double a, double b) { return a < b ? a : b; }
static inline double pf_max(double a, double b) { return a > b ? a : b; }
static inline double pf_log(double a) { return log1p(fabs(a)); }
"""


def test_parse_render_roundtrip():
    t = expr.parse("(add a (div (mul b 2.0) (log a)))")
    assert expr.to_text(t) == "(add a (div (mul b 2.0) (log a)))"
    assert expr.render_expr(FLOAT, t) == "((a) + pf_div(((b) * 2.0), pf_log((a))))"
    assert expr.render_expr(INT, expr.parse("(ifgt a 3 (shr a 1) a)")) == \
        "(((a) > 3LL) ? ((a) >> ((1LL) & 15)) : (a))"


@pytest.mark.parametrize("bad,msg", [("(add a)", "takes 2"), ("(pow a b)", "not allowed"),
                                     ("(add a zz)", "unknown feature"), ("(add a", "missing"),
                                     ("a b", "trailing")])
def test_invalid_expressions_are_rejected(bad, msg):
    with pytest.raises(expr.ExprError, match=msg):
        expr.validate(FLOAT, expr.parse(bad))


def test_integer_holes_reject_floats():
    with pytest.raises(expr.ExprError, match="floating-point"):
        expr.validate(INT, expr.parse("(mul a 0.5)"))


def test_mutation_and_crossover_stay_valid_and_compile(tmp_path):
    rng = random.Random(3)
    trees = [expr.random_tree(FLOAT, rng) for _ in range(5)]
    bodies = []
    for i in range(200):
        t = expr.mutate(FLOAT, rng.choice(trees), rng)
        t = expr.crossover(t, rng.choice(trees), rng) if i % 3 == 0 else t
        expr.validate(FLOAT, t)
        assert expr.size(t) <= expr.MAX_NODES
        trees.append(t)
        if i % 20 == 0:
            bodies.append(expr.render_function(Hole(f"p{i}", f"double p{i}(double a, double b)",
                                                              FLOAT.variables), t))
    src = tmp_path / "g.c"
    src.write_text(HELPERS + "\n".join(bodies))
    r = subprocess.run(["gcc", "-c", "-Wall", "-Werror", "-o", str(tmp_path / "g.o"), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_offline_search_improves_on_its_seeds(tmp_path):
    cfg = RunConfig(task="toytask:ToyTask", generator="offline", rounds=6, candidates_per_round=8, seed=2)
    ctl = Controller(tmp_path / "run", cfg, quiet=True)
    ctl.run()
    seeds = max(r["score"] for r in ctl.store.round_candidates(0))
    assert ctl.store.best()["score"] > seeds
    # Proposals are never verbatim repeats of earlier ones.
    srcs = [normalize(c["source"]) for c in ctl.store.candidates()]
    assert len(srcs) == len(set(srcs))


def test_extract_code_takes_the_first_fenced_block():
    assert extract_code("text\n```c\nint a;\n```\nmore ```c\nint b;\n```") == "int a;\n"
    assert extract_code("no fences") == "no fences\n"
