"""Where checks and evaluations run: this process's threads (`local`) or a Ray cluster (`ray`).

The unit of work is one check, or one (candidate, workload) evaluation, or one workload's
baselines. The controller's worker threads call an executor and block on the answer; with
Ray, each call is a Ray task that any node with the task's resources may run, so `--workers`
is how many candidates are in flight (set it to the cluster's CPU count).

Nothing relies on a shared file system. A Ray task carries the candidate's source text and
the task's options; files named by options (traces, load logs, link traces) travel once
through Ray's object store and land in a per-node cache keyed by their SHA-256. On its node a
task is prepared once (per options, under a file lock) and a candidate is compiled once per
worker process (checking is deterministic: the controller relies on that to resume), so a
compiled artifact never has to leave the node that built it. The SQLite store stays with the
driver, written exactly as with the local executor: `--resume` works whatever the executor.
Every check and evaluation on a worker goes through the same Task methods, hence through the
same sandbox (policyforge.sandbox) and limits as locally.

Faults: a Ray task lost to infrastructure (its worker process or its whole node died, an
object was lost) is submitted again, up to MAX_LOST times, and counted in the evaluation's
metrics (`executor_retries`) and in run.log. A candidate whose evaluation crashes its worker
twice while every node stays alive, or that Ray's memory monitor kills, is the candidate's
failure, never retried again.
"""
from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import os
import pickle
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from .. import tasks
from ..task import Baseline, CheckOutcome, Evaluation, Task, TaskError

MAX_LOST = 5             # infrastructure losses of one unit of work before the run gives up
MAX_CRASHES = 2          # worker crashes on live nodes before the candidate is blamed


class ExecutorError(Exception):
    """The executor cannot work (Ray missing, cluster unreachable, a unit lost too often)."""


@dataclasses.dataclass
class TaskSpec:
    """What a remote worker needs to rebuild the driver's task for one workload: its name and
    its options (file-valued options replaced by content references), and the run it serves
    (compiled checks are kept per run: a candidate is never reused across builds)."""
    name: str
    options: dict[str, Any]
    run: str = ""


@functools.lru_cache(maxsize=1)
def _build_id() -> str:
    """This node's policyforge build: its prepared workloads are reused only by the same build."""
    from .. import __version__
    from ..native import native_dir
    try:
        stamp = max((p.stat().st_mtime_ns for p in native_dir().rglob("*") if p.is_file()), default=0)
    except (OSError, TaskError):
        stamp = 0
    return f"{__version__}-{stamp}"


class LocalExecutor:
    """Today's behaviour: the controller's threads call the task directly."""
    name = "local"

    def __init__(self, log: Callable[[str], None] = print):
        self.log = log

    def check(self, task: Task, spec: TaskSpec, source: str, workdir: Path, evaluate: bool = False,
              best: float | None = None) -> CheckOutcome:
        return task.check(source, workdir)

    def evaluate(self, task: Task, spec: TaskSpec, source: str, check: CheckOutcome, workdir: Path,
                 best: float | None) -> Evaluation:
        return task.evaluate(check, workdir, best)

    def verify(self, task: Task, spec: TaskSpec, source: str, check: CheckOutcome, workdir: Path,
               evaluation: Evaluation) -> Evaluation:
        return task.verify(check, workdir, evaluation)

    def baselines(self, task: Task, spec: TaskSpec, shared: Path) -> list[Baseline]:
        return task.baselines(shared)

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- Ray ------------------------------------------------------------------------------------
def _node_cache() -> Path:
    """This node's cache of prepared workloads, shipped files and compiled candidates."""
    root = Path(os.environ.get("POLICYFORGE_RAY_CACHE") or Path(tempfile.gettempdir()) / "policyforge-ray")
    root.mkdir(parents=True, exist_ok=True)
    return root


_prepared: dict[str, Task] = {}            # per worker process: options hash -> prepared task
_checked: dict[tuple[str, str, str], CheckOutcome] = {}   # (run, options hash, source hash) -> check
_lock = threading.Lock()


