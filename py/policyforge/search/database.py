"""The run store: one SQLite database (WAL) per run directory.

Everything a run produces is here: each candidate with its source, parents, prompt, raw
response, every check attempt with the checker's exact feedback, metrics, timings, the
generator and model, token cost; the baselines; the run's configuration. Writes are
single short transactions, so a run killed with SIGKILL at any moment loses no finished
evaluation, and `--resume` repeats none. Things that belong together (a round's proposals,
the set of baselines) are one transaction each: a kill leaves all of them or none.

The controller checkpoints the write-ahead log into the main file at the end of every round
and when it stops (`checkpoint`), so `store.sqlite` alone holds every finished round even if
`store.sqlite-wal` is lost. Only one process may write a run: `RunLock`.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    slot INTEGER NOT NULL,            -- position within the round
    island INTEGER NOT NULL,
    parents TEXT NOT NULL,            -- JSON list of candidate ids
    generator TEXT NOT NULL,          -- seed | offline | openai | replay
    model TEXT NOT NULL DEFAULT '',
    operation TEXT NOT NULL DEFAULT '', -- e.g. mutate, crossover, random, llm
    repairs INTEGER NOT NULL DEFAULT 0, -- repair attempts it took (0: its first try was final)
    prompt TEXT NOT NULL DEFAULT '',
    response TEXT NOT NULL DEFAULT '',
    genome TEXT,                      -- JSON {hole: s-expression} for offline candidates
    source TEXT NOT NULL,             -- the source that was finally checked
    source_hash TEXT NOT NULL,
    status TEXT NOT NULL,             -- pending | evaluated | failed | check_failed | duplicate | screened
    score REAL,
    metrics TEXT,                     -- JSON
    reason TEXT NOT NULL DEFAULT '',
    eval_stage TEXT NOT NULL DEFAULT '',
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    check_s REAL NOT NULL DEFAULT 0,
    eval_s REAL NOT NULL DEFAULT 0,
    gen_s REAL NOT NULL DEFAULT 0,
    pipeline_s REAL NOT NULL DEFAULT 0, -- wall time of check+repairs+evaluate in the worker
    created REAL NOT NULL,
    finished REAL,
    UNIQUE(round, slot)
);
CREATE TABLE IF NOT EXISTS attempts (
    candidate INTEGER NOT NULL REFERENCES candidates(id),
    attempt INTEGER NOT NULL,         -- 0 = first try, 1.. = repairs
    source TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    response TEXT NOT NULL DEFAULT '',
    ok INTEGER,                       -- NULL until checked
    stage TEXT NOT NULL DEFAULT '',
    feedback TEXT NOT NULL DEFAULT '',   -- what went back to the generator
    log TEXT NOT NULL DEFAULT '',        -- the checker's raw output where feedback summarizes it (verifier)
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (candidate, attempt)
);
CREATE TABLE IF NOT EXISTS baselines (
    name TEXT PRIMARY KEY, score REAL, ok INTEGER NOT NULL, ranked INTEGER NOT NULL,
    metrics TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS rounds (round INTEGER PRIMARY KEY, finished REAL NOT NULL);
"""

FINISHED = ("evaluated", "failed", "check_failed", "duplicate", "screened")
TABLES = {"meta", "candidates", "attempts", "baselines", "rounds"}


class StoreError(Exception):
    """A store that cannot be used (not a database, not a policyforge run, no config): one line."""


