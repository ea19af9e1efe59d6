"""What a careless or unlucky user does to a run, through the real CLI: a failed start in a
directory of theirs, two writers at once, a lost write-ahead log, a kill while baselines are
stored, a cut run.log line, a full disk, a corrupt store. Each ends in one line on stderr and
no lost or changed result."""
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pfhelpers import ROOT, cli_env

TOY = ["toytask:ToyTask", "--generator", "offline", "--seed", "3", "--workers", "2", "-q"]


def pf(*args, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "policyforge", *args], capture_output=True, text=True,
                          env=env or cli_env(), cwd=cwd, timeout=timeout)


def start(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "policyforge", *args], env=env or cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "\x1b" not in stderr
    return lines[0]


def rows(db: Path) -> list[tuple]:
    """What a run decided: every candidate's round, slot, source, status and score."""
    conn = sqlite3.connect(db)
    out = conn.execute("SELECT round, slot, source_hash, status, score FROM candidates ORDER BY id").fetchall()
    conn.close()
    return out


def wait_for(pred, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_a_failed_start_deletes_only_what_it_created(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").write_text("x\n")
    r = pf("run", "cache", "-o", "trace=/nope", "--out", str(d))
    assert r.returncode == 2 and "does not exist" in one_line(r.stderr)
    assert sorted(os.listdir(d)) == ["f"] and (d / "f").read_text() == "x\n"
    # a directory the run made itself (and its parents) goes again
    r = pf("run", "cache", "-o", "trace=/nope", "--out", str(tmp_path / "new" / "run"))
    assert r.returncode == 2
    assert not (tmp_path / "new").exists()


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    run = tmp_path / "run"
    first = pf("run", *TOY, "--rounds", "1", "--candidates-per-round", "4", "--out", str(run))
    assert first.returncode == 0, first.stderr
    # two resumes of the same run at once: the first takes the lock, the second is refused
    a = start("run", "--resume", str(run), "--rounds", "3", "-q")
    wait_for(lambda: (run / "run.lock").read_text().strip() == str(a.pid), what="the first resume's lock")
    b = pf("run", "--resume", str(run), "--rounds", "3", "-q")
    assert b.returncode == 2
    assert f"in use by pid {a.pid}" in one_line(b.stderr)
    out, err = a.communicate(timeout=300)
    assert a.returncode == 0, err
    # the store is what one uninterrupted run of the same seed gives
    ref = pf("run", *TOY, "--rounds", "3", "--candidates-per-round", "4", "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    assert rows(run / "store.sqlite") == rows(tmp_path / "ref" / "store.sqlite")


def test_losing_the_wal_keeps_every_finished_round(tmp_path):
    run = tmp_path / "run"
    args = [*TOY, "-o", "delay_ms=150", "--rounds", "3", "--candidates-per-round", "4", "--out", str(run)]
    proc = start("run", *args)
    db = run / "store.sqlite"
    wait_for(lambda: db.exists() and count(db, "SELECT COUNT(*) FROM rounds WHERE round=1")
             and count(db, "SELECT COUNT(*) FROM candidates WHERE round=2 AND finished IS NOT NULL") >= 1,
             what="round 1 to finish")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    finished = {r[:2]: r for r in rows(db) if r[0] <= 1}
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    # the main file alone holds rounds 0 and 1, every candidate with its score
    conn = sqlite3.connect(db)
    assert {r[0] for r in conn.execute("SELECT round FROM rounds")} >= {0, 1}
    conn.close()
    kept = {r[:2]: r for r in rows(db) if r[0] <= 1}
    assert kept == finished and len(kept) == 2 + 4
    assert all(r[3] in ("evaluated", "failed", "check_failed", "duplicate") for r in kept.values())
    # and the run completes from there as if nothing happened
    resumed = pf("run", "--resume", str(run), "-q")
    assert resumed.returncode == 0, resumed.stderr
    ref = pf("run", *args[:-1], str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    assert rows(db) == rows(tmp_path / "ref" / "store.sqlite")


# A run whose process dies (SIGKILL) at one statement of the baselines' storing: after the
# first baseline's row or before the commit that follows it, whichever comes first.
KILL_IN_BASELINES = textwrap.dedent("""
    import os, signal, sqlite3, sys
    from pathlib import Path
    from policyforge.search import database
    from policyforge.search.controller import Controller, RunConfig

    class Dying:
        def __init__(self, conn):
            self.conn, self.inserted = conn, 0
        def _maybe_die(self, sql):
            s = sql.strip().upper()
            if "INTO BASELINES" in s:
                self.inserted += 1
                if self.inserted == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
            elif s.startswith("COMMIT") and self.inserted:
                os.kill(os.getpid(), signal.SIGKILL)
        def execute(self, sql, *a):
            self._maybe_die(sql)
            return self.conn.execute(sql, *a)
        def executemany(self, sql, *a):
            self._maybe_die(sql)
            return self.conn.executemany(sql, *a)
        def __getattr__(self, name):
            return getattr(self.conn, name)
        def __enter__(self):
            return self.conn.__enter__()
        def __exit__(self, *e):
            return self.conn.__exit__(*e)

    real = database.Store._conn
    def dying_conn(self):
        c = real(self)
        return c if isinstance(c, Dying) else Dying(c)
    database.Store._conn = dying_conn
    cfg = RunConfig(task="toytask:ToyTask", rounds=1, candidates_per_round=2, seed=3)
    Controller(Path(sys.argv[1]), cfg, quiet=True).run()
""")


def test_a_kill_while_storing_baselines_leaves_all_or_none(tmp_path):
    run = tmp_path / "run"
    p = subprocess.run([sys.executable, "-c", KILL_IN_BASELINES, str(run)], env=cli_env(), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr
    stored = count(run / "store.sqlite", "SELECT COUNT(*) FROM baselines")
    assert stored == 0, f"a partial set of {stored} baseline(s) survived the kill"
    r = pf("run", "--resume", str(run), "-q")
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(run / "store.sqlite")
    assert sorted(n for n, in conn.execute("SELECT name FROM baselines")) == ["exact", "zero"]
    conn.close()


def test_resume_rebuilds_a_cut_run_log_from_the_store(tmp_path):
    run = tmp_path / "run"
    r = pf("run", *TOY, "--rounds", "2", "--candidates-per-round", "4", "--out", str(run))
    assert r.returncode == 0, r.stderr
    log = run / "run.log"
    text = log.read_text()
    cut = text.rindex("cand ")
    log.write_text(text[: cut + 7])            # a kill in the middle of a line, lines lost after it
    r = pf("run", "--resume", str(run), "--rounds", "3", "-q")
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines(keepends=True)
    assert all(ln.endswith("\n") and ln[2] == ":" and ln[5] == ":" for ln in lines), lines
    conn = sqlite3.connect(run / "store.sqlite")
    ids = [i for i, in conn.execute("SELECT id FROM candidates WHERE finished IS NOT NULL")]
    conn.close()
    body = "".join(lines)
    for cid in ids:
        assert body.count(f"cand {cid:4d} ") == 1, cid


@pytest.fixture
def small_fs(tmp_path):
    """A 1.5 MiB tmpfs of the test's own (root mounts it), unmounted afterwards: room for
    about 50 of the toy task's candidates (28 KiB each)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_stops_in_one_line_and_resume_is_exact(tmp_path, small_fs):
    env = dict(cli_env(), POLICYFORGE_MIN_FREE_MB="0.25")
    run = small_fs / "run"
    args = [*TOY, "--rounds", "12", "--candidates-per-round", "6"]
    r = pf("run", *args, "--out", str(run), env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_line(r.stderr)
    assert "no space left" in line and f"--resume {run}" in line
    assert 2 < len(rows(run / "store.sqlite")) < 2 + 12 * 6
    # more space, and the run goes on to the end it would have reached anyway
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_fs)], check=True)
    r = pf("run", "--resume", str(run), "-q", env=env)
    assert r.returncode == 0, r.stderr
    ref = pf("run", *args, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    assert rows(run / "store.sqlite") == rows(tmp_path / "ref" / "store.sqlite")


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100], ids=["empty", "random"])
def test_a_corrupt_store_is_reported_and_never_rewritten(tmp_path, content):
    runs = tmp_path / "runs"
    good = pf("run", *TOY, "--rounds", "1", "--candidates-per-round", "2", "--out", str(runs / "good"))
    assert good.returncode == 0, good.stderr
    bad = runs / "bad"
    bad.mkdir()
    (bad / "store.sqlite").write_bytes(content)
    for args in (["run", "--resume", str(bad)], ["runs", "show", str(bad)], ["runs", "best", str(bad)],
                 ["runs", "export", str(bad)]):
        r = pf(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert str(bad) in one_line(r.stderr)
    lst = pf("runs", "list", "--root", str(runs))
    assert lst.returncode == 1 and "Traceback" not in lst.stderr
    good_line = next(ln for ln in lst.stdout.splitlines() if ln.startswith(str(runs / "good")))
    assert "toy" in good_line and "offline" in good_line
    assert "unreadable" in next(ln for ln in lst.stdout.splitlines() if ln.startswith(str(bad)))
    assert (bad / "store.sqlite").read_bytes() == content
    assert sorted(os.listdir(bad)) == ["store.sqlite"]


def test_resume_refuses_another_task_or_changed_options(tmp_path):
    run = tmp_path / "run"
    r = pf("run", *TOY, "--rounds", "0", "--out", str(run))
    assert r.returncode == 0, r.stderr
    before = rows(run / "store.sqlite")
    for args, needle in ((["run", "eplb", "--resume", str(run)], "is a run of task toytask:ToyTask, not eplb"),
                         (["run", "--resume", str(run), "-o", "delay_ms=5"], "drop --option"),
                         (["run", "--resume", str(run), "--seed", "9"], "drop --seed"),
                         (["run", "--resume", str(tmp_path / "nothing")], "holds no run to resume")):
        r = pf(*args)
        assert r.returncode == 2 and needle in one_line(r.stderr), (args, r.stderr)
    assert rows(run / "store.sqlite") == before


def test_replay_errors_leave_no_run_directory(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    r = pf("run", "toytask:ToyTask", "--generator", "replay", "--replay", str(bad), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "bad.jsonl:1" in one_line(r.stderr)
    assert not (tmp_path / "r").exists()


def test_check_and_eval_remove_their_temporary_directories(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(cli_env(), TMPDIR=str(tmp))
    good = tmp_path / "good.c"
    good.write_text("double f(double x) { return x * x + 3 * x; }\n")
    for cmd in ("check", "eval"):
        r = pf(cmd, "toytask:ToyTask", str(good), env=env)
        assert r.returncode == 0, r.stderr
        assert os.listdir(tmp) == [], cmd
    r = pf("check", "toytask:ToyTask", str(good), "--keep", env=env)
    assert r.returncode == 0 and len(os.listdir(tmp)) == 1
    assert f"kept: {tmp / os.listdir(tmp)[0]}" in r.stderr


def test_a_low_address_space_limit_still_checks_and_leaks_no_cgroup(tmp_path):
    import resource
    policy = tmp_path / "lru.c"
    policy.write_text("double priority(const struct pf_obj *obj, const struct pf_ctx *ctx) { return obj->last_access; }\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))   # `ulimit -v 4194304`
    p = subprocess.Popen([sys.executable, "-m", "policyforge", "check", "cache", str(policy)], env=cli_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert out.startswith("ok:")
    from policyforge import sandbox
    roots = [h.root for h in sandbox._hierarchies().values()]
    assert roots, "no cgroup hierarchy to check"
    assert [d for root in roots for d in root.glob(f"j{p.pid}-*")] == []


def test_cgroups_of_a_killed_run_are_removed_on_the_next_start(tmp_path):
    from policyforge import sandbox
    roots = [h.root for h in sandbox._hierarchies().values()]
    assert roots, "no cgroup hierarchy to check"
    run = start("run", *TOY, "-o", "delay_ms=3000", "--rounds", "1", "--candidates-per-round", "2",
                "--out", str(tmp_path / "run"))
    mine = lambda: [d for root in roots for d in root.glob(f"j{run.pid}-*")]   # noqa: E731
    wait_for(lambda: mine(), what="a sandbox job of the run")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    time.sleep(0.5)                         # its jobs die with it (parent-death signal)
    assert mine(), "the killed run left no cgroup: nothing to test"
    good = tmp_path / "good.c"
    good.write_text("double f(double x) { return x; }\n")
    r = pf("check", "toytask:ToyTask", str(good))
    assert r.returncode == 0, r.stderr
    assert mine() == []
