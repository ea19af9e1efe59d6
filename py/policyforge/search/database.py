"""The run store: one SQLite database (WAL) per run directory.

Everything a run produces is here: each candidate with its source, parents, prompt, raw
response, every check attempt with the checker's exact feedback, metrics, timings, the
generator and model, token cost; the baselines; the run's configuration. Writes are
single short transactions, so a run killed with SIGKILL at any moment loses no finished
evaluation, and `--resume` repeats none.
"""
from __future__ import annotations

import json
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
    feedback TEXT NOT NULL DEFAULT '',
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


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._conn() as c:
            c.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

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
               check_s: float = 0.0, eval_s: float = 0.0, pipeline_s: float = 0.0, extra_tokens: tuple[int, int, float] = (0, 0, 0.0)) -> None:
        tin, tout, cost = extra_tokens
        self._write(
            "UPDATE candidates SET status=?, source=?, source_hash=?, score=?, metrics=?, reason=?, eval_stage=?,"
            " check_s=?, eval_s=?, pipeline_s=?, tokens_in=tokens_in+?, tokens_out=tokens_out+?, cost_usd=cost_usd+?,"
            " finished=? WHERE id=?",
            (status, source, source_hash, score, json.dumps(metrics or {}), reason, eval_stage, check_s, eval_s, pipeline_s,
             tin, tout, cost, time.time(), cand))

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

    def candidates(self, where: str = "1=1", args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(f"SELECT * FROM candidates WHERE {where} ORDER BY id", tuple(args)).fetchall()

    def candidate(self, cand: int) -> sqlite3.Row | None:
        return self._conn().execute("SELECT * FROM candidates WHERE id=?", (cand,)).fetchone()

    def round_candidates(self, rnd: int) -> list[sqlite3.Row]:
        return self.candidates("round=?", (rnd,))

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

    def finished_by_hash(self, source_hash: str) -> sqlite3.Row | None:
        return self._conn().execute(
            "SELECT * FROM candidates WHERE source_hash=? AND status IN ('evaluated','failed','check_failed','screened')"
            " ORDER BY id LIMIT 1", (source_hash,)).fetchone()

    def known_hashes(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT source_hash FROM candidates")}

    def mark_round(self, rnd: int) -> None:
        self._write("INSERT OR REPLACE INTO rounds VALUES (?, ?)", (rnd, time.time()))

    def round_done(self, rnd: int) -> bool:
        return self._conn().execute("SELECT 1 FROM rounds WHERE round=?", (rnd,)).fetchone() is not None

    def total_cost(self) -> float:
        return float(self._conn().execute("SELECT COALESCE(SUM(cost_usd),0) FROM candidates").fetchone()[0])

    # --- baselines ----------------------------------------------------------------------
    def set_baseline(self, name: str, score: float | None, ok: bool, ranked: bool, metrics: dict, reason: str) -> None:
        self._write("INSERT OR REPLACE INTO baselines VALUES (?,?,?,?,?,?)",
                    (name, score, int(ok), int(ranked), json.dumps(metrics), reason))

    def baselines(self) -> list[sqlite3.Row]:
        return self._conn().execute("SELECT * FROM baselines ORDER BY score DESC").fetchall()
