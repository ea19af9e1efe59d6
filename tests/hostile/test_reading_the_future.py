"""Attack: read the trace's future. oracleGeneral records carry each request's next access
time; a candidate that opened the trace file used to score exactly Belady.

Now the checker allows no call that could open anything, the simulation that runs a
candidate reads a copy of the trace whose next-access times are all -1 (the original is not
even in its file system), and the process can open nothing once the candidate is loaded."""
import subprocess

import numpy as np

from policyforge.task import CheckOutcome
from policyforge.tasks.cache import TASK_CLASS
from policyforge.tasks.cache.traces import RECORD

from hostile import CACHE_OPTS, PRIORITY, assert_nothing_left, belady_bound, check_file, replay_run

# reads the trace's records itself and evicts the object used furthest in the future
ORACLE = PRIORITY + """{
    FILE *f = fopen("/proc/self/cmdline", "r");
    long next = 0;
    if (f) fread(&next, sizeof next, 1, f);
    return -(double)next;
}
"""


def test_the_checker_rejects_a_candidate_that_opens_files(tmp_path):
    rc, out = check_file(tmp_path, "cache", ORACLE, CACHE_OPTS)
    assert rc == 1 and "policy.c:3: 'FILE' is not declared here" in out
    assert "policy.c:3: call to 'fopen' is not allowed" in out and "policy.c:5: call to 'fread' is not allowed" in out


def test_candidates_run_on_a_copy_without_next_access_times(tmp_path):
    task = TASK_CLASS(**CACHE_OPTS)
    task.prepare(tmp_path)
    original = np.fromfile(task.oracle_trace.path, dtype=RECORD)
    copy = np.fromfile(task.trace.path, dtype=RECORD)
    assert (original["next"] >= 0).any()                     # the original has the future in it
    assert (copy["next"] == -1).all()                        # the copy has none of it
    assert (copy[["ts", "id", "size"]] == original[["ts", "id", "size"]]).all()


def test_a_plugin_past_the_checker_cannot_open_the_original_trace(tmp_path):
    """The second wall: priority() tries to open the original trace (its path is no secret)
    and would evict by its next-access times; the file is not in its file system and open()
    is refused after start-up, so it can only behave like the LRU it falls back to."""
    task = TASK_CLASS(**CACHE_OPTS)
    task.prepare(tmp_path / "shared")
    path = str(task.oracle_trace.path)
    body = ("#include <fcntl.h>\n#include <unistd.h>\n" + PRIORITY +
            "{\n    int fd = open(\"" + path + "\", O_RDONLY);\n    if (fd >= 0) { close(fd); return 1e9; }\n"
            "    return obj->last_access;\n}\n")
    work = tmp_path / "plugin"
    work.mkdir()
    (work / "p.c").write_text(task.full_source(body, 3))
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", *task._includes(), "p.c", "-o", "p.so", "-lm"], cwd=work,
                   check=True, capture_output=True)
    ev = task.evaluate(CheckOutcome(True, "ok", "", work / "p.so"), work)
    lru = task._evaluation(task._simulate(task.trace, ["--algo", "lru"]))
    assert ev.ok and ev.metrics["n_miss"] == lru.metrics["n_miss"]
    assert_nothing_left()


def test_no_candidate_of_a_replay_run_reaches_belady(tmp_path):
    lfu_ghost = PRIORITY + "{\n    return obj->count + obj->ghost_count + 1e-6 * obj->last_access;\n}\n"
    r, rows, run = replay_run(tmp_path, "cache", [ORACLE, lfu_ghost], CACHE_OPTS)
    assert r.returncode == 0, r.stderr
    assert rows[0]["status"] == "check_failed"
    assert rows[1]["status"] == "evaluated" and rows[1]["score"] < belady_bound(run)
