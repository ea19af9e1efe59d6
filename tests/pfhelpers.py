"""Shared by the test folders (tests/ is on pytest's pythonpath)."""
import os
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def interruptible() -> None:
    """A child's preexec_fn: Ctrl-C's default disposition. A shell that starts the tests in the
    background (`make test &`) ignores SIGINT, the child inherits that, and Python then installs
    no KeyboardInterrupt handler: a Ctrl-C test would measure the launcher, not the tool."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_env() -> dict:
    """Environment for running the policyforge CLI as a child process from a checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "py"), str(ROOT / "tests" / "engine"),
                                         env.get("PYTHONPATH", "")])
    env.pop("OPENAI_API_KEY", None)
    return env


def genome_vs_baselines(trace: str, priority: str, tmp_path) -> tuple[float, dict[str, float]]:
    """Cache task: the hit ratio of the offline generator's expression `priority` on `trace`,
    and every baseline's hit ratio (same libCacheSim build, same trace)."""
    from policyforge.tasks.cache import TASK_CLASS
    task = TASK_CLASS(trace=trace)
    task.prepare(tmp_path)
    check = task.check(task.render({"priority": priority}), tmp_path / "c")
    assert check.ok, check.feedback
    ev = task.evaluate(check, tmp_path)
    assert ev.ok, ev.reason
    return ev.score, {b.name: b.evaluation.score for b in task.baselines(tmp_path)}


def cache_single_file(task, source, work: Path, defines=()) -> Path:
    """Cache task: the whole template with `source` (checked) as the export's one C file, built in
    the new directory `work` as one unit with `defines` (-D); the plugin's path."""
    from policyforge.native import native_dir
    work.mkdir()
    check = task.check(source, work / "check")
    assert check.ok, check.feedback
    (work / "p.c").write_text(task.full_source(check.checked_source, check.info["features"]))
    cmd = ["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{native_dir() / 'include'}",
           *[f"-D{d}" for d in defines], "p.c", "-o", "p.so", "-lm"]
    subprocess.run(cmd, cwd=work, check=True, capture_output=True)
    return work / "p.so"
