"""Workload suites without a toolchain: how -o and suite files become workloads, and how
per-workload scores become the one score a search selects on."""
import json

import pytest

from policyforge.search.suite import (Suite, SuiteScorer, aggregate, load_suite, margin,
                                      per_workload_table, suite_from_options)
from policyforge.task import Baseline, Evaluation, TaskError


def test_single_options_make_no_suite():
    base, suite = suite_from_options([("trace", "a"), ("cache_size", "0.1")])
    assert base == {"trace": "a", "cache_size": "0.1"} and suite is None


def test_repeated_options_are_the_cross_product_of_train_workloads():
    base, suite = suite_from_options([("trace", "a"), ("cache_size", "0.1"), ("trace", "b"),
                                      ("cache_size", "0.01"), ("timeout_s", "9"), ("heldout.trace", "c")])
    assert base == {"timeout_s": "9"}
    assert [w.options for w in suite.train] == [{"trace": "a", "cache_size": "0.1"}, {"trace": "a", "cache_size": "0.01"},
                                                {"trace": "b", "cache_size": "0.1"}, {"trace": "b", "cache_size": "0.01"}]
    assert [(w.name, w.options) for w in suite.heldout] == [("trace=c", {"trace": "c"})]
    assert suite.aggregate == "mean"


def test_heldout_alone_keeps_the_run_options_as_the_one_train_workload():
    base, suite = suite_from_options([("trace", "a"), ("heldout.trace", "b"), ("suite.aggregate", "worst")])
    assert base == {"trace": "a"} and [w.options for w in suite.train] == [{}] and suite.aggregate == "worst"


@pytest.mark.parametrize("pairs, error", [
    ([("trace", "a"), ("trace", "b"), ("suite.aggregate", "median")], "unknown suite aggregate"),
    ([("suite.finalists", "x"), ("heldout.trace", "b")], "suite.finalists"),
    ([("suite.colour", "red")], "unknown suite setting"),
])
def test_bad_suite_options_are_one_line_errors(pairs, error):
    with pytest.raises(TaskError, match=error):
        suite_from_options(pairs)


def test_suite_file_in_toml_and_json(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x")
    (tmp_path / "s.toml").write_text('aggregate = "rank"\nfinalists = 3\n[options]\ntimeout-s = 5\n'
                                     '[[train]]\ntrace = "a.bin"\ncache_size = 0.1\n'
                                     '[[heldout]]\nname = "web"\ntrace = "zipf"\n')
    base, suite = load_suite(tmp_path / "s.toml")
    assert base == {"timeout_s": 5} and suite.aggregate == "rank" and suite.finalists == 3
    assert suite.train[0].options == {"trace": str(tmp_path / "a.bin"), "cache_size": 0.1}   # relative to the file
    assert (suite.heldout[0].name, suite.heldout[0].options) == ("web", {"trace": "zipf"})
    (tmp_path / "s.json").write_text(json.dumps({"train": [{"trace": "zipf"}], "heldout": [{"trace": "scan-loop"}]}))
    _, suite = load_suite(tmp_path / "s.json")
    assert Suite.from_json(suite.to_json()) == suite


@pytest.mark.parametrize("text, error", [
    ("[[heldout]]\ntrace = 'a'\n", "no train workload"),
    ("colour = 1\n[[train]]\ntrace='a'\n", "unknown key 'colour'"),
    ("[[train]]\nname='x'\n[[train]]\nname='x'\n", "named 'x'"),
    ("[[train\n", "not valid TOML"),
    ("train = 3\n", "must be a list"),
])
def test_bad_suite_files_are_one_line_errors(tmp_path, text, error):
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(TaskError, match=error):
        load_suite(tmp_path / "s.toml")
    with pytest.raises(TaskError, match="cannot read suite"):
        load_suite(tmp_path / "missing.toml")


def test_margin_is_zero_at_the_best_baseline_and_minus_one_at_the_worst():
    assert margin(0.5, [0.5, 0.3, 0.4]) == 0
    assert margin(0.3, [0.5, 0.3, 0.4]) == pytest.approx(-1)
    assert margin(0.6, [0.5, 0.3]) == pytest.approx(0.5)
    assert margin(-2.0, [-4.0, -4.0]) == pytest.approx(0.5)          # tie: in units of |best|
    assert margin(1.0, [0.0, 0.0]) == 1.0                               # tie at zero: raw difference


def test_aggregates_are_scale_free_across_workloads():
    ranked = {"small": [0.10, 0.20], "big": [100.0, 200.0]}
    # +10 % of the spread on one workload and -10 % on the other cancel, whatever the raw units
    assert aggregate({"small": 0.21, "big": 190.0}, ranked, "mean") == pytest.approx(0.0)
    assert aggregate({"small": 0.21, "big": 190.0}, ranked, "worst") == pytest.approx(-0.1)
    assert aggregate({"small": 0.21, "big": 190.0}, ranked, "rank") == pytest.approx(0.75)


def _b(name, score, ranked=True, ok=True):
    return Baseline(name, Evaluation(ok, score if ok else None), ranked)


def test_baselines_and_candidates_are_scored_the_same_way():
    _, suite = suite_from_options([("trace", "a"), ("trace", "b")])
    s = SuiteScorer(suite)
    per = {"trace=a": [_b("LRU", 0.4), _b("FIFO", 0.3), _b("Belady", 0.9, ranked=False)],
           "trace=b": [_b("LRU", 0.5), _b("FIFO", 0.7)]}
    s.set_baselines(per)
    rows = {r[0]: r for r in s.baseline_rows(per)}
    assert rows["LRU"][1] == pytest.approx((0 + -1) / 2) and rows["FIFO"][1] == pytest.approx((-1 + 0) / 2)
    assert rows["Belady"][2] is False and "not run on" in rows["Belady"][5]    # a bound on one workload only
    ev = s.combine({"trace=a": Evaluation(True, 0.45), "trace=b": Evaluation(True, 0.7)})
    assert ev.ok and ev.score == pytest.approx(0.25) and ev.metrics["margins"]["trace=a"] == pytest.approx(0.5)
    bad = s.combine({"trace=a": Evaluation(True, 0.45), "trace=b": Evaluation(False, None, reason="timeout")})
    assert not bad.ok and bad.reason == "trace=b: timeout"


def test_per_workload_table_counts_wins_against_ranked_baselines_only():
    rows = per_workload_table({"winner": {"w": 0.5}}, {"w": {"LRU": (0.4, True), "Belady": (0.9, False),
                                                           "FIFO": (None, True)}})
    assert rows[0]["best_baseline"] == "LRU"
    assert rows[0]["candidates"]["winner"] == {"score": 0.5, "beats_all": True, "beaten": 1, "ranked": 1}
