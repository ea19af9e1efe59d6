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


def test_refine_changes_only_constants_and_keeps_the_shape():
    hole = ToyTask().holes()[0]
    tree = expr.parse("(add (mul 2.0 x) (ifgt x 1.5 3.0 x))")

    def shape(t):
        return tuple(shape(c) for c in t[1:]) + (t[0],) if isinstance(t, tuple) else (t if isinstance(t, str) else "k")
    rng = random.Random(3)
    kids = [expr.refine(hole, tree, rng) for _ in range(40)]
    assert all(shape(k) == shape(tree) for k in kids) and len({expr.to_text(k) for k in kids}) > 10
    # small steps: every constant stays within a factor 2.5 of its value (sigma 0.2, 40 draws)
    for k in kids:
        for old, new in ((2.0, k[1][1]), (1.5, k[2][2]), (3.0, k[2][3])):
            assert old / 2.5 < new < old * 2.5
    # a tree without constants is mutated instead, not returned unchanged
    assert expr.refine(hole, "x", random.Random(1)) != "x"


def test_point_mutation_swaps_one_feature_for_another():
    from policyforge.task import Hole
    hole = Hole("f", "double f(double a, double b)", {"a": "a", "b": "b"})
    seen = {expr.to_text(expr.mutate(hole, "a", random.Random(s))) for s in range(30)}
    assert "b" in seen           # the leaf itself swapped, besides subtree replacement and wrapping


def _scored(st, genomes_scores, rnd=0):
    ids = st.add_round([dict(round=rnd, slot=i, island=0, parents=[], generator="offline", source=f"s{rnd}{i}",
                             source_hash=f"h{rnd}{i}", genome={"f": g}) for i, (g, _) in enumerate(genomes_scores)])
    for cid, (g, score) in zip(ids, genomes_scores):
        st.finish(cid, status="evaluated", source=f"s{cid}", source_hash=f"x{cid}", score=score)


def test_the_archive_keeps_the_best_of_each_behaviour_and_elites_come_from_other_cells(tmp_path):
    st = Store(tmp_path / "store.sqlite")
    # four candidates reading x (the best ones) and two reading no feature at all
    _scored(st, [("(add x 1.0)", 9.0), ("(mul x 2.0)", 8.0), ("(add x 3.0)", 7.0), ("(sub x 1.0)", 6.0),
                 ("2.0", 1.0), ("3.0", 2.0)])
    task = ToyTask()
    sel = IslandSelector(islands=1, top_k=2, random_picks=0, elites=1, behaviour=task.behaviour)
    cells = sel.archive(st.scored())
    assert set(cells) == {"x", "constant"} and cells["constant"]["score"] == 2.0 and cells["x"]["score"] == 9.0
    got = sel.parents(st, 0, 1, random.Random(0))
    # top 2 by score, then the elite of the only cell not yet in the pool
    assert [p.score for p in got] == [9.0, 8.0, 2.0]
    # without an archive the selector draws nothing more: a run stored before it replays alike
    plain = IslandSelector(islands=1, top_k=2, random_picks=0)
    rng_a, rng_b = random.Random(7), random.Random(7)
    plain.parents(st, 0, 1, rng_a)
    IslandSelector(islands=1, top_k=2, random_picks=0, elites=0, behaviour=task.behaviour).parents(st, 0, 1, rng_b)
    assert rng_a.random() == rng_b.random()


def test_cache_behaviour_cells_group_the_features():
    from policyforge.tasks.cache.task import CacheTask
    t = CacheTask()
    assert t.behaviour({"priority": "(add last_access (ifgt sketch 1.5 cache_size 0.0))"}) == "recency+frequency"
    assert t.behaviour({"priority": "(sub last_access irr)"}) == "recency+reuse"
    assert t.behaviour({"priority": "(mul ghost_hits once)"}) == "ghost+statistics"


def test_a_run_stored_before_the_archive_and_refinement_resumes_without_them():
    from policyforge.search.controller import RunConfig
    old = RunConfig(task="cache").to_json()
    del old["elites"], old["refine"]
    cfg = RunConfig.from_json(old)
    assert (cfg.elites, cfg.refine) == (0, 0.0)
    assert (RunConfig(task="cache").elites, RunConfig(task="cache").refine) == (2, 0.15)
