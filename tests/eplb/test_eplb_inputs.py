"""EPLB robustness: bad loads are refused with a clear error; rules that return NaN (hostile
or careless candidates) are rejected by the probe, and would still give a valid placement
instead of a crash."""
import subprocess

import numpy as np
import pytest

from policyforge.native import native_dir
from policyforge.tasks.eplb import TASK_CLASS, metrics
from policyforge.tasks.eplb.op import load_op


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_op_refuses_loads_that_are_not_token_counts(bad):
    op = load_op()
    w = np.ones((2, 8))
    w[1, 3] = bad
    with pytest.raises(ValueError, match="weight must be finite and non-negative"):
        op.rebalance_experts(w, 8, 2, 2, 4)
    with pytest.raises(ValueError, match="history must be finite and non-negative"):
        op.rebalance_experts(np.ones((2, 8)), 8, 2, 2, 4, history=w)


# every rule but expected_load returns NaN: no order, no maximum, no cheapest bin
NAN_RULES = """
double expected_load(double recent, double history) { return recent; }
double replica_score(double load, double count) { return std::sqrt(-1.0 - load); }
double pack_key(double weight, double index) { return std::sqrt(-1.0 - weight); }
double bin_cost(double bin_load, double bin_count, double capacity, double weight) { return std::sqrt(-1.0 - bin_load); }
"""


def test_rules_returning_nan_are_rejected_with_the_rule_and_the_input(tmp_path):
    task = TASK_CLASS(steps=300, layers=4)
    task.prepare(tmp_path / "shared")
    check = task.check(NAN_RULES, tmp_path / "nan")
    assert check.stage == "probe"
    assert "probe: replica_score(load=0, count=1) returned NaN" in check.feedback
    assert "probe: bin_cost(bin_load=0, bin_count=0, capacity=1, weight=0) returned NaN" in check.feedback
    # the documented trap: the square root of a difference of loads that can be negative
    diff = NAN_RULES.replace("return recent;", "return std::sqrt(recent - history);")
    check = task.check(diff, tmp_path / "diff")
    assert check.stage == "probe" and "probe: expected_load(recent=0, history=1) returned NaN" in check.feedback


def test_the_pipeline_still_gives_a_valid_plan_for_nan_rules(tmp_path):
    """A second wall behind the probe: the pipeline never trusts a rule's number (NaN keys have
    no order); built without the checker, NaN rules still give a valid placement."""
    task = TASK_CLASS(steps=300, layers=4)
    task.prepare(tmp_path / "shared")
    share = native_dir() / "share" / "eplb"
    (tmp_path / "rules.cpp").write_text(task.full_source(NAN_RULES))
    so = tmp_path / "rules.so"
    subprocess.run(["g++", "-std=c++17", "-O2", "-shared", "-fPIC", f"-I{share}", str(tmp_path / "rules.cpp"),
                    "-o", str(so)], check=True)
    rng = np.random.default_rng(3)
    w = rng.lognormal(0, 1.5, (4, 256))
    phy2log, log2phy, logcnt = load_op().rebalance_experts(w, 288, 8, 4, 32, rules_lib=str(so))
    assert metrics.validate(phy2log, log2phy, logcnt, w, 288, 32) == ""
