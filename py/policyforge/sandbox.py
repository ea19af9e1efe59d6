"""Run untrusted work (compiling or executing candidate code) where it can do nothing else.

Every process that compiles or executes generated code goes through :func:`run` or
:class:`Job`. A job is started as

    pf-sandbox-exec (root: new session, parent-death signal, cgroups, rlimits, an empty
                   network namespace)
      bwrap (new mount, pid, IPC, UTS and cgroup namespaces; a file system of /usr,
             an empty /dev with /dev/null, a private /tmp, /proc of its own pid namespace,
             and exactly the paths the caller names, read-only unless named writable)
        pf-sandbox-exec --inner (an unprivileged uid of its own, no capabilities,
                                 no_new_privs, the seccomp filter of native/sandbox)
          the job

and contained by a pids cgroup (fork bombs), a memory cgroup (out-of-memory is reported as
such), RLIMIT_CPU / RLIMIT_FSIZE / no core files, and a wall-clock limit. When the job ends or
times out every process left in its cgroups is killed, and output is collected with a
deadline: no path blocks on a pipe that a grandchild keeps open. :func:`interrupt` (Ctrl-C)
kills every running job at once; a job killed that way raises :class:`Interrupted`, so no
caller records a failure that the candidate did not cause.

The result says why a job failed in words ("timeout after 5 s", "killed by SIGSEGV", "out of
memory (limit 256 MB)", "a forbidden system call (seccomp)") so the store can record it.
docs/engine.md has the threat model and why this design.
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import itertools
import os
import select
import selectors
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterable

from .task import TaskError

UID_BASE = 1_600_000_000       # job uids: far above any real account
OUTPUT_GRACE_S = 2.0           # after the job is gone: how long to drain its pipes

_counter = itertools.count()
_lock = threading.Lock()
_active: set["Job"] = set()
_interrupted = threading.Event()


class SandboxError(TaskError):
    """The sandbox cannot work on this machine (a missing tool, no root): one clear line."""


class Interrupted(BaseException):
    """The run was interrupted (Ctrl-C) while this job ran. A BaseException, so that code
    catching a candidate's failures (``except Exception``) lets it through."""


@dataclasses.dataclass
class SandboxResult:
    returncode: int | None
    stdout: str | bytes
    stderr: str
    wall_s: float
    timed_out: bool = False
    reason: str = ""          # empty when the process exited 0
    oom: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


# --- cgroups --------------------------------------------------------------------------------
@dataclasses.dataclass
class _Hierarchy:
    controller: str           # pids | memory
    root: Path                # policyforge's parent cgroup in this hierarchy
    v2: bool


def _own_cgroup_paths() -> dict[str, str]:
    """controller -> this process's cgroup path ('' key: the cgroup2 path)."""
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    except (OSError, ValueError):
        pass
    return out


def _cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(fstype, mount point, controllers) for every cgroup mount."""
    out = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fstype, _, opts = (right.split(" ") + ["", "", ""])[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((fstype, left.split(" ")[4], set(opts.split(","))))
    except OSError:
        pass
    return out


def _find_hierarchies() -> dict[str, _Hierarchy]:
    if os.geteuid() != 0:
        return {}
    own = _own_cgroup_paths()
    found: dict[str, _Hierarchy] = {}
    for fstype, mnt, opts in _cgroup_mounts():
        for ctrl in ("pids", "memory"):
            if ctrl in found:
                continue
            if fstype == "cgroup" and ctrl in opts:
                base, v2 = Path(mnt) / own.get(ctrl, "/").lstrip("/"), False
                bases = [base]
            elif fstype == "cgroup2":
                # our own cgroup first; under cgroup v2 a cgroup that holds processes cannot
                # hand controllers down, so then the hierarchy's root
                bases = [Path(mnt) / own.get("", "/").lstrip("/"), Path(mnt)]
                v2 = True
            else:
                continue
            for base in bases:
                parent = _usable_parent(base, ctrl, v2)
                if parent is not None:
                    found[ctrl] = _Hierarchy(ctrl, parent, v2)
                    _remove_stale(parent)
                    break
    return found


def _usable_parent(base: Path, ctrl: str, v2: bool) -> Path | None:
    """base/policyforge, if job cgroups made under it get the controller's limit files."""
    parent = base / "policyforge"
    try:
        if v2 and ctrl not in (base / "cgroup.controllers").read_text().split():
            return None
        parent.mkdir(exist_ok=True)
        if v2:
            (parent / "cgroup.subtree_control").write_text(f"+{ctrl}")
        probe = parent / f"probe-{os.getpid()}"
        probe.mkdir(exist_ok=True)
        usable = (probe / ("pids.max" if ctrl == "pids" else "memory.max" if v2 else "memory.limit_in_bytes")).exists()
        probe.rmdir()
    except OSError:
        return None
    return parent if usable else None


