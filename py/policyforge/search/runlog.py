"""What a run tells its user as it goes: run.log (one timestamped line per event and per
finished candidate, rebuilt from the store on resume) and, unless quiet, the same lines on
stderr with a progress bar and an ETA on a terminal. One writer of both."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from .database import FINISHED, Store

log = logging.getLogger("policyforge")


class Progress:
    """A progress bar with an ETA on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, done: int = 0, stream=sys.stderr):
        self.total, self.done, self.stream = total, done, stream
        self.start_done = done          # finished before this process (a resume): not in the rate
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self.best: float | None = None
        self.round = 0

    def line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.bar()

    def step(self, score: float | None) -> None:
        self.done += 1
        if score is not None and (self.best is None or score > self.best):
            self.best = score
        self.bar()

    def eta(self) -> str:
        made = self.done - self.start_done
        if made <= 0 or self.done >= self.total:
            return ""
        left = (self.total - self.done) * (time.monotonic() - self.t0) / made
        return f"  ETA {int(left // 60)}m{int(left % 60):02d}s" if left >= 60 else f"  ETA {left:.0f}s"

    def bar(self) -> None:
        if not self.tty:
            return
        frac = self.done / max(1, self.total)
        filled = int(30 * frac)
        best = "-" if self.best is None else f"{self.best:.5f}"
        self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                          f"round {self.round}  best {best}  {time.monotonic() - self.t0:.0f}s{self.eta()}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


class RunLog:
    def __init__(self, path: Path, progress: Progress | None = None):
        self.path = Path(path)
        self.progress = progress

    def event(self, text: str) -> None:
        """A line about the run (baselines, rounds, the winner)."""
        log.info(text)
        self.raw(time.strftime("%H:%M:%S ") + text + "\n")
        if self.progress:
            self.progress.line(text)

    def candidate(self, store: Store, row) -> None:
        """The line of a finished candidate; the progress bar steps."""
        text = candidate_line(store, row)
        if self.progress:
            self.progress.line(text)
            self.progress.step(row["score"])
        self.raw(time.strftime("%H:%M:%S ") + text + "\n")

    def raw(self, text: str) -> None:
        """Text as it is (a traceback of an internal error)."""
        with open(self.path, "a") as f:
            f.write(text)

    def rebuild(self, store: Store, header: str) -> None:
        """run.log anew from the store: a kill may have cut the last line, and the store is
        the truth. The old file is replaced in one rename."""
        entries = [(c["finished"], candidate_line(store, c)) for c in store.candidates(status=FINISHED)]
        entries += [(r["finished"], f"round {r['round']} done") for r in store.rounds()]
        created = store.meta("created") or 0
        head = [(created, f"{header} (rebuilt from the store on resume)")]
        if store.baselines():
            head.append((created, f"baselines: {len(store.baselines())} stored"))
        lines = [time.strftime("%H:%M:%S ", time.localtime(t or 0)) + text + "\n"
                 for t, text in head + sorted(entries, key=lambda e: e[0] or 0)]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(lines))
        tmp.replace(self.path)


def candidate_line(store: Store, row) -> str:
    """One line of run.log for a finished candidate."""
    cid = row["id"]
    n_att = len(store.attempts(cid))
    repairs = f" after {n_att - 1} repair(s)" if n_att > 1 else ""
    parents = ",".join(str(p) for p in json.loads(row["parents"])) or "-"
    if row["status"] == "evaluated":
        what = f"score {row['score']:.6f}"
    elif row["status"] == "screened":
        what = f"screened out at {row['eval_stage']}"
    else:
        what = f"{row['status']}: {row['reason']}"
    return (f"cand {cid:4d} r{row['round']} {row['operation'] or row['generator']:<16} "
            f"parents {parents:<12} check {'ok' if row['status'] not in ('check_failed',) else 'FAIL'}"
            f"{repairs}  {what}")
