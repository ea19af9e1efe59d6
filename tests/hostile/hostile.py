"""Helpers for the hostile-candidate tests: the real CLI, a real replay run, and the checks
every attack must pass afterwards (nothing left running, nothing secret stored, nothing
written outside the run)."""
from __future__ import annotations

import fnmatch
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from policyforge.sandbox import UID_BASE

from pfhelpers import cli_env

# a small cache workload with next-access times (so Belady applies): fast baselines
CACHE_OPTS = {"trace": "zipf:n_req=20000,n_objs=3000"}
PRIORITY = "double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n"


def secret_lines() -> list[str]:
    """Text that must never reach a store, a prompt or feedback: /etc/shadow's entries."""
    try:
        return [ln for ln in Path("/etc/shadow").read_text().splitlines() if ":" in ln][:3]
    except OSError:
        return []


def pf(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI, to its end; the result's .pid is the policyforge process's (whose jobs are
    the ones to look for afterwards)."""
    with subprocess.Popen([sys.executable, "-m", "policyforge", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=cwd) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    r.pid = p.pid
    return r


def options(opts: dict) -> list[str]:
    return [x for k, v in opts.items() for x in ("-o", f"{k}={v}")]


def check_file(cwd: Path, task: str, source: str, opts: dict | None = None, name: str = "policy.c"):
    """`policyforge check TASK FILE`: (exit status, output)."""
    f = cwd / name
    f.write_text(source)
    r = pf(cwd, "check", task, str(f), *options(opts or {}))
    assert "Traceback" not in r.stderr, r.stderr
    assert_nothing_left(r.pid)
    return r.returncode, r.stdout + r.stderr


def replay_run(cwd: Path, task: str, sources: list[str], opts: dict | None = None, repairs: int = 0,
               timeout: float = 600) -> tuple[subprocess.CompletedProcess, list[dict], Path]:
    """A real `policyforge run --generator replay` whose generator answers with `sources`, in
    order, as a model would (fenced code); returns the process, the candidates and the run."""
    replay = cwd / "answers.jsonl"
    with open(replay, "w") as f:
        for i, src in enumerate(sources):
            f.write(json.dumps({"content": f"Here is the policy.\n```c\n{src}```\n", "model": f"attack{i}"}) + "\n")
    out = cwd / "run"
    r = pf(cwd, "run", task, "--generator", "replay", "--replay", str(replay), "--rounds", "1",
           "--candidates-per-round", str(len(sources)), "--workers", "2", "--repairs", str(repairs), "--seed", "0",
           "--out", str(out), "-q", *options(opts or {}), timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    assert_nothing_left(r.pid)
    with sqlite3.connect(out / "store.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(x) for x in db.execute("SELECT * FROM candidates WHERE generator='replay' ORDER BY slot")]
    return r, rows, out


def _job_uids(owner: int) -> range:
    """The uids the sandbox gives the jobs of policyforge process `owner` (sandbox.Job)."""
    base = UID_BASE + (owner % 100_000) * 1000
    return range(base, base + 1000)


def sandbox_processes(owner: int | None = None) -> list[str]:
    """Processes running as a sandbox job uid (of `owner`'s jobs, or anyone's): none may
    outlive its job."""
    uids = _job_uids(owner) if owner is not None else range(UID_BASE, UID_BASE + 10**8)
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            uid = d.stat().st_uid
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if uid in uids:
            found.append(f"{d.name} uid={uid} {cmd}")
    return found


def job_cgroup_processes(owner: int | None = None) -> list[str]:
    """Processes still in policyforge's job cgroups (of `owner`'s jobs, or anyone's)."""
    left = []
    pattern = f"j{owner}-*" if owner is not None else "j*"
    # os.walk, not Path.glob("**/..."): other runs' job cgroups come and go during the walk, and
    # glob raises on a directory that vanished between listing and entering it; walk skips it
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root) != "policyforge":
            continue
        for d in fnmatch.filter(dirs, pattern):
            try:
                pids = Path(root, d, "cgroup.procs").read_text().split()
            except OSError:
                continue
            left += [f"{root}/{d}: {p}" for p in pids]
    return left


def assert_nothing_left(owner: int | None = None) -> None:
    """No process of `owner`'s jobs (default: this test process's) is left, in ps or cgroups."""
    owner = os.getpid() if owner is None else owner
    assert sandbox_processes(owner) == []
    assert job_cgroup_processes(owner) == []


def assert_no_secret(*paths: Path) -> None:
    for p in paths:
        data = p.read_bytes() if p.is_file() else b""
        for line in secret_lines():
            assert line.encode() not in data, f"a line of /etc/shadow is in {p}"


def belady_bound(run: Path) -> float:
    with sqlite3.connect(run / "store.sqlite") as db:
        return db.execute("SELECT score FROM baselines WHERE name='Belady'").fetchone()[0]