def _materialize(options: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """Options with shipped files written into this node's cache (once per content hash)."""
    import ray
    out = dict(options)
    for key, (digest, name, ref) in files.items():
        path = _node_cache() / "files" / digest / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.{os.getpid()}")
            tmp.write_bytes(ray.get(ref))
            tmp.replace(path)
        out[key] = str(path)
    return out


def _task_on_node(spec: TaskSpec, files: dict[str, Any]) -> tuple[str, Task]:
    key = hashlib.sha256(repr((spec.name, sorted(spec.options.items()), sorted((k, v[0]) for k, v in files.items()),
                               _build_id())).encode()).hexdigest()[:16]
    with _lock:
        if key in _prepared:
            return key, _prepared[key]
        task = tasks.load(spec.name, **_materialize(spec.options, files))
        shared = _node_cache() / "prepared" / key
        shared.mkdir(parents=True, exist_ok=True)
        with open(shared / ".lock", "w") as lk:      # one preparation per node at a time
            fcntl.flock(lk, fcntl.LOCK_EX)
            task.prepare(shared)
        _prepared[key] = task
        return key, task


def _check_on_node(key: str, task: Task, source: str, run: str) -> CheckOutcome:
    """The candidate's check on this node: compiled once per node (any worker process of the
    node reuses it), so a check unit and the evaluation units after it cost one compile."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    with _lock:
        hit = _checked.get((run, key, digest))
    if hit is not None and (hit.artifact is None or hit.artifact.exists()):
        return hit
    home = _node_cache() / "checks" / run / key
    home.mkdir(parents=True, exist_ok=True)
    saved = home / f"{digest}.pickle"        # beside the work dir, which the sandbox may write
    with open(home / f"{digest}.lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)       # one compile per node; the others wait and reuse it
        check = None
        if saved.exists():
            check = pickle.loads(saved.read_bytes())
            if check.artifact is not None and not check.artifact.exists():
                check = None
        if check is None:
            work = home / digest
            if work.exists():
                shutil.rmtree(work)
            work.mkdir()
            check = task.check(source, work)
            tmp = saved.with_suffix(f".{os.getpid()}")
            tmp.write_bytes(pickle.dumps(check))
            tmp.replace(saved)
    with _lock:
        _checked[(run, key, digest)] = check
    return check


def _remote_job(kind: str, spec: TaskSpec, files: dict[str, Any], source: str, best: float | None,
                evaluation: Evaluation | None) -> Any:
    """One unit of work on a Ray worker (module-level: Ray pickles it by reference)."""
    key, task = _task_on_node(spec, files)
    if kind == "baselines":
        return task.baselines(_node_cache() / "prepared" / key)
    check = _check_on_node(key, task, source, spec.run)
    work = check.artifact.parent if check.artifact else _node_cache() / "checks"
    if kind in ("check", "check_evaluate"):
        import ray
        out = dataclasses.replace(check, artifact=None, info={k: v for k, v in check.info.items()
                                                              if isinstance(v, (str, int, float, bool))})
        out.info["ray_node"] = ray.get_runtime_context().get_node_id()   # later units prefer this node
        if kind == "check_evaluate" and check.ok:    # the evaluation that always follows a passing check
            out.info["ray_evaluation"] = task.evaluate(check, work, best)
        return out
    if not check.ok:
        return Evaluation(False, None, reason=f"invalid: the check failed on the worker ({check.stage})")
    if kind == "evaluate":
        return task.evaluate(check, work, best)
    if kind == "verify":
        return task.verify(check, work, evaluation)
    raise ValueError(kind)


class RayExecutor:
    """Units of work as Ray tasks on a cluster (`address`), or on a local Ray started here."""
    name = "ray"

    def __init__(self, address: str | None, log: Callable[[str], None] = print, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise ExecutorError("--executor ray needs Ray: pip install 'policyforge[ray]'") from None
        self.ray = ray
        self.log = log
        if address:
            check_address(address)
        try:
            if address:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False, ignore_reinit_error=True)
            else:
                # a Ray on this machine: it offers what this machine can do (the driver's own
                # tasks, cc included, prepare here too)
                ray.init(num_cpus=num_cpus, logging_level="ERROR", log_to_driver=False, include_dashboard=False,
                         ignore_reinit_error=True, resources={"netns_struct_ops": 1})
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ExecutorError(f"cannot reach the Ray cluster at {address or 'a local Ray'}: "
                                f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
        self._job = ray.remote(_remote_job)
        self._files: dict[str, tuple[str, str, Any]] = {}     # driver path -> (sha256, name, ObjectRef)
        self._outstanding: set = set()
        self._guard = threading.Lock()
        self.retries = 0
        self.run = os.urandom(8).hex()           # this executor's compiled checks, on every node
        self._alive, self._alive_at = 0, -1e9
        self._checked_resources: set[str] = set()

    # what a task needs from a node, as Ray resources (cc: namespaces + struct_ops; GPU: CUDA)
    @staticmethod
    def _resources(task: Task) -> dict[str, Any]:
        need = dict(task.ray_resources())
        opts: dict[str, Any] = {"num_cpus": need.pop("num_cpus", 1)}
        if "num_gpus" in need:
            opts["num_gpus"] = need.pop("num_gpus")
        if need:
            opts["resources"] = need
        return opts

    def _feasible(self, opts: dict[str, Any]) -> None:
        """A unit that no node of the cluster can run would wait forever: say which resource
        is missing instead (once per resource set)."""
        key = repr(sorted((opts.get("resources") or {}).items())) + repr(opts.get("num_gpus"))
        if key in self._checked_resources:
            return
        have = self.ray.cluster_resources()
        missing = [r for r in (opts.get("resources") or {}) if have.get(r, 0) <= 0]
        if opts.get("num_gpus") and have.get("GPU", 0) <= 0:
            missing.append("GPU")
        if missing:
            raise ExecutorError(f"no node of the Ray cluster offers {', '.join(missing)}: start the nodes that can "
                                f"run this task with ray start --resources '{{\"{missing[0]}\": 1}}'")
        self._checked_resources.add(key)

    def _ship(self, spec: TaskSpec) -> tuple[TaskSpec, dict[str, Any]]:
        """File-valued options travel through the object store, once per file."""
        files, opts = {}, {}
        for k, v in spec.options.items():
            if isinstance(v, str) and v and Path(v).is_file():
                p = str(Path(v).resolve())
                with self._guard:
                    if p not in self._files:
                        data = Path(p).read_bytes()
                        self._files[p] = (hashlib.sha256(data).hexdigest(), Path(p).name, self.ray.put(data))
                    files[k] = self._files[p]
            else:
                opts[k] = v
        return TaskSpec(spec.name, opts, self.run), files

    def _call(self, task: Task, kind: str, spec: TaskSpec, source: str = "", best: float | None = None,
              evaluation: Evaluation | None = None, node: str | None = None) -> tuple[Any, int]:
        """Run one unit of work; resubmit it when infrastructure lost it. Returns (result,
        retries)."""
        ray = self.ray
        rspec, files = self._ship(spec)
        lost = crashes = 0
        while True:
            alive = self._alive_nodes()
            opts = self._resources(task)
            self._feasible(opts)
            if node:       # where the candidate was compiled, if that node has room (soft)
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
                opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node, soft=True)
            ref = self._job.options(max_retries=0, **opts).remote(kind, rspec, files, source, best, evaluation)
            with self._guard:
                self._outstanding.add(ref)
            try:
                return ray.get(ref), lost + crashes
            except ray.exceptions.TaskCancelledError:
                raise KeyboardInterrupt from None
            except ray.exceptions.RayTaskError as e:     # the task raised on the worker
                cause = getattr(e, "cause", None)
                if isinstance(cause, TaskError):           # the user's problem (a bad option): one line
                    raise TaskError(str(cause)) from None
                raise ExecutorError(f"a {kind} failed on a Ray worker: {type(cause).__name__ if cause else ''} "
                                    f"{str(cause or e).strip().splitlines()[-1] if str(cause or e).strip() else ''}") from None
            except ray.exceptions.OutOfMemoryError:
                return Evaluation(False, None, reason="memory: Ray's memory monitor killed its worker"), lost + crashes
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.ObjectLostError, ray.exceptions.RaySystemError,
                    ray.exceptions.LocalRayletDiedError) as e:
                node_lost = isinstance(e, ray.exceptions.NodeDiedError) or self._alive_nodes(fresh=True) < alive
                if not node_lost and isinstance(e, ray.exceptions.WorkerCrashedError) and kind != "baselines":
                    crashes += 1
                    if crashes >= MAX_CRASHES:
                        return Evaluation(False, None, reason="crash: the candidate killed its worker process "
                                                              f"{crashes} times"), lost + crashes
                else:
                    lost += 1
                if lost > MAX_LOST:
                    raise ExecutorError(f"a {kind} was lost {lost} times: {type(e).__name__}") from None
                with self._guard:
                    self.retries += 1
                self.log(f"{kind} lost ({type(e).__name__}{': node died' if node_lost else ''}); "
                         f"retrying on another worker")
            finally:
                with self._guard:
                    self._outstanding.discard(ref)

    def _alive_nodes(self, fresh: bool = False) -> int:
        """Live nodes, from the GCS at most every 2 s (or now, after a failure)."""
        import time
        now = time.monotonic()
        if fresh or now - self._alive_at > 2.0:
            try:
                self._alive = sum(1 for n in self.ray.nodes() if n.get("Alive"))
            except Exception:    # the GCS is briefly unavailable: compare nothing
                self._alive = 0
            self._alive_at = now
        return self._alive

    def check(self, task, spec, source, workdir, evaluate=False, best=None):
        """The check; with `evaluate`, the unit also evaluates a candidate that passes (one
        round trip instead of two: the controller always evaluates a passing check)."""
        out, retries = self._call(task, "check_evaluate" if evaluate else "check", spec, source, best)
        if isinstance(out, Evaluation):          # the candidate took its worker down while compiling
            return CheckOutcome(False, "crash", out.reason)
        if retries and "ray_evaluation" in out.info:
            ev = out.info["ray_evaluation"]
            out.info["ray_evaluation"] = dataclasses.replace(ev, metrics={**ev.metrics, "executor_retries": retries})
        return out

    def evaluate(self, task, spec, source, check, workdir, best):
        if "ray_evaluation" in check.info:       # evaluated with its check
            return check.info.pop("ray_evaluation")
        ev, retries = self._call(task, "evaluate", spec, source, best, node=check.info.get("ray_node"))
        if retries:
            ev = dataclasses.replace(ev, metrics={**ev.metrics, "executor_retries": retries})
        return ev

    def verify(self, task, spec, source, check, workdir, evaluation):
        ev, retries = self._call(task, "verify", spec, source, None, evaluation, node=check.info.get("ray_node"))
        if retries:
            ev = dataclasses.replace(ev, metrics={**ev.metrics, "executor_retries":
                                                  evaluation.metrics.get("executor_retries", 0) + retries})
        return ev

    def baselines(self, task, spec, shared):
        out, _ = self._call(task, "baselines", spec)
        return out

    def cancel(self) -> None:
        """Ctrl-C: cancel every outstanding Ray task (their sandboxed children die with them)."""
        with self._guard:
            refs = list(self._outstanding)
        for ref in refs:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:
                pass

    def close(self) -> None:
        try:
            self.ray.shutdown()
        except Exception:
            pass


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """A Ray cluster address answers on TCP (ray.init would wait minutes for one that does not)."""
    import socket
    host, _, port = address.replace("ray://", "").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except ValueError:
        raise ExecutorError(f"--ray-address {address} is not HOST:PORT") from None
    except OSError as e:
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def make(name: str, address: str | None = None, log: Callable[[str], None] = print, workers: int = 2):
    if name == "local":
        return LocalExecutor(log)
    if name == "ray":
        return RayExecutor(address, log, num_cpus=None if address else workers)
    raise TaskError(f"unknown executor '{name}' (local, ray)")
