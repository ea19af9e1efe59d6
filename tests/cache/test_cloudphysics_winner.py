"""A finding of the offline search on cloudPhysicsIO at 10 % (bench/cache/search_cloudPhysicsIO.md):
protecting objects that return after an eviction beats all 14 PolicySmith baselines there."""
from policyforge.tasks.cache.task import CORE14

from pfhelpers import genome_vs_baselines


def test_ghost_protection_beats_all_14_baselines_on_cloudphysics(tmp_path):
    # 0 for objects not in the ghost history: they go first, in LRU order (ties: oldest update)
    score, base = genome_vs_baselines("cloudPhysicsIO", "(mul cache_size ghost_count)", tmp_path)
    assert round(1 - score, 4) == 0.7440
    best = max(CORE14, key=base.get)
    assert best == "LIRS" and score > base[best], (score, best, base[best])
    assert score < base["Belady"]
