"""The store's API, without root or a toolchain (make test-fast)."""
import os
import sqlite3
import subprocess
import sys

import pytest

from policyforge.search.database import RunLock, Store, StoreError


def _round(store, rnd, n, generator="offline"):
    return store.add_round([dict(round=rnd, slot=i, island=i % 2, parents=[], generator=generator, source=f"s{rnd}.{i}",
                                 source_hash=f"h{rnd}.{i}") for i in range(n)])


def test_named_filters_select_what_they_say(tmp_path):
    st = Store(tmp_path / "store.sqlite")
    seeds = _round(st, 0, 2, generator="seed")
    r1 = _round(st, 1, 3)
    r2 = _round(st, 2, 2, generator="openai")
    st.finish(r1[0], status="evaluated", source="x", source_hash="hx", score=1.0)
    ids = lambda rows: [r["id"] for r in rows]          # noqa: E731
    assert ids(st.candidates()) == seeds + r1 + r2
    assert ids(st.candidates(round=1)) == r1
    assert ids(st.candidates(before_round=2)) == seeds + r1
    assert ids(st.candidates(from_round=2)) == r2
    assert ids(st.candidates(generated=True)) == r1 + r2
    assert ids(st.candidates(generated=False)) == seeds
    assert ids(st.candidates(generators=("openai",))) == r2
    assert ids(st.candidates(status=("evaluated",))) == [r1[0]]
    assert ids(st.candidates(status=())) == []
    assert ids(st.candidates(source_hash="h1.1", before_id=r1[2])) == [r1[1]]
    assert ids(st.candidates(source_hash="h1.1", before_id=r1[1])) == []


def test_baselines_are_replaced_as_a_set(tmp_path):
    st = Store(tmp_path / "store.sqlite")
    st.set_baselines([("a", 1.0, True, True, {}, ""), ("b", None, False, True, {}, "crash")])
    st.set_baselines([("c", 2.0, True, False, {"x": 1}, "")])
    assert [b["name"] for b in st.baselines()] == ["c"]
    with pytest.raises(sqlite3.IntegrityError):      # a bad row leaves the old set whole
        st.set_baselines([("d", 1.0, True, True, {}, ""), ("d", 1.0, True, True, {}, "")])
    assert [b["name"] for b in st.baselines()] == ["c"]


def test_a_store_from_before_the_new_columns_is_migrated(tmp_path):
    db = tmp_path / "store.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE attempts (candidate INTEGER, attempt INTEGER, source TEXT, PRIMARY KEY (candidate, attempt));"
                       "CREATE TABLE candidates (id INTEGER PRIMARY KEY, round INTEGER);")
    conn.close()
    Store(db)
    conn = sqlite3.connect(db)
    assert "log" in {r[1] for r in conn.execute("PRAGMA table_info(attempts)")}
    assert "repairs" in {r[1] for r in conn.execute("PRAGMA table_info(candidates)")}
    conn.close()


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 50])
def test_reading_a_bad_store_fails_in_one_line_and_never_writes(tmp_path, content):
    db = tmp_path / "store.sqlite"
    db.write_bytes(content)
    with pytest.raises(StoreError):
        Store.open(db, readonly=True)
    assert db.read_bytes() == content


def test_the_run_lock_names_its_holder_and_dies_with_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nsys.path.insert(0, sys.argv[2])\n"
                               "from policyforge.search.database import RunLock\nRunLock(sys.argv[1]).acquire()\n"
                               "print('held', flush=True)\ntime.sleep(60)", str(tmp_path),
                               os.path.join(os.path.dirname(__file__), "..", "..", "py")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(StoreError, match=f"in use by pid {holder.pid}"):
        RunLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    with RunLock(tmp_path):          # the kernel dropped the dead holder's lock
        assert (tmp_path / "run.lock").read_text().strip() == str(os.getpid())
