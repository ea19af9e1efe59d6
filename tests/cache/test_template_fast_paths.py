"""The template's fast paths change speed, never which object is evicted.

- PF_FEATURES: ghost history, percentiles, decayed frequency and the sketch are compiled in only
  when priority() reads them;
  compiling them in anyway gives the same misses.
- lazy increase-key with a priority that goes down on hits (MRU, an oscillating one): the
  heap keeps garbage nodes and compacts them; the result must equal the one with ties
  renumbered every few thousand updates (PF_TIE_LIMIT), which compacts and renumbers often.
"""
import json
import subprocess

import pytest

from pfhelpers import cache_single_file

P = "double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{{\n    return {};\n}}\n"


def feature_flags(task, source, tmp_path):
    """PF_FEATURES the checker derives from the fields `source` reads"""
    check = task.check(source, tmp_path / f"flags{abs(hash(source))}")
    assert check.ok, check.feedback
    return check.info["features"]


def test_feature_flags_follow_the_fields_read(cloudphysics, tmp_path):
    assert feature_flags(cloudphysics, P.format("obj->last_access"), tmp_path) == 0
    assert feature_flags(cloudphysics, P.format("obj->count + obj->ghost_count"), tmp_path) == 1
    assert feature_flags(cloudphysics, P.format("ctx->ghost_hits * obj->count"), tmp_path) == 1
    assert feature_flags(cloudphysics, P.format("obj->count - ctx->count_p90"), tmp_path) == 2
    assert feature_flags(cloudphysics, P.format("obj->ghost_age + ctx->age_p50"), tmp_path) == 3
    assert feature_flags(cloudphysics, P.format("obj->last_access + obj->sketch"), tmp_path) == 8
    assert feature_flags(cloudphysics, P.format("obj->dfreq"), tmp_path) == 5
    assert feature_flags(cloudphysics, P.format("obj->total"), tmp_path) == 1


def _build(task, source, tmp_path, name, defines=()):
    """the whole template with `source` (checked), built as one unit with `defines`"""
    return cache_single_file(task, source, tmp_path / name, defines)


def _misses(task, source, tmp_path, name, defines=()):
    r = task._simulate(task.trace, ["--plugin", str(_build(task, source, tmp_path, name, defines))])
    return [x["n_miss"] for x in r["results"]]


@pytest.mark.parametrize("body", ["obj->last_access", "obj->count", "-obj->last_access",
                                  "pf_div(obj->last_access, obj->count) + floor(ctx->now / 1000.0)"])
def test_left_out_features_change_nothing(cloudphysics, tmp_path, body):
    src = P.format(body)
    assert feature_flags(cloudphysics, src, tmp_path) == 0
    lean = _misses(cloudphysics, src, tmp_path, "lean")
    full = _misses(cloudphysics, src.replace("return", "return 0.0 * obj->ghost_count * ctx->count_p50 * obj->sketch "
                                                       "* obj->dfreq +"),
                   tmp_path, "full")
    assert lean == full


@pytest.mark.parametrize("body", ["-obj->last_access", "obj->count",
                                  "obj->count * (floor(ctx->now / 7.0) - 2.0 * floor(ctx->now / 14.0) - 0.5)"
                                  " + obj->last_access * 0.001",
                                  "obj->count - pf_div(obj->ghost_gap, obj->ghost_count + 1.0)"])
def test_tie_renumbering_and_garbage_keep_the_eviction_order(cloudphysics, tmp_path, body):
    src = P.format(body)
    assert _misses(cloudphysics, src, tmp_path, "plain") == \
        _misses(cloudphysics, src, tmp_path, "renumbered", ["PF_TIE_LIMIT=40000u"])


@pytest.mark.parametrize("body", ["obj->last_access", "obj->count", "-obj->last_access",
                                  "obj->last_access + 2000.0 * pf_log(obj->count) - ctx->age_p50 * (obj->count < 2)",
                                  "obj->count - pf_div(obj->ghost_gap, obj->ghost_count + 1.0)"])
def test_the_queue_layout_changes_speed_not_evictions(cloudphysics, tmp_path, body):
    """Nodes go to sorted runs or to the heap (pf_push); with 1, 2 (the default) or 4 runs
    the layout differs, the eviction order must not."""
    src = P.format(body)
    default = _misses(cloudphysics, src, tmp_path, "two")
    assert _misses(cloudphysics, src, tmp_path, "one", ["PF_RUNS=1"]) == default
    assert _misses(cloudphysics, src, tmp_path, "four", ["PF_RUNS=4"]) == default


def _queue_stats(task, source, tmp_path, name, defines=()):
    """misses and where the queue's work went, from a -DPF_QUEUE_STATS build (it prints to stderr)"""
    so = _build(task, source, tmp_path, name, ["PF_QUEUE_STATS", *defines])
    r = subprocess.run(task._simulate_command(task.trace, ["--plugin", str(so)]),
                       capture_output=True, text=True, check=True)
    stats = [json.loads(line.split(" ", 1)[1]) for line in r.stderr.splitlines() if line.startswith("pf_queue_stats ")]
    assert len(stats) == len(task.sizes), r.stderr
    return [x["n_miss"] for x in json.loads(r.stdout)["results"]], stats[0]


# a stream now + c whose c steps up a little at most statistics refreshes (age_p50 moves)
# and by a lot when count_p90 moves; and bench/cache's feature-heavy priority
@pytest.mark.parametrize("body", ["obj->last_access - pf_div(obj->size, ctx->age_p50 + 1.0)",
                                  "obj->last_access + 1000.0 * pf_div(pf_log(obj->count), ctx->count_p90 + 1.0)",
                                  "obj->last_access + 1000.0 * pf_log(obj->count + obj->ghost_count)"
                                  " * pf_div(obj->count, ctx->count_p90 + 1.0) - pf_div(ctx->now - obj->last_access"
                                  " + 1.0, ctx->age_p50 + 1.0)"])
def test_insertions_follow_a_stream_that_steps_ahead(cloudphysics, tmp_path, body):
    """Run 0 takes insertions in key order (pf_push). When priority()'s offset steps up at a
    statistics refresh, the run follows the stream after PF_STEP_AFTER keys instead of sending
    every later insertion to the heap; which objects are evicted stays the same."""
    src = P.format(body)
    misses, follow = _queue_stats(cloudphysics, src, tmp_path, "follow")
    misses_strict, strict = _queue_stats(cloudphysics, src, tmp_path, "strict", ["PF_STEP_AFTER=1000000000"])
    assert misses == misses_strict
    assert follow["insertions_to_heap"] < 0.1 * follow["evictions"], follow
    assert strict["insertions_to_heap"] > 2 * follow["insertions_to_heap"], (strict, follow)