class Store:
    """One run's database. `Store(path)` creates it (a new run, or one being resumed);
    `Store.open(path, readonly=True)` opens an existing run for reading and never writes."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        self._write_lock = threading.Lock()
        try:
            if readonly:
                self._validate()
            else:
                with self._conn() as c:
                    c.executescript(SCHEMA)
                    self._migrate(c)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a readable policyforge store: {e}") from None

    # columns added since the first release, for stores made before them
    ADDED = {"attempts": {"log": "TEXT NOT NULL DEFAULT ''"},
             "candidates": {"repairs": "INTEGER NOT NULL DEFAULT 0"}}

    @classmethod
    def _migrate(cls, conn: sqlite3.Connection) -> None:
        for table, cols in cls.ADDED.items():
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            for col, decl in cols.items():
                if col not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> "Store":
        """An existing run's store, checked: a database with policyforge's tables and a run
        configuration. A corrupt or empty file raises StoreError (it is never rewritten)."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path.parent} holds no run (no store.sqlite)")
        store = cls(path, readonly=True)
        if not readonly:
            store = cls(path)
        return store

    def _validate(self) -> None:
        conn = self._conn()
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not TABLES <= names:
            raise StoreError(f"{self.path} is not a policyforge store "
                             f"({'an empty file' if not names else 'tables missing: ' + ', '.join(sorted(TABLES - names))})")
        if self.meta("config") is None:
            raise StoreError(f"{self.path} holds no run configuration (a run that never started)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.readonly:
                # read-only: a store that is not a database is reported, never initialised
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            else:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            if not self.readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a commit is durable against a process kill at once, against
                # power loss from the next checkpoint on (docs/engine.md, durability)
                conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the main file and empty it: from here on the main file
        alone holds everything committed. Readers in other threads may keep part of the log
        busy; what they hold is copied at the next checkpoint."""
        with self._write_lock:
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _write(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._write_lock:
            return self._conn().execute(sql, tuple(args))

    # --- meta ---------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- candidates ---------------------------------------------------------------------
    def add_round(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert all proposals of a round in one transaction; returns their ids."""
        cols = ("round", "slot", "island", "parents", "generator", "model", "operation", "prompt",
                "response", "genome", "source", "source_hash", "status", "tokens_in",
                "tokens_out", "cost_usd", "gen_s", "created")
        ids = []
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for r in rows:
                    vals = dict(r, parents=json.dumps(r.get("parents", [])),
                                genome=json.dumps(r["genome"]) if r.get("genome") else None,
                                status="pending", created=time.time())
                    for k, d in (("model", ""), ("operation", ""), ("prompt", ""), ("response", ""),
                                 ("tokens_in", 0), ("tokens_out", 0), ("cost_usd", 0.0), ("gen_s", 0.0)):
                        vals.setdefault(k, d)
                    cur = conn.execute(
                        f"INSERT INTO candidates ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                        [vals[c] for c in cols])
                    ids.append(cur.lastrowid)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return ids

    def record_attempt(self, cand: int, attempt: int, **fields: Any) -> None:
        """Insert an attempt or update the given fields of it (others keep their values)."""
        fields = {k: v for k, v in fields.items() if v is not None}
        cols = ["candidate", "attempt", *fields]
        update = ", ".join(f"{k}=excluded.{k}" for k in fields) or "attempt=attempt"
        self._write(f"INSERT INTO attempts ({','.join(cols)}) VALUES ({','.join('?' * len(cols))}) "
                    f"ON CONFLICT(candidate, attempt) DO UPDATE SET {update}", [cand, attempt, *fields.values()])

    def attempts(self, cand: int) -> list[sqlite3.Row]:
        return self._conn().execute(
            "SELECT * FROM attempts WHERE candidate=? ORDER BY attempt", (cand,)).fetchall()

    def finish(self, cand: int, *, status: str, source: str, source_hash: str, score: float | None = None,
               metrics: dict | None = None, reason: str = "", eval_stage: str = "",
               check_s: float = 0.0, eval_s: float = 0.0, pipeline_s: float = 0.0, extra_tokens: tuple[int, int, float] = (0, 0, 0.0),
               repairs: int = 0) -> None:
        tin, tout, cost = extra_tokens
        self._write(
            "UPDATE candidates SET status=?, source=?, source_hash=?, score=?, metrics=?, reason=?, eval_stage=?,"
            " check_s=?, eval_s=?, pipeline_s=?, tokens_in=tokens_in+?, tokens_out=tokens_out+?, cost_usd=cost_usd+?,"
            " repairs=?, finished=? WHERE id=?",
            (status, source, source_hash, score, json.dumps(metrics or {}), reason, eval_stage, check_s, eval_s, pipeline_s,
             tin, tout, cost, repairs, time.time(), cand))

    def set_verified(self, cand: int, score: float, metrics: dict) -> None:
        """A result re-established in trusted code (task.verify): its score and metrics."""
        self._write("UPDATE candidates SET score=?, metrics=? WHERE id=?", (score, json.dumps(metrics), cand))

    def set_invalid(self, cand: int, reason: str, metrics: dict) -> None:
        """A result that did not hold up (task.verify): no score, the reason why."""
        self._write("UPDATE candidates SET status='failed', score=NULL, reason=?, metrics=? WHERE id=?",
                    (reason, json.dumps(metrics), cand))

    def best_baseline_score(self) -> float | None:
        """The best score of the ranked baselines that ran (bounds such as Belady excluded)."""
        row = self._conn().execute(
            "SELECT MAX(score) FROM baselines WHERE ranked=1 AND ok=1 AND score IS NOT NULL").fetchone()
        return row[0] if row else None

    def candidates(self, *, round: int | None = None, before_round: int | None = None,
                   from_round: int | None = None, status: Iterable[str] | None = None,
                   generated: bool | None = None, generators: Iterable[str] | None = None,
                   source_hash: str | None = None, before_id: int | None = None) -> list[sqlite3.Row]:
        """Candidates in id order, filtered by what is given: a round (exactly, before, from),
        statuses, generated (not seeds) or seeds only, generators, a source hash, ids below one."""
        where, args = [], []
        for cond, value in (("round = ?", round), ("round < ?", before_round), ("round >= ?", from_round),
                            ("source_hash = ?", source_hash), ("id < ?", before_id)):
            if value is not None:
                where.append(cond)
                args.append(value)
        for col, values in (("status", status), ("generator", generators)):
            if values is not None:
                values = list(values)
                where.append(f"{col} IN ({','.join('?' * len(values))})" if values else "0")
                args += values
        if generated is not None:
            where.append("generator != 'seed'" if generated else "generator = 'seed'")
        sql = "SELECT * FROM candidates" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return self._conn().execute(sql, args).fetchall()

    def candidate(self, cand: int) -> sqlite3.Row | None:
        return self._conn().execute("SELECT * FROM candidates WHERE id=?", (cand,)).fetchone()

    def round_candidates(self, rnd: int) -> list[sqlite3.Row]:
        return self.candidates(round=rnd)

    def scored(self, before_round: int | None = None) -> list[sqlite3.Row]:
        """Evaluated candidates, best first (ties: older first)."""
        q = "status='evaluated' AND score IS NOT NULL"
        args: tuple = ()
        if before_round is not None:
            q += " AND round < ?"
            args = (before_round,)
        return self._conn().execute(
            f"SELECT * FROM candidates WHERE {q} ORDER BY score DESC, id ASC", args).fetchall()

    def best(self) -> sqlite3.Row | None:
        rows = self.scored()
        return rows[0] if rows else None

    def mark_round(self, rnd: int) -> None:
        self._write("INSERT OR REPLACE INTO rounds VALUES (?, ?)", (rnd, time.time()))

    def rounds(self) -> list[sqlite3.Row]:
        """The finished rounds, with the time each finished."""
        return self._conn().execute("SELECT * FROM rounds ORDER BY round").fetchall()

    def round_done(self, rnd: int) -> bool:
        return self._conn().execute("SELECT 1 FROM rounds WHERE round=?", (rnd,)).fetchone() is not None

    def total_cost(self) -> float:
        return float(self._conn().execute("SELECT COALESCE(SUM(cost_usd),0) FROM candidates").fetchone()[0])

    # --- baselines ----------------------------------------------------------------------
    def set_baselines(self, rows: list[tuple[str, float | None, bool, bool, dict, str]]) -> None:
        """All baselines of the run, (name, score, ok, ranked, metrics, reason) each, in one
        transaction: a run killed while storing them has all or none, and resume computes a
        missing set again (a partial set would let a winner 'beat 6 of 7')."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM baselines")
                conn.executemany("INSERT INTO baselines VALUES (?,?,?,?,?,?)",
                                 [(n, sc, int(ok), int(rk), json.dumps(m), why) for n, sc, ok, rk, m, why in rows])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def baselines(self) -> list[sqlite3.Row]:
        return self._conn().execute("SELECT * FROM baselines ORDER BY score DESC").fetchall()


class RunLock:
    """One writer per run directory: an exclusive flock on RUN/run.lock, which holds the
    owner's pid. The kernel drops the lock when its process dies (even by SIGKILL), so a
    killed run never blocks its own --resume. A second writer gets StoreError naming the pid."""

    NAME = "run.lock"

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / self.NAME
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreError(f"{self.path.parent} is in use by pid {holder} (a run writes it); "
                                 "wait for it to finish or stop it first") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)     # closing the descriptor drops the lock; the file stays
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
