"""A finding of the offline search on cloudPhysicsIO at 10 % (bench/cache/search_cloudPhysicsIO.md):
protecting objects that return after an eviction beats all 14 PolicySmith baselines there."""
from policyforge.tasks.cache import TASK_CLASS
from policyforge.tasks.cache.task import CORE14


def test_ghost_protection_beats_all_14_baselines_on_cloudphysics(tmp_path):
    task = TASK_CLASS(trace="cloudPhysicsIO")
    task.prepare(tmp_path)
    # 0 for objects not in the ghost history: they go first, in LRU order (ties: oldest update)
    check = task.check(task.render({"priority": "(mul cache_size ghost_count)"}), tmp_path / "c")
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path)
    base = {b.name: b.evaluation.score for b in task.baselines(tmp_path)}
    assert round(1 - ev.score, 4) == 0.7440
    best = max(CORE14, key=base.get)
    assert best == "LIRS" and ev.score > base[best], (ev.score, best, base[best])
    assert ev.score < base["Belady"]
