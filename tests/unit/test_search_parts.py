"""The selector, the prompt builder, the expression language and the model planner, without
root or a toolchain (make test-fast)."""
import random

from policyforge.search import expr
from policyforge.search.database import Store
from policyforge.search.models import plan
from policyforge.search.prompt import extract_code, normalize, repair_messages
from policyforge.search.selector import IslandSelector
from policyforge.search.types import Parent, Repair
from toytask import ToyTask


def test_extract_code_takes_the_first_fence_and_normalize_ignores_comments():
    answer = "Here:\n```c\ndouble f(double x) { return x; }\n```\nand ```c\nother\n```"
    assert extract_code(answer) == "double f(double x) { return x; }\n"
    assert extract_code("no fence at all") == "no fence at all\n"
    assert normalize("a  /* x */ b // y\n c") == normalize("a b c")


def test_a_repair_prompt_carries_the_feedback_and_the_earlier_errors():
    task = ToyTask()
    msgs = repair_messages(task, [Parent(1, "double f(double x) { return x; }", 1.0)],
                           Repair("double f(double x) { return y; }", "compile", "policy.c:1: 'y' undeclared",
                                  [("static", "policy.c:1: loops are not allowed\nmore"), ("compile", "boom")]))
    last = msgs[-1]["content"]
    assert "'y' undeclared" in last and "return y" in msgs[-2]["content"]
    assert "attempt 1 failed the static check: policy.c:1: loops are not allowed / more" in last
    assert "attempt 2 failed the compile check: boom" in last


def test_expressions_round_trip_and_mutations_are_deterministic():
    hole = ToyTask().holes()[0]
    tree = expr.parse("(add (mul x x) 3.0)")
    assert expr.parse(expr.to_text(tree)) == tree
    a = [expr.to_text(expr.mutate(hole, tree, random.Random(5))) for _ in range(3)]
    assert len(set(a)) == 1


def test_the_selector_reads_only_earlier_rounds(tmp_path):
    st = Store(tmp_path / "store.sqlite")
    ids = st.add_round([dict(round=r, slot=0, island=0, parents=[], generator="offline", source=f"s{r}",
                             source_hash=f"h{r}") for r in (0, 1, 2)])
    for cid, score in zip(ids, (1.0, 2.0, 3.0)):
        st.finish(cid, status="evaluated", source="s", source_hash=f"x{cid}", score=score)
    got = IslandSelector(islands=1).parents(st, 0, 2, random.Random(0))
    assert [p.score for p in got] == [2.0, 1.0]        # round 2's own candidate is not a parent


def test_ucb_plans_untried_models_first():
    assert plan(["a", "b", "c"], {"b": (3, 1.0)}, 3)[:2] == ["a", "c"]
