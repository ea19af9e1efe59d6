"""Transfer: one policy over a directory of traces, as `policyforge eval cache POLICY --traces DIR`."""
import shutil

from policyforge.tasks.cache import TASK_CLASS
from policyforge.tasks.cache import traces


def test_transfer_counts_wins_and_gap_to_belady_and_leaves_the_directory_alone(tmp_path):
    src = tmp_path / "made"
    tdir = tmp_path / "traces"
    tdir.mkdir()
    shutil.copy(traces.synthesize("demo", src), tdir / "demo.oracleGeneral.bin")
    shutil.copy(traces.synthesize("zipf:n_req=40000,n_objs=8000", src), tdir / "zipf.oracleGeneral.bin")
    before = sorted(p.name for p in tdir.iterdir())
    task = TASK_CLASS()
    # the ghost-aware priority that beats all 14 on the demo trace (test_cache_task.py)
    policy = task.render({"priority": "(mul last_access (mul last_access freq))"})
    out = task.transfer(policy, tdir, tmp_path / "work")
    rows = {r["trace"]: r for r in out["traces"]}
    assert out["n"] == 2 and set(rows) == {"demo.oracleGeneral.bin", "zipf.oracleGeneral.bin"}
    assert rows["demo.oracleGeneral.bin"]["beats_all"]
    assert out["wins"] == sum(r["beats_all"] for r in rows.values())
    assert all(r["gap_to_belady"] > 0 for r in rows.values())
    assert f"on {out['wins']} of 2 traces" in out["text"]
    assert sorted(p.name for p in tdir.iterdir()) == before
