"""The offline generator on the cache task, end to end through the engine."""
import pytest

from policyforge.search.controller import Controller, RunConfig
from policyforge.search.report import comparison
from policyforge.tasks.cache.task import CORE14


def test_offline_search_beats_lru_on_a_seeded_synthetic_trace(tmp_path):
    cfg = RunConfig(task="cache", task_options={"trace": "zipf:n_req=60000,n_objs=15000", "baselines": "LRU"},
                    rounds=4, candidates_per_round=8, seed=3)
    ctl = Controller(tmp_path / "run", cfg, quiet=True)
    ctl.run()
    lru = next(b["score"] for b in ctl.store.baselines() if b["name"] == "LRU")
    seeds = max(c["score"] for c in ctl.store.round_candidates(0))
    found = max(c["score"] for c in ctl.store.candidates(from_round=1) if c["score"] is not None)
    assert found > lru and found > seeds


@pytest.mark.slow
def test_demo_budget_beats_all_14_baselines(tmp_path):
    """`make demo`'s configuration (seed 1): the winner beats all 14 PolicySmith baselines."""
    cfg = RunConfig(task="cache", rounds=10, candidates_per_round=24, workers=2, seed=1)
    ctl = Controller(tmp_path / "run", cfg, quiet=True)
    ctl.run()
    cmp = comparison(ctl.store)
    assert set(CORE14) <= set(cmp["beats"]), cmp["beats"]
