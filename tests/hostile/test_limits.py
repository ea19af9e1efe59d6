"""Attack: exhaust the machine. A candidate that takes all memory is reported as out of memory
(the job's memory cgroup kills it; a failed malloc used to surface as SIGSEGV), a fork bomb
meets the job's process limit, a busy loop its time limit, a disk filler its file size limit;
the run goes on and records why."""
from hostile import replay_run

TOY = "toytask:ToyTask"
MEMORY = """
#include <string.h>
double f(double x) { for (;;) { char *p = malloc(1 << 20); if (p) memset(p, 1, 1 << 20); } return x; }
"""
FORKS = "double f(double x) { for (int i = 0; i < 100000; i++) fork(); sleep(30); return x; }\n"
LOOP = "double f(double x) { volatile double y = x; for (;;) y += 1; return y; }\n"
DISK = """
double f(double x) {
    FILE *out = fopen("/tmp/fill", "w");
    static char block[1 << 20];
    for (int i = 0; i < 1024; i++) if (fwrite(block, 1, sizeof block, out) != sizeof block) abort();
    return x;
}
"""
GOOD = "double f(double x) { return x * x + 3 * x + 1; }\n"


def test_each_limit_is_named_and_the_run_goes_on(tmp_path):
    r, rows, run = replay_run(tmp_path, TOY, [MEMORY, FORKS, LOOP, DISK, GOOD], {"timeout_s": 4})
    assert r.returncode == 0, r.stderr
    memory, forks, loop, disk, good = rows
    assert memory["status"] == "failed" and memory["reason"].startswith("out of memory (limit 256 MB)"), memory
    assert forks["status"] == "failed" and "(hit the limit of 16 processes)" in forks["reason"], forks
    assert loop["status"] == "failed" and ("timeout after 4 s" in loop["reason"] or "CPU limit" in loop["reason"])
    assert disk["status"] == "failed" and disk["reason"], disk
    assert good["status"] == "evaluated" and good["score"] == 0.0
