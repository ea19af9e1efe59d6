"""Run untrusted candidate code in a contained child process.

Every process that executes generated code goes through :func:`run`:
- its own session / process group (``setsid``), killed as a whole on timeout;
- RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, no core dumps;
- a process-count limit: a pids cgroup when one can be made (root here), else RLIMIT_NPROC
  under a throw-away uid, so a fork bomb is contained; every process left in the cgroup or
  under that uid is killed afterwards, also ones that escaped the process group.
The result says why a run failed in words ("timeout after 5.0 s", "killed by SIGSEGV",
"out of memory", "too many processes") so the store can record it.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

_PIDS_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
_counter = itertools.count()
_lock = threading.Lock()


@dataclasses.dataclass
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool = False
    reason: str = ""          # empty when the process exited 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _pids_cgroup_parent() -> Path | None:
    if os.geteuid() != 0:
        return None
    for root in _PIDS_ROOTS:
        if (root / "pids.max").exists() or (root / "cgroup.procs").exists() and root.name == "pids":
            parent = root / "policyforge"
            try:
                parent.mkdir(exist_ok=True)
                probe = parent / f"probe-{os.getpid()}"
                probe.mkdir(exist_ok=True)
                ok = (probe / "pids.max").exists()
                probe.rmdir()
                if ok:
                    return parent
            except OSError:
                continue
    return None


_CGROUP_PARENT: Path | None | bool = False


def _cgroup_parent() -> Path | None:
    global _CGROUP_PARENT
    with _lock:
        if _CGROUP_PARENT is False:
            _CGROUP_PARENT = _pids_cgroup_parent()
        return _CGROUP_PARENT  # type: ignore[return-value]


def _kill_cgroup(cg: Path) -> None:
    for _ in range(50):
        try:
            pids = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    try:
        cg.rmdir()
    except OSError:
        pass


def _fork_refusals(cg: Path) -> int:
    """How often the pids limit refused a fork (cgroup's pids.events 'max' counter)."""
    try:
        for line in (cg / "pids.events").read_text().splitlines():
            key, _, val = line.partition(" ")
            if key == "max":
                return int(val)
    except (OSError, ValueError):
        pass
    return 0


def _kill_uid(uid: int) -> None:
    for _ in range(20):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found = True
                    os.kill(int(entry), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
        if not found:
            return
        time.sleep(0.02)


def run(argv: list[str], *, timeout_s: float = 60.0, cpu_s: float | None = None,
        mem_mb: int = 2048, max_procs: int = 32, cwd: str | Path | None = None,
        env: dict[str, str] | None = None, stdin: str | None = None,
        max_output: int = 1 << 20) -> SandboxResult:
    """Run ``argv`` contained; never raises for the child's misbehaviour."""
    cpu_s = cpu_s if cpu_s is not None else timeout_s
    seq = next(_counter)
    cg_parent = _cgroup_parent()
    cgroup = None
    uid = None
    if cg_parent is not None:
        cgroup = cg_parent / f"c{os.getpid()}-{seq}"
        cgroup.mkdir(exist_ok=True)
        (cgroup / "pids.max").write_text(str(max_procs))
    elif os.geteuid() == 0:
        uid = 200000 + (os.getpid() % 1000) * 1000 + seq % 1000

    def preexec() -> None:
        os.setsid()
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_s) + 1, int(cpu_s) + 2))
        mem = mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
        if uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        elif os.geteuid() != 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))

    t0 = time.monotonic()
    timed_out = False
    fork_refused = 0
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec, text=True,
            errors="replace")
    except OSError as e:
        if cgroup is not None:
            _kill_cgroup(cgroup)
        return SandboxResult(None, "", str(e), 0.0, reason=f"could not start {argv[0]}: {e.strerror}")
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
    finally:
        if cgroup is not None:
            fork_refused = _fork_refusals(cgroup)
            _kill_cgroup(cgroup)
        elif uid is not None:
            _kill_uid(uid)
    wall = time.monotonic() - t0
    rc = proc.returncode
    out, err = out[-max_output:], err[-max_output:]
    reason = ""
    if timed_out:
        reason = f"timeout after {timeout_s:g} s"
    elif rc is not None and rc < 0:
        sig = signal.Signals(-rc)
        reason = {signal.SIGXCPU: f"CPU limit ({cpu_s:g} s) exceeded",
                  signal.SIGKILL: "killed (SIGKILL)"}.get(sig, f"killed by {sig.name}")
    elif rc != 0:
        reason = f"exit status {rc}"
    low = err.lower()
    if reason and ("memoryerror" in low or "bad_alloc" in low or "cannot allocate memory" in low
                   or "out of memory" in low):
        reason += " (out of memory)"
    if reason and (fork_refused or "resource temporarily unavailable" in low):
        reason += f" (hit the limit of {max_procs} processes)"
    return SandboxResult(rc, out, err, wall, timed_out, reason)
