"""The cache task with the real compiler, the real libCacheSim and its sample trace."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from policyforge.native import native_dir, native_path
from policyforge.task import TaskError
from policyforge.tasks.cache import TASK_CLASS
from policyforge.tasks.cache.traces import RECORD
from pfhelpers import genome_vs_baselines



def _miss(task, algo_args):
    r = task._simulate(task.trace, algo_args)
    return [x["miss_ratio"] for x in r["results"]]


@pytest.mark.parametrize("seed,algo", [("lru", "lru"), ("lfu", "lfu"), ("fifo", "fifo")])
def test_seed_priorities_reproduce_libcachesim_exactly(cloudphysics, tmp_path, seed, algo):
    task = cloudphysics
    src = task.render(next(s for s in task.seeds() if s.name == seed).genome)
    check = task.check(src, tmp_path)
    assert check.ok, check.feedback
    ours = _miss(task, task.plugin_args(check))
    theirs = _miss(task, ["--algo", algo])
    assert ours == theirs          # exact, at 1 %, 10 % and 30 % of the footprint
    assert len(ours) == 3


def test_baselines_match_known_values(cloudphysics, tmp_path):
    base = {b.name: b for b in TASK_CLASS(trace="cloudPhysicsIO", baselines="LRU,LIRS,S3-FIFO,ARC,SIEVE,FIFO")
            .__class__.baselines(_at_10(tmp_path), tmp_path)}
    miss = {k: round(1 - b.evaluation.score, 4) for k, b in base.items()}
    # the miss ratios libCacheSim gives (cloudPhysicsIO, 10 %, unit size; bench/cache/results.md)
    assert miss["LRU"] == 0.8049 and miss["FIFO"] == 0.8054 and miss["LIRS"] == 0.7518
    assert miss["ARC"] == 0.7728 and miss["SIEVE"] == 0.7907
    assert miss["Belady"] == 0.6290 and not base["Belady"].ranked


def _at_10(tmp_path):
    t = TASK_CLASS(trace="cloudPhysicsIO", baselines="LRU,LIRS,S3-FIFO,ARC,SIEVE,FIFO")
    t.prepare(tmp_path)
    return t


def test_static_rules_name_the_line(tmp_path):
    task = TASK_CLASS(trace="zipf:n_req=20000")
    task.prepare(tmp_path / "shared")
    src = ("double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{\n"
           "    double s = 0;\n    for (int i = 0; i < 3; i++) s += obj->count;\n"
           "    return s + malloc(4) + obj[1].count;\n}\n")
    out = task.check(src, tmp_path / "a")
    assert not out.ok and out.stage == "static"
    assert "policy.c:4: loops are not allowed" in out.feedback
    assert "policy.c:5: call to 'malloc' is not allowed" in out.feedback
    assert "policy.c:5: indexing" in out.feedback
    # an include names no file the preprocessor can open (it runs alone, in the sandbox)
    inc = task.check("#include <stdio.h>\n" + src, tmp_path / "b")
    assert inc.stage == "static" and inc.feedback.startswith("policy.c:1:") and "stdio.h" in inc.feedback
    glob = task.check("int g;\n" + src.replace("for (int i = 0; i < 3; i++)", ""), tmp_path / "c")
    assert "policy.c:1: top-level declaration 'g' is not allowed" in glob.feedback
    bad = task.check(src.replace("for", "if"), tmp_path / "d")
    assert bad.feedback.startswith("policy.c:4: cannot parse this as a C function")


def test_compiler_errors_point_into_the_candidate(tmp_path):
    task = TASK_CLASS(trace="zipf:n_req=20000")
    task.prepare(tmp_path / "shared")
    unknown = task.check("double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{\n"
                         "    return obj->count + undefined_feature;\n}\n", tmp_path / "c")
    assert not unknown.ok and unknown.stage == "static"
    assert "policy.c:3: 'undefined_feature' is not declared here" in unknown.feedback
    # what only the compiler sees: an unused local (-Wall -Werror), in the candidate's lines
    out = task.check("double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{\n"
                     "    double unused = 1;\n    return obj->count;\n}\n", tmp_path / "d")
    assert not out.ok and out.stage == "compile"
    assert "policy.c:3:12: error: unused variable 'unused'" in out.feedback


def test_probe_rejects_nan_priorities(tmp_path):
    task = TASK_CLASS(trace="zipf:n_req=20000")
    task.prepare(tmp_path / "shared")
    out = task.check("double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{\n"
                     "    return sqrt(-obj->count) + ctx->now;\n}\n", tmp_path / "c")
    assert not out.ok and out.stage == "probe" and "NaN" in out.feedback


def test_a_priority_with_ghost_history_beats_all_14_baselines_on_the_demo_trace(tmp_path):
    """The search space holds winners on the demo trace (the search itself: test_search.py)."""
    from policyforge.tasks.cache.task import CORE14
    score, base = genome_vs_baselines("demo", "(mul last_access (mul last_access freq))", tmp_path)
    assert all(score > base[n] for n in CORE14), (score, base)
    assert score < base["Belady"]


def test_malformed_and_missing_traces_give_one_clear_line(tmp_path):
    bad = tmp_path / "bad.oracleGeneral.bin"
    bad.write_bytes(b"x" * (RECORD.itemsize * 3 + 5))
    with pytest.raises(TaskError, match="not a multiple of the 24-byte record"):
        TASK_CLASS(trace=str(bad)).prepare(tmp_path)
    with pytest.raises(TaskError, match="does not exist"):
        TASK_CLASS(trace=str(tmp_path / "nope.bin")).prepare(tmp_path)
    with pytest.raises(TaskError, match="cache_size fractions"):
        TASK_CLASS(cache_size="2")
    from pfhelpers import cli_env
    r = subprocess.run([sys.executable, "-m", "policyforge", "run", "cache", "-o", f"trace={bad}"],
                       capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("policyforge: error")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr
    assert "not an oracleGeneral trace" in errors[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_csv_traces_with_a_column_spec(tmp_path):
    csv = tmp_path / "t.csv"
    ids = [i % 3 if i % 4 else i % 50 for i in range(3000)]
    csv.write_text("".join(f"{i},{x},100\n" for i, x in enumerate(ids)))
    task = TASK_CLASS(trace=str(csv), csv="time=1,obj_id=2,obj_size=3,header=0,delimiter=comma,obj_id_is_num=1")
    task.prepare(tmp_path / "shared")
    assert task.footprint == len(set(ids))
    check = task.check(task.render({"priority": "last_access"}), tmp_path / "c")
    ev = task.evaluate(check, tmp_path)
    assert ev.ok and 0 < ev.score < 1


def test_exported_winner_runs_in_stock_cachesim(tmp_path):
    task = TASK_CLASS(trace="cloudPhysicsIO")
    task.prepare(tmp_path / "shared")
    check = task.check(task.render({"priority": "(add last_access (mul freq 1000.0))"}), tmp_path / "c")
    ours = task.evaluate(check, tmp_path)
    info = task.export((tmp_path / "c" / "policy.c").read_text(), check, tmp_path / "winner")
    cmd = shlex.split(info["usage"].splitlines()[0])
    assert cmd[0] == str(native_path("bin", "cachesim"))       # runs as pasted
    r = subprocess.run(cmd, capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "pluginCache" in r.stdout + r.stderr
    assert f"miss ratio {ours.metrics['miss_ratio']:.4f}" in r.stdout + r.stderr
    # the exported C file, built the way USAGE.txt says (one unit: priority() inlined), evicts
    # the same objects as the checked plugin (priority() in its own unit, linked)
    (tmp_path / "rebuilt").mkdir()
    rebuilt = tmp_path / "rebuilt" / "p.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{native_dir() / 'include'}",
                    str(tmp_path / "winner" / "policyforge_cache.c"), "-o", str(rebuilt), "-lm"], check=True)
    misses = [task._simulate(task.trace, args)["results"][0]["n_miss"]
              for args in (["--plugin", str(rebuilt)], task.plugin_args(check))]
    assert misses[0] == misses[1]


def test_check_and_export_work_from_a_relative_run_directory(tmp_path, monkeypatch):
    """`policyforge run` keeps runs under ./runs: the winner's re-check and export get relative
    paths, and the probe runs with its own working directory."""
    monkeypatch.chdir(tmp_path)
    task = TASK_CLASS(trace="zipf:n_req=20000")
    task.prepare(Path("runs/r/shared"))
    source = task.render({"priority": "last_access"})
    check = task.check(source, Path("runs/r/shared/winner-check"))
    assert check.ok, check.feedback
    info = task.export(source, check, Path("runs/r/winner"))
    assert (tmp_path / "runs/r/winner/policyforge_cache.so").exists(), info


def test_parallel_workers_share_one_build_of_the_template(tmp_path):
    """The engine's workers check candidates at once; the first checks of a run all need the
    template's machinery, which is built on demand in the run's shared directory."""
    from concurrent.futures import ThreadPoolExecutor

    task = TASK_CLASS(trace="zipf:n_req=20000")
    task.prepare(tmp_path / "shared")
    bodies = ["last_access", "count", "insert_time", "(add last_access count)", "(mul count 2.0)",
              "(sub now insert_time)", "(add count 1.0)", "(neg last_access)"]
    with ThreadPoolExecutor(8) as pool:
        checks = list(pool.map(lambda i: task.check(task.render({"priority": bodies[i]}), tmp_path / f"c{i}"),
                               range(len(bodies))))
    assert all(c.ok for c in checks), [c.feedback[:200] for c in checks if not c.ok]
    assert len(list((tmp_path / "shared" / "template").glob("pq_template-*.so"))) == 1
