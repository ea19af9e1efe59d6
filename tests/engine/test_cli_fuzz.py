"""The whole command line under a fuzz of bad values (hypothesis): every command line that
holds a mistake exits 2 with one line on stderr, never a traceback or an internal error,
and creates or changes no file anywhere (not even a run directory)."""
import atexit
import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyforge import cli

TASKS = ["cache", "cc", "eplb", "toytask:ToyTask"]
NUMERIC = {"--rounds": dict(min=0), "--candidates-per-round": dict(min=1), "--workers": dict(min=1, max=256),
           "--islands": dict(min=1), "--repairs": dict(min=0), "--budget-usd": dict(above=0)}
TASK_NUMERIC = {"cache": ["timeout_s", "screen"], "cc": ["rate_mbps", "duration_s", "flows", "loss", "queue_pkts"],
                "eplb": ["gpus", "nodes", "steps", "window", "timeout_s", "runtime_weight"],
                "toytask:ToyTask": ["delay_ms"]}

junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
bad_number = st.one_of(st.sampled_from(["-1", "-3", "0", "nan", "inf", "-inf", "1e999", "1.5.2", "", "x", "0x10",
                                        "--", "-0.0", "99999999999999999999999"]), junk)
good_number = st.integers(min_value=1, max_value=5).map(str)


def _is_bad(flag: str, value: str) -> bool:
    try:
        kind = float if flag == "--budget-usd" else int
        cli._arg(kind, **NUMERIC[flag])(value)
        return False
    except Exception:
        return True


@st.composite
def mistakes(draw):
    """A `run` command line with at least one mistake in it, the rest drawn at random."""
    task = draw(st.sampled_from(TASKS))
    argv = ["run", task, "--out", "out/run"]
    for flag in draw(st.lists(st.sampled_from(sorted(NUMERIC)), max_size=3, unique=True)):
        argv += [flag, draw(good_number)]
    kind = draw(st.sampled_from(["number", "unknown-flag", "unknown-task", "option-key", "option-value",
                                 "option-form", "generator", "resume", "replay"]))
    if kind == "number":
        flag = draw(st.sampled_from(sorted(NUMERIC)))
        value = draw(bad_number.filter(lambda v: _is_bad(flag, v)))
        argv += [flag, value] if not value.startswith("-") else [f"{flag}={value}"]
    elif kind == "unknown-flag":
        argv.append("--" + draw(st.text(alphabet="abcdefghij", min_size=3, max_size=8)))
    elif kind == "unknown-task":
        argv[1] = "no-such-task-" + draw(st.text(alphabet="abc", max_size=4))
    elif kind == "option-key":
        argv += ["-o", "no_such_option_" + draw(st.text(alphabet="xyz", max_size=3)) + "=1"]
    elif kind == "option-value":
        key = draw(st.sampled_from(TASK_NUMERIC[task]))
        argv += ["-o", f"{key}={draw(st.sampled_from(['-1', '-5', 'nan', 'inf', 'x', '', '1e999']))}"]
    elif kind == "option-form":
        argv += ["-o", draw(st.text(alphabet="abc ", min_size=1, max_size=6))]   # no '='
    elif kind == "generator":
        argv += ["--generator", draw(st.sampled_from(["replay", "gpt", ""]))]       # replay without --replay
    elif kind == "resume":
        argv = ["run", "--resume", "no/such/run", *draw(st.sampled_from([[], ["--seed", "1"], ["-o", "x=1"]]))]
    elif kind == "replay":
        argv += ["--generator", "replay", "--replay", "no/such/file.jsonl"]
    return argv


@st.composite
def other_mistakes(draw):
    """The other commands, each with a mistake."""
    cmd = draw(st.sampled_from(["check", "eval", "runs", "none"]))
    if cmd in ("check", "eval"):
        task = draw(st.sampled_from(TASKS + ["no-such-task"]))
        return [cmd, task, draw(st.sampled_from(["missing.c", "dir", ""])), *draw(st.sampled_from(
            [[], ["-o", "no_such=1"], ["--keep"], ["--traces", "missing"] if cmd == "eval" else []]))]
    if cmd == "runs":
        return ["runs", draw(st.sampled_from(["show", "best", "export", "delete", ""])),
                *draw(st.sampled_from([[], ["no/such/run"], ["dir"]]))]
    return [draw(st.sampled_from(["", "frobnicate", "--rounds", "-x"]))]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _main(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
    return code, err.getvalue()


WORK = Path(tempfile.mkdtemp(prefix="pf-fuzz-"))
(WORK / "dir").mkdir()
# the commands' temporary directories go here (tempfile.tempdir), not to the shared /tmp where
# other work on the machine comes and goes
TMP = Path(tempfile.mkdtemp(prefix="pf-fuzz-tmp-"))
for _d in (WORK, TMP):            # the test's own directories go when the test process ends
    atexit.register(shutil.rmtree, _d, True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mistakes(), other_mistakes()))
def test_every_mistake_gets_exit_2_and_one_line(argv):
    os.environ.pop("OPENAI_API_KEY", None)
    cwd = os.getcwd()
    before, tmp_before = _snapshot(WORK), set(os.listdir(TMP))
    os.chdir(WORK)
    saved, tempfile.tempdir = tempfile.tempdir, str(TMP)
    try:
        code, err = _main(argv)
    finally:
        os.chdir(cwd)
        tempfile.tempdir = saved
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and lines[0].startswith("policyforge"), (argv, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    assert _snapshot(WORK) == before, argv                 # nothing created or changed
    assert set(os.listdir(TMP)) - tmp_before == set(), argv   # no temporary directory left behind
