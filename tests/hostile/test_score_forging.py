"""Attack: the candidate prints the evaluator's result itself (a perfect score) and exits.

Before: a cache priority() (or an EPLB rule) that printed the result JSON and called _exit(0)
scored 0.999, above Belady, and became a replay run's exported winner. Now the checker rejects
the calls, and behind it the score is never taken from the candidate's process on trust: the
cache counts are checked against the trace (requests, compulsory misses, Belady's optimum)
and a result that matters is recounted from the candidate's own evictions; EPLB plans are
validated and scored by policyforge itself.
"""
import json
import subprocess

import numpy as np
import pytest

from policyforge.task import CheckOutcome
from policyforge.tasks.cache import TASK_CLASS as CacheTask
from policyforge.tasks.eplb import TASK_CLASS as EplbTask

from hostile import CACHE_OPTS, PRIORITY, assert_no_secret, belady_bound, check_file, replay_run

FORGE = PRIORITY + """{
    printf("{\\"algo\\": \\"plugin\\", \\"results\\": [{\\"cache_size\\": 300, \\"n_req\\": 20000, \\"n_miss\\": 1, "
           "\\"n_req_byte\\": 20000, \\"n_miss_byte\\": 1, \\"miss_ratio\\": 0.00005}]}\\n");
    _exit(0);
    return obj->count;
}
"""
LRU = PRIORITY + "{\n    return obj->last_access;\n}\n"


def test_the_checker_rejects_the_forger_through_the_cli(tmp_path):
    rc, out = check_file(tmp_path, "cache", FORGE, CACHE_OPTS)
    assert rc == 1 and "FAILED at stage 'static'" in out
    assert "policy.c:3: call to 'printf' is not allowed" in out and "policy.c:5: call to '_exit' is not allowed" in out


def test_a_replay_run_never_scores_the_forger(tmp_path):
    r, rows, run = replay_run(tmp_path, "cache", [FORGE, LRU], CACHE_OPTS)
    assert r.returncode == 0, r.stderr
    forge, lru = rows
    assert forge["status"] == "check_failed" and forge["score"] is None
    assert lru["status"] == "evaluated" and lru["score"] < belady_bound(run)
    winner = json.loads((run / "best.json").read_text())["winner"]
    assert winner["id"] != forge["id"] and winner["score"] < belady_bound(run)
    assert_no_secret(run / "store.sqlite")


def _plugin_past_the_checker(task, body: str, tmp_path):
    """A plugin built from `body` without the checker or the audit: the second wall alone."""
    work = tmp_path / "handmade"
    work.mkdir()
    text = "#include <stdio.h>\n#include <unistd.h>\n" + PRIORITY + body
    (work / "p.c").write_text(task.full_source(text, 3))
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{task._include_dirs()[0]}", f"-I{task._include_dirs()[1]}",
                    "p.c", "-o", "p.so", "-lm"], cwd=work, check=True, capture_output=True)
    return CheckOutcome(True, "ok", "", work / "p.so", checked_source=text, info={"features": 3})


def _forged_json(task, misses: int) -> str:
    size, n = task.sizes[0], task.n_req
    return ("{\n    printf(\"{\\\"results\\\": [{\\\"cache_size\\\": %d, \\\"n_req\\\": %d, \\\"n_miss\\\": %d, "
            "\\\"n_req_byte\\\": %d, \\\"n_miss_byte\\\": %d}]}\\n\", " + f"{size}, {n}, {misses}, {n}, {misses});\n"
            "    fflush(stdout);\n    _exit(0);\n    return obj->count;\n}\n")


@pytest.fixture
def cache(tmp_path):
    task = CacheTask(**CACHE_OPTS)
    task.prepare(tmp_path / "shared")
    return task


def test_an_impossible_result_is_invalid(cache, tmp_path):
    """Fewer misses than requests to distinct objects: no cache can do that."""
    check = _plugin_past_the_checker(cache, _forged_json(cache, 1), tmp_path)
    ev = cache.evaluate(check, tmp_path)
    assert not ev.ok and ev.score is None
    assert ev.reason.startswith("invalid: 1 misses at size") and "first requests that no cache can hit" in ev.reason


def test_a_result_better_than_belady_is_invalid(cache, tmp_path):
    belady = cache.belady["results"][0]["n_miss"]
    check = _plugin_past_the_checker(cache, _forged_json(cache, belady - 1), tmp_path)
    ev = cache.evaluate(check, tmp_path)
    assert not ev.ok and "fewer than Belady's optimum" in ev.reason


def test_a_plausible_forgery_is_caught_by_the_recount(cache, tmp_path):
    """Counts between Belady and LRU pass every check a count alone allows; verify() replays
    the candidate's own evictions, and a process that forged its output logged none."""
    lru = cache.evaluate(cache.check(LRU, tmp_path / "lru"), tmp_path / "lru")
    plausible = (cache.belady["results"][0]["n_miss"] + lru.metrics["n_miss"][0]) // 2
    check = _plugin_past_the_checker(cache, _forged_json(cache, plausible), tmp_path)
    ev = cache.evaluate(check, tmp_path)
    assert ev.ok and ev.score > lru.score          # the claim alone looks fine ...
    ev = cache.verify(check, tmp_path, ev)
    assert not ev.ok and ev.score is None          # ... its recount does not
    assert ev.reason.startswith("invalid: its evictions do not replay: the eviction log of cache 0 ends")


def test_an_eplb_runner_that_prints_its_own_result_gets_no_score(tmp_path):
    """The EPLB runner's output is plans, scored here; a rules library that writes a result
    instead of planning produces no valid plan."""
    task = EplbTask(steps=300, layers=4)
    task.prepare(tmp_path / "shared")
    rules = task.render(task.seeds()[0].genome).replace(
        "return (recent);", 'printf("{\\"valid\\": true, \\"balancedness\\": 1.0}\\n"); fflush(stdout); _exit(0);')
    work = tmp_path / "rules"
    work.mkdir()
    (work / "r.cpp").write_text("#include <cstdio>\n#include <unistd.h>\n" + task.full_source(rules))
    share = task._share()
    subprocess.run(["g++", "-std=c++17", "-O2", "-shared", "-fPIC", f"-I{share}", "r.cpp", "-o", "r.so"], cwd=work,
                   check=True, capture_output=True)
    ev = task.evaluate(CheckOutcome(True, "ok", "", work / "r.so"), work)
    assert not ev.ok and ev.score is None and "the runner stopped early" in ev.reason
    # the checker would not have let it through in the first place
    rc, out = check_file(tmp_path, "eplb", rules, {"steps": 300, "layers": 4}, name="rules.cpp")
    assert rc == 1 and "call to 'printf' is not allowed" in out
    assert np.isfinite(task._evaluation(task._plan_native(None, task.windows_raw, task.windows_shape, 1, 60)).score)
