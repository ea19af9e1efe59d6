"""CSV traces end to end: a compressed CSV is decompressed for libCacheSim's CSV reader, and the
exported cachesim command line carries the column spec in cachesim's own words."""
import shlex
import subprocess

import zstandard

from policyforge.native import native_path
from policyforge.tasks.cache import TASK_CLASS


def _csv(path, n=4000):
    ids = [(i * 7919) % 97 if i % 3 else i % 1500 for i in range(n)]
    path.write_text("# time, object, size\n" + "".join(f"{i}, {x}, 1\n" for i, x in enumerate(ids)))
    return ids


def test_exported_csv_policy_runs_in_stock_cachesim_with_the_same_miss_ratio(tmp_path):
    ids = _csv(tmp_path / "t.csv")
    packed = tmp_path / "t.csv.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress((tmp_path / "t.csv").read_bytes()))
    task = TASK_CLASS(trace=str(packed), csv="time=1,obj_id=2,obj_size=3,header=1,delimiter=comma,obj_id_is_num=1")
    task.prepare(tmp_path / "shared")
    assert task.footprint == len(set(ids)) and task.n_req == len(ids)
    check = task.check(task.render({"priority": "(add last_access (mul 1000.0 freq))"}), tmp_path / "c")
    assert check.ok, check.feedback
    ours = task.evaluate(check, tmp_path)
    assert ours.ok, ours.reason
    info = task.export((tmp_path / "c" / "policy.c").read_text(), check, tmp_path / "winner")
    cmd = shlex.split(info["usage"].splitlines()[0])
    assert cmd[0] == str(native_path("bin", "cachesim")) and "obj-id-col=2" in info["usage"]   # runs as pasted
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"miss ratio {ours.metrics['miss_ratio']:.4f}" in r.stdout + r.stderr

