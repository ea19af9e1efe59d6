"""A run killed with SIGKILL mid-round resumes, loses nothing and repeats nothing, and ends
with the same store as an uninterrupted run of the same seed."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

from pfhelpers import cli_env

ARGS = ["toytask:ToyTask", "-o", "delay_ms=120", "--rounds", "4", "--candidates-per-round", "6",
        "--workers", "2", "--seed", "5", "--generator", "offline", "-q"]


def _pf(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "policyforge", "run", *args], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _rows(db):
    conn = sqlite3.connect(db)
    cands = conn.execute("SELECT id, round, slot, island, parents, source, genome, status, score, operation "
                         "FROM candidates ORDER BY id").fetchall()
    atts = conn.execute("SELECT candidate, attempt, source, ok, stage FROM attempts ORDER BY candidate, attempt").fetchall()
    fin = dict(conn.execute("SELECT id, finished FROM candidates WHERE finished IS NOT NULL").fetchall())
    conn.close()
    return cands, atts, fin


def test_sigkill_mid_round_then_resume_matches_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    proc = _pf(*ARGS, "--out", str(killed))
    db = killed / "store.sqlite"
    deadline = time.monotonic() + 120
    state = None
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if not db.exists():
            continue
        try:
            conn = sqlite3.connect(db, timeout=1)
            n = conn.execute("SELECT COUNT(*) FROM candidates WHERE round=2 AND finished IS NOT NULL").fetchone()[0]
            conn.close()
        except sqlite3.OperationalError:
            continue
        if 1 <= n < 5:
            os.killpg(proc.pid, signal.SIGKILL)
            state = n
            break
    proc.wait(timeout=30)
    assert state is not None, "the run finished before it could be killed mid-round"
    assert proc.returncode == -signal.SIGKILL
    before = _rows(db)[2]

    resumed = _pf("--resume", str(killed))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err

    full = tmp_path / "full"
    ref = _pf(*ARGS, "--out", str(full))
    ref.communicate(timeout=300)
    assert ref.returncode == 0

    k_cands, k_atts, k_fin = _rows(db)
    f_cands, f_atts, _ = _rows(full / "store.sqlite")
    assert len(k_cands) == 2 + 4 * 6
    assert k_cands == f_cands
    assert k_atts == f_atts
    # Nothing finished before the kill was evaluated again.
    for cid, t in before.items():
        assert k_fin[cid] == t
