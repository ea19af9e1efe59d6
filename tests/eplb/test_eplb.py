"""EPLB: the native op against the Python references, the validator, the task's checker."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyforge.task import TaskError
from policyforge.tasks.eplb import TASK_CLASS, metrics, workloads
from policyforge.tasks.eplb.op import load_op
from policyforge.tasks.eplb.reference import rebalance_numpy, rebalance_python

SHAPES = [  # (E, R, G, N, M): hierarchical and global (G % N != 0) cases
    (16, 24, 4, 2, 8), (12, 16, 3, 2, 4), (8, 8, 4, 4, 4), (32, 48, 8, 4, 16), (6, 12, 3, 3, 3), (10, 20, 5, 2, 4)]


@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from(SHAPES), layers=st.integers(1, 4), seed=st.integers(0, 2**31), zeros=st.booleans(),
       ints=st.booleans())
def test_native_op_reproduces_the_python_reference_exactly(shape, layers, seed, zeros, ints):
    E, R, G, N, M = shape
    rng = np.random.default_rng(seed)
    w = rng.lognormal(0, 1.5, (layers, E))
    if ints:   # token counts: many exact ties
        w = np.floor(w * 3)
    if zeros:
        w[rng.random(w.shape) < 0.3] = 0
    native = load_op().rebalance_experts(w, R, G, N, M)
    for ref in (rebalance_python(w, R, G, N, M), rebalance_numpy(w, R, G, N, M)):
        for a, b in zip(native, ref):
            assert a.dtype == np.int64 and a.shape == b.shape and (a == b).all()
    assert metrics.validate(*native, w, R, M) == ""


def test_standard_shape_is_valid_and_balanced():
    w = workloads.windows(workloads.synthetic("static", 200, 58, 256), 100)
    p2l, l2p, cnt = load_op().rebalance_experts(w[0], 288, 8, 4, 32)
    assert p2l.shape == (58, 288) and cnt.shape == (58, 256) and (cnt.sum(1) == 288).all()
    assert metrics.validate(p2l, l2p, cnt, w[0], 288, 32) == ""
    assert metrics.balancedness(p2l, cnt, w[0], 32) > 0.9


def test_validator_rejects_the_reward_hacks():
    w = np.array([[5.0, 3.0, 1.0, 1.0]])
    p2l, l2p, cnt = load_op().rebalance_experts(w, 8, 2, 2, 4)
    assert metrics.validate(p2l, l2p, cnt, w, 8, 4) == ""
    # drop the cold-ish expert 3 and give its slot to expert 0: looks better balanced, is invalid
    hack = p2l.copy()
    hack[hack == 3] = 0
    cnt2 = cnt.copy()
    cnt2[0, 0] += cnt2[0, 3]
    cnt2[0, 3] = 0
    assert "has load but no replica" in metrics.validate(hack, l2p, cnt2, w, 8, 4)
    assert "do not sum" in metrics.validate(p2l, l2p, cnt * 2, w, 8, 4)
    assert "disagree" in metrics.validate(np.zeros_like(p2l), l2p, cnt, w, 8, 4)
    bad_l2p = l2p.copy()
    bad_l2p[0, 0, 0] = 7 if p2l[0, 7] != 0 else 6
    assert "inconsistent" in metrics.validate(p2l, bad_l2p, cnt, w, 8, 4)


def test_op_errors_are_clear():
    op = load_op()
    with pytest.raises(ValueError, match="num_groups must divide"):
        op.rebalance_experts(np.ones((1, 10)), 12, 3, 1, 4)
    with pytest.raises(ValueError, match="2-D"):
        op.rebalance_experts(np.ones(10), 12, 2, 1, 4)
    with pytest.raises(RuntimeError, match="without CUDA") if not op.has_cuda else pytest.raises(Exception):
        op.rebalance_experts(np.ones((1, 8)), 8, 2, 2, 4, device="cuda")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    t = TASK_CLASS(steps=300, layers=8)
    t.prepare(tmp_path_factory.mktemp("eplb"))
    return t


def test_task_checks_evaluates_and_reports_feedback(task, tmp_path):
    ref = task.check(task.render(task.seeds()[0].genome), tmp_path / "ref")
    assert ref.ok, ref.feedback
    ev = task.evaluate(ref, tmp_path)
    assert ev.ok and 0.5 < ev.metrics["balancedness"] <= 1
    base = {b.name: b.evaluation for b in task.baselines(tmp_path)}
    # the native op with the reference rules, numpy and Python: the same plans
    assert base["native (reference rules)"].metrics["balancedness"] == ev.metrics["balancedness"]
    assert base["numpy reference"].metrics["balancedness"] == ev.metrics["balancedness"]
    assert base["native (reference rules)"].metrics["runtime_ms"] < base["python reference"].metrics["runtime_ms"]

    looped = task.render(task.seeds()[0].genome).replace("return (recent);", "for (;;) {} return recent;")
    out = task.check(looped, tmp_path / "loop")
    assert out.stage == "static" and "loops are not allowed" in out.feedback and "rules.cpp:" in out.feedback
    typo = task.render(task.seeds()[0].genome).replace("return (recent);", "return recnt;")
    out = task.check(typo, tmp_path / "typo")
    assert out.stage == "static" and "rules.cpp:3: 'recnt' is not declared here" in out.feedback
    # what only the compiler sees: an unused local, in the candidate's own lines
    spare = task.render(task.seeds()[0].genome).replace("return (recent);", "double spare = 1; return recent;")
    out = task.check(spare, tmp_path / "spare")
    assert out.stage == "compile" and "rules.cpp:3:" in out.feedback and "unused variable 'spare'" in out.feedback


def test_vllm_json_loader(tmp_path):
    good = tmp_path / "log.json"
    good.write_text(json.dumps([{"step": s, "expert_load": [[s + e for e in range(4)]] * 2} for s in range(3)]))
    assert workloads.load_vllm_json(good).shape == (3, 2, 4)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"expert_load": [1, 2, 3]}))
    with pytest.raises(TaskError, match=r"\[steps\]\[layers\]\[experts\]"):
        workloads.load_vllm_json(bad)
    with pytest.raises(TaskError, match="shape"):
        TASK_CLASS(workload=str(good), window=1, replicas=3, groups=2, nodes=1, gpus=2).prepare(tmp_path)


def test_vllm_load_history_log_as_it_is(tmp_path):
    """vLLM's EPLB log (the public data set's format): load_history records of
    logical_expert_load [layers][experts]; a record cut off mid-step (fewer layers) is skipped
    and counted, and the task runs on the rest."""
    rng = np.random.default_rng(0)
    records = [{"logical_expert_load": rng.integers(0, 50, (4, 16)).tolist()} for _ in range(40)]
    records.append({"logical_expert_load": rng.integers(0, 50, (3, 16)).tolist()})    # the log's end
    log = tmp_path / "vllm.json"
    log.write_text(json.dumps({"load_history": records}))
    arr, skipped = workloads.load_expert_log(log)
    assert arr.shape == (40, 4, 16) and skipped == 1
    assert (arr[7] == np.asarray(records[7]["logical_expert_load"])).all()
    task = TASK_CLASS(workload=str(log), window=10, replicas=24, groups=4, nodes=2, gpus=4)
    task.prepare(tmp_path / "shared")
    assert task.describe_run()["log_records_skipped"] == 1
    reference = task.check(task.render(task.seeds()[0].genome), tmp_path / "c")
    assert reference.ok, reference.feedback
    assert task.evaluate(reference, tmp_path / "c").ok


@pytest.mark.parametrize("avx2", [True, False])
def test_both_copies_of_the_pipeline_match_the_reference(avx2):
    """The op runs an AVX2 copy of the pipeline where the CPU has AVX2, else an SSE2 one:
    both must give the references' plans (including the rank count's 4-wide tails)."""
    op = load_op()
    if avx2 and not getattr(op, "has_avx2", False):
        pytest.skip("this CPU (or this build) has no AVX2 copy")
    if not hasattr(op, "_use_avx2"):
        pytest.skip("this build of policyforge._eplb has one copy of the pipeline")
    was = op._use_avx2(avx2)
    try:
        rng = np.random.default_rng(7)
        for t in range(40):
            E, R, G, N, M = (SHAPES + [(256, 288, 8, 4, 32), (20, 34, 4, 2, 2), (300, 600, 3, 2, 60)])[t % 9]
            w = rng.lognormal(0, 1.5, (2, E))
            if t % 2:
                w = np.floor(w * 3)
            native = op.rebalance_experts(w, R, G, N, M)
            for ref in (rebalance_python(w, R, G, N, M), rebalance_numpy(w, R, G, N, M)):
                assert all(a.shape == b.shape and (a == b).all() for a, b in zip(native, ref))
    finally:
        op._use_avx2(was)
