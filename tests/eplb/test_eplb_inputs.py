"""EPLB robustness: bad loads are refused with a clear error, and rules that return NaN
(hostile or careless candidates) still give a valid placement instead of a crash."""
import numpy as np
import pytest

from policyforge.tasks.eplb import TASK_CLASS
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


def test_rules_returning_nan_still_give_a_valid_plan(tmp_path):
    task = TASK_CLASS(steps=300, layers=4)
    task.prepare(tmp_path / "shared")
    check = task.check(NAN_RULES, tmp_path / "nan")
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path / "nan")
    assert ev.ok, ev.reason               # the validator accepted every plan
    assert 0 < ev.metrics["balancedness"] <= 1
