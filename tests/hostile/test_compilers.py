"""Attack: the compiler. Before, compilers ran outside the sandbox: `#include "/dev/zero"`
(spelled with the %: digraph) grew cc1 to 4 GB, `#include "/dev/stdin"` blocked 120 s and
left an orphan, and `%:include "/etc/shadow"` put its first line into the compiler's
feedback, the store and the repair prompt.

Now the preprocessor runs on the candidate alone with -nostdinc, in a sandbox whose file
system is /usr, its own /proc and the candidate's directory; any included file is rejected;
compilers run in the sandbox too, with memory, CPU and time
limits. Every such candidate fails at once, with a message about its own text."""
import time

import pytest

from hostile import CACHE_OPTS, PRIORITY, assert_no_secret, check_file, replay_run

CACHE_BODY = "{\n    return obj->count;\n}\n"
EPLB = ("double expected_load(double recent, double history) { return recent; }\n"
        "double replica_score(double load, double count) { return pf_div(load, count); }\n"
        "double pack_key(double weight, double index) { return weight; }\n"
        "double bin_cost(double bin_load, double bin_count, double capacity, double weight) { return bin_load; }\n")
CASES = {
    "cache": (PRIORITY + CACHE_BODY, CACHE_OPTS, "policy.c"),
    "eplb": (EPLB, {"steps": 300, "layers": 4}, "rules.cpp"),
}
INCLUDES = {
    "dev_zero": '%:include "/dev/zero"\n',
    "dev_stdin": '#include "/dev/stdin"\n',
    "shadow": '%:include "/etc/shadow"\n',
    "proc": '#include "/proc/self/environ"\n',
    "system_header": "#include </usr/include/stdio.h>\n",
}


@pytest.mark.parametrize("task", sorted(CASES))
@pytest.mark.parametrize("attack", sorted(INCLUDES))
def test_includes_fail_at_once_and_bring_nothing_in(tmp_path, task, attack):
    source, opts, name = CASES[task]
    t0 = time.monotonic()
    rc, out = check_file(tmp_path, task, INCLUDES[attack] + source, opts, name)
    assert rc == 1 and "FAILED at stage 'static'" in out and f"{name}:1:" in out, out
    assert time.monotonic() - t0 < 30            # not 120 s on /dev/stdin
    for line in open("/etc/shadow").read().splitlines()[:3]:
        assert line not in out


def test_a_replay_run_stores_no_secret_from_an_include(tmp_path):
    r, rows, run = replay_run(tmp_path, "cache", [INCLUDES["shadow"] + PRIORITY + CACHE_BODY,
                                                  '#include "/etc/passwd"\n' + PRIORITY + CACHE_BODY],
                              CACHE_OPTS, repairs=1)
    assert r.returncode == 0, r.stderr
    assert all(x["status"] == "check_failed" for x in rows)
    assert_no_secret(run / "store.sqlite", run / "run.log", run / "report.html")
    assert b"root:x:0:0" not in (run / "store.sqlite").read_bytes()      # /etc/passwd's first line


def test_a_preprocessor_bomb_is_stopped_by_the_sandbox(tmp_path):
    """Macros that expand to 2^32 tokens: the preprocessor's job hits its limits, quickly."""
    bomb = "".join(f"#define A{i + 1} A{i} A{i}\n" for i in range(32)).replace("A0 A0", "x x")
    source = bomb + PRIORITY + "{\n    double x = 1;\n    return A32;\n}\n"
    t0 = time.monotonic()
    rc, out = check_file(tmp_path, "cache", source, CACHE_OPTS)
    assert rc == 1 and "policy.c" in out
    assert time.monotonic() - t0 < 60