def _remove_stale(parent: Path) -> None:
    """Empty job cgroups of policyforge processes that died (SIGKILL) before removing them."""
    for d in parent.glob("j*-*"):
        try:
            pid = int(d.name[1:].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            try:
                d.rmdir()
            except OSError:
                pass
        except (ValueError, PermissionError):
            pass


_HIERARCHIES: dict[str, _Hierarchy] | None = None


def _hierarchies() -> dict[str, _Hierarchy]:
    global _HIERARCHIES
    with _lock:
        if _HIERARCHIES is None:
            _HIERARCHIES = _find_hierarchies()
        return _HIERARCHIES


class _JobCgroups:
    """The job's cgroup in every usable hierarchy, with its limits."""

    def __init__(self, name: str, max_procs: int, mem_mb: int):
        self.dirs: dict[str, tuple[Path, bool]] = {}
        for ctrl, h in _hierarchies().items():
            d = h.root / name
            try:
                d.mkdir(exist_ok=True)
                if ctrl == "pids":
                    (d / "pids.max").write_text(str(max_procs))
                elif h.v2:
                    (d / "memory.max").write_text(str(mem_mb << 20))
                    if (d / "memory.swap.max").exists():
                        (d / "memory.swap.max").write_text("0")
                else:
                    (d / "memory.limit_in_bytes").write_text(str(mem_mb << 20))
                    if (d / "memory.memsw.limit_in_bytes").exists():
                        (d / "memory.memsw.limit_in_bytes").write_text(str(mem_mb << 20))
                self.dirs[ctrl] = (d, h.v2)
            except OSError:
                try:
                    d.rmdir()
                except OSError:
                    pass

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d, _ in self.dirs.values()]

    def pids(self) -> list[int]:
        out: set[int] = set()
        for d, _ in self.dirs.values():
            try:
                out.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(out)

    def kill(self) -> None:
        """SIGKILL everything in the job's cgroups until they are empty (processes that are
        already exiting leave within a millisecond or two: poll fast, then back off)."""
        for d, v2 in self.dirs.values():
            if v2 and (d / "cgroup.kill").exists():
                try:
                    (d / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        pause = 0.0005
        deadline = time.monotonic() + 5
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(pause)
            pause = min(2 * pause, 0.02)

    def _count(self, ctrl: str, v1_file: str, v2_file: str, key: str) -> int:
        """A counter of the job's cgroup: the value of `key` in a 'key value' lines file."""
        if ctrl not in self.dirs:
            return 0
        d, v2 = self.dirs[ctrl]
        try:
            for line in (d / (v2_file if v2 else v1_file)).read_text().splitlines():
                name, _, val = line.partition(" ")
                if name == key:
                    return int(val)
        except (OSError, ValueError):
            pass
        return 0

    def fork_refusals(self) -> int:
        """How often the pids limit refused a fork."""
        return self._count("pids", "pids.events", "pids.events", "max")

    def oom_killed(self) -> bool:
        return self._count("memory", "memory.oom_control", "memory.events", "oom_kill") > 0

    @property
    def limits_memory(self) -> bool:
        return "memory" in self.dirs

    @property
    def limits_pids(self) -> bool:
        return "pids" in self.dirs

    def remove(self) -> None:
        for d, _ in self.dirs.values():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break
                    time.sleep(0.01)


# --- the file system a job sees ---------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _native_bin() -> Path:
    from .native import native_path
    return native_path("bin", "pf-sandbox-exec").parent


def _base_view() -> list[str]:
    """/usr and the merged-/usr links, the dynamic loader's cache, /etc/alternatives, /proc
    (of the job's own pid namespace; clang reads /proc/self), /dev/null (a private /tmp is
    added by the caller)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/") / top
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    args += ["--perms", "0755", "--dir", "/etc"]
    # the loader's cache, and Debian's alternatives (awk, cc, ... are links through them)
    for f in ("/etc/ld.so.cache", "/etc/alternatives"):
        if Path(f).exists():
            args += ["--ro-bind", f, f]
    args += ["--proc", "/proc", "--tmpfs", "/dev", "--dev-bind", "/dev/null", "/dev/null"]
    return args


def _binds(ro: Iterable[Path], rw: Iterable[Path]) -> list[str]:
    """bwrap arguments that show `ro` read-only and `rw` writable at their own paths, with
    every missing ancestor made traversable (bwrap would make it 0700)."""
    made: set[Path] = {Path("/"), Path("/usr"), Path("/tmp"), Path("/dev"), Path("/proc"), Path("/etc")}
    args: list[str] = []
    binds = [(Path(p).resolve(), "--ro-bind") for p in ro] + [(Path(p).resolve(), "--bind") for p in rw]
    for path, _ in binds:
        for anc in reversed(path.parents):
            if anc not in made:
                args += ["--perms", "0755", "--dir", str(anc)]
                made.add(anc)
    # a writable path inside a read-only one must be mounted after it
    for path, kind in sorted(binds, key=lambda b: len(b[0].parts)):
        args += [kind, str(path), str(path)]
    return args


_netns_holder: subprocess.Popen | None = None


def _shared_netns() -> str:
    """/proc/PID/ns/net of a process that holds an empty network namespace open for the jobs
    (making one per job costs ~3 ms; pf-sandbox-exec makes a fresh one if this is gone)."""
    global _netns_holder
    with _lock:
        if _netns_holder is None or _netns_holder.poll() is not None:
            _netns_holder = subprocess.Popen([str(_native_bin() / "pf-sandbox-exec"), "--hold-netns", "--parent",
                                              str(os.getpid())], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            _netns_holder.stdout.readline()      # "ok": the namespace exists
        return f"/proc/{_netns_holder.pid}/ns/net"


def _readable_by_others(p: Path) -> bool:
    try:
        mode = p.stat().st_mode
    except OSError:
        return True      # bwrap names a missing path itself
    need = 0o005 if p.is_dir() else 0o004
    return mode & need == need


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _require_tools() -> None:
    if os.geteuid() != 0:
        raise SandboxError("policyforge runs candidate code in a sandbox that needs root "
                           "(namespaces, cgroups, a uid of its own per job)")
    if shutil.which("bwrap") is None:
        raise SandboxError("bubblewrap (bwrap) is not installed: run `make deps`")


class Job:
    """One sandboxed process. ``run()`` is the usual way in; a Job is for callers that talk
    to the process while it runs (``binary=True`` gives raw stdin/stdout pipes)."""

    def __init__(self, argv: list[str], *, timeout_s: float = 60.0, cpu_s: float | None = None,
                 mem_mb: int = 2048, max_procs: int = 32, cwd: str | Path | None = None,
                 env: dict[str, str] | None = None, ro: Iterable[str | Path] = (),
                 rw: Iterable[str | Path] = (), profile: str = "run", tmp_mb: int = 64,
                 stdin_data: bytes | None = None, binary: bool = False, fsize_mb: int = 256):
        if _interrupted.is_set():
            raise Interrupted()
        _require_tools()
        self.argv, self.timeout_s, self.mem_mb, self.max_procs = argv, timeout_s, mem_mb, max_procs
        self.cpu_s = cpu_s if cpu_s is not None else timeout_s
        self.binary = binary
        seq = next(_counter)
        self.uid = UID_BASE + (os.getpid() % 100_000) * 1000 + seq % 1000
        self.killed_by_interrupt = False
        self._done = False
        self._early_err = bytearray()   # stderr read while talking to the job
        ro_paths = [Path(p) for p in ro] + [_native_bin()]
        rw_paths = [Path(p) for p in rw]
        prog = Path(argv[0])
        if prog.is_absolute() and not str(prog.resolve()).startswith("/usr/"):
            ro_paths.append(prog.resolve().parent)
        if cwd is not None and not any(Path(cwd).resolve().is_relative_to(p.resolve()) for p in ro_paths + rw_paths):
            ro_paths.append(Path(cwd))
        for p in ro_paths:
            if not _readable_by_others(p):
                raise SandboxError(f"{p} is not readable by other users (mode {oct(p.stat().st_mode & 0o777)}): "
                                   "the sandbox's jobs run as a uid of their own; use a directory with o+rx")
        for p in rw_paths:   # the job's to write; others (later jobs, the parent) may read
            os.chown(p, self.uid, self.uid)
            os.chmod(p, 0o755)
        self.cgroups = _JobCgroups(f"j{os.getpid()}-{seq}", max_procs, mem_mb)
        # with a memory cgroup the address-space limit is only a backstop: the cgroup's
        # OOM kill is what names "out of memory" (a failed malloc would read as SIGSEGV)
        as_mb = 4 * mem_mb + 1024 if self.cgroups.limits_memory else mem_mb
        outer = [str(_native_bin() / "pf-sandbox-exec"), "--parent", str(os.getpid())]
        for f in self.cgroups.procs_files:
            outer += ["--procs", f]
        outer += ["--rlimit", f"as={as_mb << 20}", "--rlimit", f"cpu={int(self.cpu_s) + 1}:{int(self.cpu_s) + 2}",
                  "--rlimit", f"fsize={fsize_mb << 20}", "--rlimit", "core=0", "--rlimit", "nofile=256"]
        if not self.cgroups.limits_pids:
            outer += ["--rlimit", f"nproc={max_procs}"]   # per uid, and the uid is this job's
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": "/tmp", "TMPDIR": "/tmp", **(env or {})}
        outer += ["--netns", _shared_netns()]
        bwrap = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv",
                 "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        for k, v in env.items():
            bwrap += ["--setenv", k, v]
        bwrap += _base_view() + ["--perms", "1777", "--size", str(tmp_mb << 20), "--tmpfs", "/tmp"]
        bwrap += _binds(ro_paths, rw_paths)
        if cwd is not None:
            bwrap += ["--chdir", str(Path(cwd).resolve())]
        # the inner step writes "ok" here just before it executes the job (see _result)
        self._ready_r, ready_w = os.pipe()
        inner = [str(_native_bin() / "pf-sandbox-exec"), "--inner", "--uid", str(self.uid),
                 "--gid", str(self.uid), "--seccomp", profile, "--ready-fd", str(ready_w), "--"]
        stdin = subprocess.DEVNULL
        if stdin_data is not None:
            fd = os.memfd_create("pf-stdin")
            os.write(fd, stdin_data)
            os.lseek(fd, 0, os.SEEK_SET)
            stdin = fd
        elif binary:
            stdin = subprocess.PIPE
        self.t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(outer + ["--"] + bwrap + ["--"] + inner + list(argv), stdin=stdin,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(ready_w,),
                                         bufsize=0)
        except (OSError, subprocess.SubprocessError) as e:
            self.cgroups.remove()          # a job that never started leaves no cgroup behind
            os.close(self._ready_r)
            raise SandboxError(f"cannot start the sandbox: {getattr(e, 'strerror', None) or e}") from None
        finally:
            os.close(ready_w)
            if stdin_data is not None:
                os.close(stdin)
        with _lock:
            _active.add(self)
        if _interrupted.is_set():  # interrupt() ran between the check above and now
            self.kill(by_interrupt=True)

    # --- talking to a running job (binary mode) ----------------------------------------------
    def deadline_left(self) -> float:
        return self.timeout_s - (time.monotonic() - self.t0)

    def send(self, data: bytes) -> bool:
        """Write to the job's stdin; False when the job is gone."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def receive(self, n: int) -> bytes | None:
        """Exactly n bytes of the job's stdout, or None if it ends or its time runs out first
        (its stderr is kept meanwhile, so a chatty job cannot block on a full pipe)."""
        out = bytearray()
        fds = {self.proc.stdout.fileno(): out, self.proc.stderr.fileno(): self._early_err}
        while len(out) < n:
            left = self.deadline_left()
            if left <= 0:
                return None
            ready, _, _ = select.select(list(fds), [], [], min(left, 0.5))
            for fd in ready:
                chunk = os.read(fd, n - len(out) if fd == self.proc.stdout.fileno() else 65536)
                if not chunk:
                    if fd == self.proc.stdout.fileno():
                        return None
                    fds.pop(fd)
                else:
                    fds[fd].extend(chunk)
        return bytes(out)

    def kill(self, by_interrupt: bool = False) -> None:
        if by_interrupt:
            self.killed_by_interrupt = True
        self.cgroups.kill()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # --- the end ---------------------------------------------------------------------------
    def finish(self, max_output: int = 1 << 20) -> SandboxResult:
        """Wait for the job (to its wall-clock limit), kill whatever is left of it, collect its
        output with a deadline, and say how it ended."""
        if self.binary and self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        out, err = bytearray(), self._early_err
        sel = selectors.DefaultSelector()
        for f, buf in ((self.proc.stdout, out), (self.proc.stderr, err)):
            os.set_blocking(f.fileno(), False)
            sel.register(f, selectors.EVENT_READ, buf)
        timed_out = False
        drain_until = None
        try:
            while sel.get_map():
                now = time.monotonic()
                if drain_until is None:
                    if self.proc.poll() is not None:
                        self.kill()            # the job's leftovers: its cgroup, its session
                        drain_until = now + OUTPUT_GRACE_S
                    elif now - self.t0 > self.timeout_s:
                        timed_out = True
                        self.kill()
                        drain_until = now + OUTPUT_GRACE_S
                elif now > drain_until:
                    break                      # someone still holds a pipe: stop listening
                wait = 0.05 if drain_until is None else max(0.0, min(0.05, drain_until - now))
                for key, _ in sel.select(wait):
                    try:
                        chunk = os.read(key.fileobj.fileno(), 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    key.data.extend(chunk)
                    if len(key.data) > 4 * max_output:   # keep the tail, bounded
                        del key.data[: len(key.data) - 2 * max_output]
        finally:
            sel.close()
            self.kill()
            self.proc.stdout.close()
            self.proc.stderr.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            refused = self.cgroups.fork_refusals()
            oom = self.cgroups.oom_killed()
            self.cgroups.remove()
            os.set_blocking(self._ready_r, False)
            try:
                self.started = os.read(self._ready_r, 16) == b"ok"
            except BlockingIOError:
                self.started = False
            os.close(self._ready_r)
            with _lock:
                _active.discard(self)
            self._done = True
        if self.killed_by_interrupt:
            raise Interrupted()
        return self._result(bytes(out[-max_output:]), err[-max_output:].decode(errors="replace"),
                            timed_out, refused, oom)

    def _result(self, out: bytes, err: str, timed_out: bool, refused: int, oom: bool) -> SandboxResult:
        wall = time.monotonic() - self.t0
        rc = self.proc.returncode
        reason = ""
        # bwrap reports a job killed by signal N as exit status 128 + N
        sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc is not None and 128 < rc < 128 + 65 else 0)
        if not self.started and not timed_out:
            # nothing of the job ran: the sandbox itself failed (bwrap or pf-sandbox-exec say why)
            line = next((ln for ln in err.splitlines() if ln.startswith(("bwrap:", "pf-sandbox-exec:"))),
                        err.strip().splitlines()[-1] if err.strip() else f"exit status {rc}")
            raise SandboxError(f"the sandbox could not start {Path(self.argv[0]).name}: {line}")
        if timed_out:
            reason = f"timeout after {self.timeout_s:g} s"
        elif rc == 127 and "pf-sandbox-exec: cannot execute" in err:
            reason = f"could not start {self.argv[0]}: " + err.strip().splitlines()[-1].split(": ")[-1]
        elif oom:
            reason = f"out of memory (limit {self.mem_mb} MB)"
        elif sig:
            reason = {signal.SIGXCPU: f"CPU limit ({self.cpu_s:g} s) exceeded",
                      signal.SIGKILL: "killed (SIGKILL)",
                      signal.SIGSYS: "killed by SIGSYS: a forbidden system call (seccomp)"}.get(
                          sig, f"killed by {_signal_name(sig)}")
        elif rc != 0:
            reason = f"exit status {rc}"
        low = err.lower()
        if reason and not oom and ("memoryerror" in low or "bad_alloc" in low
                                   or "cannot allocate memory" in low or "out of memory" in low):
            reason += " (out of memory)"
        if reason and (refused or "resource temporarily unavailable" in low):
            reason += f" (hit the limit of {self.max_procs} processes)"
        stdout: str | bytes = out if self.binary else out.decode(errors="replace")
        return SandboxResult(rc, stdout, err, wall, timed_out, reason, oom)

    def __enter__(self) -> "Job":
        return self

    def __exit__(self, *exc) -> None:
        if not self._done:
            self.kill()
            try:
                self.finish()
            except (Interrupted, SandboxError):
                pass


def run(argv: list[str], *, timeout_s: float = 60.0, cpu_s: float | None = None,
        mem_mb: int = 2048, max_procs: int = 32, cwd: str | Path | None = None,
        env: dict[str, str] | None = None, stdin: str | bytes | None = None,
        max_output: int = 1 << 20, ro: Iterable[str | Path] = (), rw: Iterable[str | Path] = (),
        profile: str = "run", tmp_mb: int = 64, fsize_mb: int = 256) -> SandboxResult:
    """Run ``argv`` in the sandbox and wait for it. Never raises for the job's misbehaviour;
    raises :class:`Interrupted` after :func:`interrupt`, and :class:`SandboxError` when the
    sandbox cannot work at all or the program is missing (the machine's problem, not a
    candidate's).

    ``ro`` / ``rw``: paths the job sees read-only / writable (writable ones are handed to the
    job's uid). The job's program directory and ``cwd`` are added read-only when needed.
    ``profile``: "build" for compilers, "run" for everything else (see native/sandbox)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    _require_tools()
    prog = Path(argv[0])
    if prog.is_absolute() and not prog.exists():
        raise SandboxError(f"{argv[0]} does not exist")
    if not prog.is_absolute() and shutil.which(argv[0]) is None:
        raise SandboxError(f"{argv[0]} is not installed: run `make deps`")
    job = Job(argv, timeout_s=timeout_s, cpu_s=cpu_s, mem_mb=mem_mb, max_procs=max_procs, cwd=cwd,
              env=env, ro=ro, rw=rw, profile=profile, tmp_mb=tmp_mb, stdin_data=data, fsize_mb=fsize_mb)
    return job.finish(max_output)


def interrupt() -> None:
    """Kill every running job and make every later one raise :class:`Interrupted`."""
    _interrupted.set()
    with _lock:
        jobs = list(_active)
    for job in jobs:
        job.kill(by_interrupt=True)


def reset_interrupt() -> None:
    """For a process that goes on after an interrupted run (tests)."""
    _interrupted.clear()

