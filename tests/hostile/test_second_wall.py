"""Behind the checker: if a candidate ever got past the parser, the audit of its compiled
object and the lockdown of the process that runs it still hold. These tests build objects by
hand, without the checker, to hit each wall alone."""
import subprocess

import pytest

from policyforge.checking import audit_object
from policyforge.task import CheckOutcome
from policyforge.tasks.cache import TASK_CLASS
from policyforge.tasks.cache.task import LIBM

from hostile import CACHE_OPTS, PRIORITY, assert_nothing_left

HEADER = '#include "pf_cache_policy.h"\n'


def _object(tmp_path, text: str):
    task = TASK_CLASS(**CACHE_OPTS)
    (tmp_path / "unit.c").write_text(HEADER + text)
    subprocess.run(["gcc", "-O2", "-fPIC", *task._includes(), "-c", "unit.c", "-o", "unit.o"], cwd=tmp_path,
                   check=True, capture_output=True)
    return audit_object(tmp_path / "unit.o", LIBM, {"priority"})


@pytest.mark.parametrize("text, problem", [
    ("#include <unistd.h>\n__attribute__((constructor)) static void boot(void) { write(1, \"x\", 1); }\n" + PRIORITY
     + "{ return obj->count; }\n",
     "has .init_array: code that runs when it is loaded"),
    (PRIORITY + "{ long r; __asm__ volatile(\"syscall\" : \"=a\"(r) : \"a\"(39L)); return r; }\n",
     "the instruction 'syscall'"),
    (PRIORITY + "{ unsigned lo, hi; __asm__ volatile(\"rdtsc\" : \"=a\"(lo), \"=d\"(hi)); return lo; }\n",
     "the instruction 'rdtsc'"),
    (PRIORITY + "{ static double calls; calls += 1; return calls; }\n", "writable data (.bss)"),
    ("#include <unistd.h>\n" + PRIORITY + "{ return getpid(); }\n", "calls 'getpid', which is not allowed"),
    ("double helper(double x) { return x; }\n" + PRIORITY + "{ return helper(obj->count); }\n",
     "defines 'helper'; only priority may be defined"),
    (PRIORITY + "{ static __thread double t; t += 1; return t; }\n", "thread-local storage"),
])
def test_the_audit_names_what_a_pure_function_never_has(tmp_path, text, problem):
    problems = _object(tmp_path, text)
    assert any(problem in p for p in problems), problems


def test_the_audit_passes_a_plain_priority(tmp_path):
    assert _object(tmp_path, PRIORITY + "{ return obj->last_access + log1p(obj->count) + pow(2, 3); }\n") == []


@pytest.mark.parametrize("call", ["fork()", "execl(\"/bin/sh\", \"sh\", (char *)0)",
                                  "socket(2, 1, 0)", "kill(1, 9)"])
def test_the_simulator_kills_a_candidate_that_asks_the_kernel_for_more(tmp_path, call):
    """Once the plugin is loaded, pf-cachesim allows computation and nothing else."""
    task = TASK_CLASS(**CACHE_OPTS)
    task.prepare(tmp_path / "shared")
    work = tmp_path / "plugin"
    work.mkdir()
    body = ("#include <unistd.h>\n#include <signal.h>\n#include <sys/socket.h>\n" + PRIORITY +
            "{\n    static int once;\n    if (!once++) " + call + ";\n    return obj->last_access;\n}\n")
    (work / "p.c").write_text(task.full_source(body, 3))
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", *task._includes(), "p.c", "-o", "p.so", "-lm"], cwd=work,
                   check=True, capture_output=True)
    ev = task.evaluate(CheckOutcome(True, "ok", "", work / "p.so"), work)
    assert not ev.ok and ev.reason.startswith("killed by SIGSYS: a forbidden system call (seccomp)"), ev.reason
    assert_nothing_left()
