"""bench/cc/linkem_load: linkem's own timing (p99 lateness of its deliveries at 50 Mbit/s) on a
quiet machine and under loads the bench starts itself, side by side, with and without its
mitigations.

    .venv/bin/python bench/cc/linkem_load.py [--runs 3] [--seconds 3]

Loads (each started before the measurement and killed by PID after it):
  quiet     nothing
  cpu       one busy loop per core (user-mode work: preempted at once by a real-time task)
  io        dd writing 1.5 GB with fsync, in a loop (page cache, writeback, ext4 journal)
  build     gcc -O2 of a generated 20 000-line C file, in a loop (page faults, munmap, exec)
  testbed   another dumbbell carrying cubic flows back to back (TUN, namespaces, TCP in the kernel)
  mixed     io + build + testbed at once
Variants: linkem as shipped (SCHED_FIFO 10, mlockall), without mlockall (LINKEM_NO_MLOCK=1), and
without a real-time priority (LINKEM_NO_RT=1). Per cell: p50 / p99 / max lateness over the runs'
packets (ms) and the share of runs whose p99 stays under 0.5 ms, the bound the cc evaluator
enforces (it repeats a later run and never scores it). Writes linkem_load.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT / "py")]

from policyforge.native import native_path  # noqa: E402
from policyforge.search.report import git_commit, machine  # noqa: E402
from policyforge.testbed import Dumbbell, Experiment, FlowSpec, LinkSpec, run_experiment, use_linkem  # noqa: E402
from policyforge.testbed.metrics import LOG_RECORD  # noqa: E402

DELAY_MS = 5.0


def measure(work: Path, seconds: float) -> np.ndarray:
    """UDP at 60 Mbit/s into a 50 Mbit/s link for `seconds`: every delivered packet's lateness (ms)."""
    with Dumbbell(LinkSpec(rate_mbps=50, delay_ms=DELAY_MS, queue_pkts=100), work) as db:
        db.spawn_rcv(["iperf3", "-s", "-1", "-p", "5301"])
        time.sleep(0.3)
        db.snd(["iperf3", "-c", db.RCV_ADDR, "-p", "5301", "-u", "-b", "60M", "-l", "1472", "-t", str(seconds)],
               timeout=seconds + 30)
    rec = np.fromfile(work / "linkem.bin", dtype=LOG_RECORD)
    sent = rec[(rec["dir"] == 0) & (rec["dropped"] == 0)]
    return (sent["dlv"].astype(np.int64) - sent["deq"].astype(np.int64) - int(DELAY_MS * 1e6)) / 1e6


class Load:
    """Background load, started in its own process groups and killed by them."""

    def __init__(self, kind: str, work: Path):
        self.kind, self.work, self.procs, self.stop = kind, work, [], threading.Event()
        self.threads: list[threading.Thread] = []

    def _spawn(self, script: str) -> None:
        self.procs.append(subprocess.Popen(["bash", "-c", script], start_new_session=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def __enter__(self) -> "Load":
        kinds = {"mixed": ("io", "build", "testbed")}.get(self.kind, (self.kind,))
        for k in kinds:
            if k == "cpu":
                for _ in range(os.cpu_count() or 2):
                    self._spawn("while :; do :; done")
            elif k == "io":
                self._spawn(f"while :; do dd if=/dev/zero of={self.work}/io.bin bs=1M count=1500 conv=fsync; done")
            elif k == "build":
                src = self.work / "big.c"
                src.write_text("".join(f"int f{i}(int x) {{ return x * {i} + (x >> 3) - {i % 7}; }}\n"
                                       for i in range(20000)))
                self._spawn(f"cd {self.work} && while :; do gcc -O2 -c big.c -o big.o; done")
            elif k == "testbed":
                t = threading.Thread(target=self._flows, daemon=True)
                t.start()
                self.threads.append(t)
        time.sleep(2.0)            # the load in full swing before the measurement
        return self

    def _flows(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                run_experiment(Experiment(LinkSpec(rate_mbps=24, delay_ms=10), [FlowSpec("cubic", 0, 2)]),
                               self.work / f"tb{n}")
            except Exception:      # a load, not a measurement
                pass
            n += 1

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        for t in self.threads:
            t.join(timeout=30)
        (self.work / "io.bin").unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--loads", default="quiet,cpu,io,build,testbed,mixed")
    a = ap.parse_args()
    commit = git_commit()          # before the run writes its results into the tree
    use_linkem(native_path("bin", "linkem"))
    variants = {"shipped": {}, "no mlockall": {"LINKEM_NO_MLOCK": "1"}, "no real-time": {"LINKEM_NO_RT": "1"}}
    work = Path(tempfile.mkdtemp(prefix="pf-bench-linkem-load-"))
    rows = []
    for load in a.loads.split(","):
        lw = work / load
        lw.mkdir()
        with Load(load, lw):
            for vname, env in variants.items():
                old = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                try:
                    lates, p99s = [], []
                    for i in range(a.runs):
                        late = measure(lw / f"{vname.replace(' ', '_')}{i}", a.seconds)
                        lates.append(late)
                        p99s.append(float(np.percentile(late, 99)))
                finally:
                    for k, v in old.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                allv = np.concatenate(lates)
                row = {"load": load, "variant": vname, "p50_ms": float(np.percentile(allv, 50)),
                       "p99_ms": float(np.percentile(allv, 99)), "max_ms": float(allv.max()),
                       "run_p99_ms": p99s, "runs_on_time": sum(p < 0.5 for p in p99s), "runs": a.runs}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    lines = ["# bench/cc/linkem_load — linkem's timing under load", "",
             f"Machine: {machine()}  ", f"Command: `python bench/cc/linkem_load.py {' '.join(sys.argv[1:])}`  ",
             f"Commit: {commit}  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             f"Kernel preemption: {preemption()}", "",
             f"Each cell: {a.runs} runs of {a.seconds:g} s of UDP at 60 Mbit/s into a 50 Mbit/s, {DELAY_MS:g} ms link; "
             "lateness = actual minus scheduled delivery of every delivered packet (linkem's packet log). "
             "p50 / p99 / max over all the runs' packets, ms; then the runs whose own p99 is under 0.5 ms.", "",
             "| load | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for load in a.loads.split(","):
        cells = []
        for v in variants:
            r = next(x for x in rows if x["load"] == load and x["variant"] == v)
            cells.append(f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} / {r['max_ms']:.1f} ({r['runs_on_time']}/{r['runs']})")
        lines.append(f"| {load} | " + " | ".join(cells) + " |")
    (HERE / "linkem_load.md").write_text("\n".join(lines) + "\n")
    (HERE / "linkem_load.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))
    subprocess.run(["rm", "-rf", str(work)])


def preemption() -> str:
    """The kernel's preemption model, as far as this host lets us read it."""
    try:
        return Path("/sys/kernel/debug/sched/preempt").read_text().strip()
    except OSError:
        v = subprocess.run(["uname", "-v"], capture_output=True, text=True).stdout.strip()
        return f"{v} (the mode itself cannot be read here)"


if __name__ == "__main__":
    main()
