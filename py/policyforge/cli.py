"""policyforge command line.

    policyforge run TASK [--generator offline|openai|replay] [--rounds N] ...
    policyforge runs list|show|best|export
    policyforge check TASK FILE      compile + verify one hand-written policy
    policyforge eval TASK FILE       evaluate one policy against the baselines
    policyforge tasks                list tasks and their options
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from . import tasks
from .search.controller import Controller, DiskFull, RunConfig, disk_error, make_generator
from .search.database import RunLock, Store, StoreError
from .search.executor import ExecutorError, check_address
from .search.report import gap_text, margin_text
from .search.generators import GeneratorError
from .search.suite import Suite, load_suite, suite_from_options
from .task import TaskError, number


class UsageError(Exception):
    pass


class RunFailed(Exception):
    """The run could not do its work (the generator failed, the disk filled): exit 1."""


def _pairs(items: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"option '{it}' is not KEY=VALUE")
        k, v = it.split("=", 1)
        out.append((k.strip().replace("-", "_"), v))
    return out


def _kv(items: list[str] | None) -> dict[str, str]:
    return dict(_pairs(items))


def _models(items: list[str] | None) -> list[tuple[str, float]]:
    out = []
    for it in items or []:
        name, _, w = it.partition(":")
        try:
            out.append((name, float(w) if w else 1.0))
        except ValueError:
            raise UsageError(f"--model {it}: weight must be a number (NAME[:WEIGHT])") from None
    return out


def _prices(items: list[str] | None) -> dict[str, tuple[float, float]]:
    out = {}
    for it in items or []:
        try:
            name, pr = it.split("=", 1)
            pin, pout = pr.split("/", 1)
            out[name] = (float(pin), float(pout))
        except ValueError:
            raise UsageError(f"--price {it}: expected MODEL=IN/OUT (USD per million tokens)") from None
    return out


def _print_table(summary: dict) -> None:
    w = summary["winner"]
    suite = summary.get("suite")
    label = f"suite score ({suite['aggregate']} over {len(suite['train'])} train workloads)" if suite \
        else summary["score_label"]
    shown = summary.get("shown_label") or ""      # e.g. the cache task speaks miss ratio
    rows = []
    if w:
        rows.append((f"WINNER (cand {w['id']}, {w['generator']})", w["score"], w.get("shown")))
    for name, b in summary["baselines"].items():
        rows.append((name if b["ranked"] else f"{name} (bound)", b["score"], b.get("shown")))
    rows.sort(key=lambda r: -(r[1] if r[1] is not None else -1e300))
    head = f"{shown:<30} {label}" if shown else label
    print(f"\n{'policy':<36} {head}")
    print("-" * (37 + len(head)))
    for name, score, value in rows:
        s = "failed" if score is None else f"{score:.6f}"
        if shown:
            s = f"{'failed' if value is None else format(value, '.6f'):<30} {s}"
        print(f"{name:<36} {s}")
    if w:
        n = len(summary["ranked_baselines"])
        print(f"\nwinner beats {len(summary['beats'])} of {n} ranked baselines"
              + (" (all)" if summary["beats_all"] else "") + (" on the suite score" if suite else ""))
        if summary.get("gap"):
            print(f"winner {gap_text(summary['gap'])}")
        if summary.get("margin"):
            print(f"winner {margin_text(summary['margin'])}")
    if suite:
        for r in suite["train"]:
            c = r["candidates"].get("winner", {})
            print(f"  train    {r['workload']:<32} beats {c.get('beaten', 0)} of {c.get('ranked', 0)}")
        for r in suite.get("heldout", []):
            c = r["candidates"].get(suite["winner_label"], {})
            print(f"  held-out {r['workload']:<32} beats {c.get('beaten', 0)} of {c.get('ranked', 0)}")
        if "heldout" in suite:
            print(f"winner beats every ranked baseline on {suite['heldout_wins']} of {suite['heldout_n']} "
                  "held-out workloads")


# options of `run` that a resumed run takes from its store (it continues the same search)
FIXED_ON_RESUME = ("generator", "model", "price", "replay", "candidates_per_round", "seed", "budget_usd",
                   "repairs", "islands", "option", "out", "model_choice", "suite", "elites", "refine")
# the defaults of the search's numbers are RunConfig's: one place
DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)
            if f.name in ("rounds", "candidates_per_round", "workers", "seed", "repairs", "islands", "elites",
                          "refine")}


def _stored_config(run: Path) -> RunConfig:
    store = Store.open(run / "store.sqlite", readonly=True)
    try:
        return RunConfig.from_json(store.meta("config"))
    except (TypeError, ValueError, AttributeError) as e:
        raise StoreError(f"{run}/store.sqlite holds an unreadable run configuration: {e}") from None
    finally:
        store.close()


def _new_config(a: argparse.Namespace) -> RunConfig:
    if not a.task:
        raise UsageError("run needs a TASK (or --resume RUN)")
    gen = a.generator or ("openai" if os.environ.get("OPENAI_API_KEY") else "offline")
    if gen == "replay" and not a.replay:
        raise UsageError("--generator replay needs --replay FILE")
    value = {k: (getattr(a, k) if getattr(a, k) is not None else d) for k, d in DEFAULTS.items()}
    options, suite = suite_from_options(_pairs(a.option))   # repeated -o: a suite
    if a.suite:
        if suite:
            raise UsageError("give the workloads in --suite FILE or with repeated -o, not both")
        from_file, suite = load_suite(a.suite)
        options = {**from_file, **options}                  # -o overrides the file's [options]
    return RunConfig(task=a.task, task_options=options, suite=suite.to_json() if suite else None,
                     executor=a.executor or "local", ray_address=a.ray_address,
                     generator=gen, models=_models(a.model),
                     budget_usd=a.budget_usd, replay_file=str(Path(a.replay).resolve()) if a.replay else None,
                     prices=_prices(a.price), model_choice=a.model_choice or "weights", **value)


def _created_dirs(path: Path) -> list[Path]:
    """The directories that creating `path` makes, deepest first."""
    out = []
    p = path.absolute()
    while not p.exists():
        out.append(p)
        p = p.parent
    return out


def _remove_created(out: Path, before: set[str], made: list[Path]) -> None:
    """Undo a run that failed before storing anything: the entries of `out` that were not
    there before it started, then the directories it made if they are empty. Nothing else:
    the tool never deletes what it did not create."""
    for name in set(os.listdir(out)) - before:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    for d in made:
        try:
            d.rmdir()
        except OSError:
            break


def _stored_anything(out: Path) -> bool:
    try:
        store = Store.open(out / "store.sqlite", readonly=True)
        try:
            return bool(store.candidates() or store.baselines())
        finally:
            store.close()
    except (StoreError, sqlite3.Error):
        return False


def cmd_run(a: argparse.Namespace) -> int:
    if a.resume:
        out = Path(a.resume)
        given = [k for k in FIXED_ON_RESUME if getattr(a, k) is not None and getattr(a, k) is not False
                 and getattr(a, k) != []]          # (--elites 0 is given, though 0 == False)
        if given:
            raise UsageError(f"--resume continues the stored run as it was configured; "
                             f"drop --{given[0].replace('_', '-')}")
        if not (out / "store.sqlite").is_file():
            raise UsageError(f"{out} holds no run to resume (no store.sqlite)")
        cfg = _stored_config(out)
        if a.task and a.task != cfg.task:
            raise UsageError(f"{out} is a run of task {cfg.task}, not {a.task}")
        if a.rounds is not None:
            cfg.rounds = a.rounds
        if a.workers is not None:
            cfg.workers = a.workers
        if a.executor is not None:           # the store is the same whatever the executor
            cfg.executor, cfg.ray_address = a.executor, a.ray_address
        fresh = False
    else:
        cfg = _new_config(a)
        out = Path(a.out) if a.out else Path("runs") / f"{a.task}-{time.strftime('%Y%m%d-%H%M%S')}"
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} exists and is not a directory")
        fresh = True
    # everything a user can get wrong is refused before anything is created
    suite = Suite.from_json(cfg.suite) if cfg.suite else None
    for w in (suite.workloads[1:] if suite else []):      # every workload's options are valid
        try:
            tasks.load(cfg.task, **{**cfg.task_options, **w.options})
        except TaskError as e:
            raise TaskError(f"workload {w.name}: {e}") from None
    task = tasks.load(cfg.task, **{**cfg.task_options, **(suite.train[0].options if suite else {})})
    if cfg.ray_address and cfg.executor != "ray":
        raise UsageError("--ray-address needs --executor ray")
    if cfg.executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("--executor ray needs Ray: pip install 'policyforge[ray]'") from None
        if cfg.ray_address:
            check_address(cfg.ray_address)      # before anything is created
    generator = make_generator(cfg)
    made = _created_dirs(out)
    out.mkdir(parents=True, exist_ok=True)
    had_lock_file = (out / RunLock.NAME).exists()
    lock = RunLock(out).acquire()            # a second process gets one line naming the holder
    try:
        before = set(os.listdir(out)) - ({RunLock.NAME} if not had_lock_file else set())
        if fresh and (out / "store.sqlite").exists():
            raise UsageError(f"{out} already holds a run: continue it with --resume {out}, "
                             "or choose another --out")
        if not fresh:
            print(f"resuming {out}", file=sys.stderr)
        t0 = time.monotonic()
        try:
            ctl = Controller(out, cfg, task=task, generator=generator, quiet=a.quiet, lock=lock)
            result = ctl.run()
        except Exception as e:
            if fresh and not _stored_anything(out):
                _remove_created(out, before, made)      # leave no empty run behind
            elif disk_error(e) or isinstance(e, DiskFull):
                raise RunFailed(f"no space left for {out} ({e}); what is stored is intact: free some "
                                f"space, then continue with --resume {out}") from None
            raise
        from .search.report import write_report
        summary = write_report(out, ctl.store, ctl.task, command=" ".join(shlex.quote(x) for x in sys.argv))
    finally:
        lock.release()
    _print_table(summary)
    print(f"\nreport: {out / 'report.html'}\nbest:   {out / 'best.json'}")
    if summary.get("export", {}).get("usage"):
        print(f"deploy: {summary['export']['usage'].splitlines()[0]}")
    print(f"time:   {time.monotonic() - t0:.1f}s")
    if fresh and a.generator is None and cfg.generator == "offline":
        # said at the end, where a failed start would not print it beside its one error line
        print("policyforge: no OPENAI_API_KEY set: used the offline generator "
              "(program search, no network)", file=sys.stderr)
    if result["generator_error"]:
        what = "proposed nothing" if not result["generated"] else f"stopped after {result['generated']} proposals"
        raise RunFailed(f"the generator {what}: {result['generator_error']}; "
                        f"continue with --resume {out} once it works")
    if result["stop_reason"]:
        print(f"stopped early: {result['stop_reason']}", file=sys.stderr)
    if summary.get("export", {}).get("error"):
        raise RunFailed(f"the winner was not exported: {summary['export']['error']}")
    if not summary["winner"]:
        raise RunFailed("no candidate was scored (see the table and run.log)")
    return 0


def _find_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/store.sqlite"))


def cmd_runs(a: argparse.Namespace) -> int:
    if a.action == "list":
        runs = _find_runs(Path(a.root))
        if not runs:
            print(f"no runs under {a.root}")
            return 0
        print(f"{'run':<40} {'task':<8} {'gen':<8} {'cands':>5} {'best':>10}")
        bad = 0
        for r in runs:
            try:   # one unreadable store is marked; the others still list
                st = Store.open(r / "store.sqlite", readonly=True)
                cfg = st.meta("config") or {}
                best = st.best()
                print(f"{str(r):<40} {cfg.get('task', '?'):<8} {cfg.get('generator', '?'):<8} "
                      f"{len(st.candidates()):>5} {best['score'] if best else float('nan'):>10.6f}")
                st.close()
            except (StoreError, sqlite3.Error) as e:
                bad += 1
                print(f"{str(r):<40} (unreadable: {' '.join(str(e).split())[:80]})")
        return 1 if bad else 0
    if not a.run:
        raise UsageError(f"runs {a.action} needs a RUN directory")
    run = Path(a.run)
    st = Store.open(run / "store.sqlite", readonly=True)
    if a.action == "show":
        cfg = st.meta("config")
        print(json.dumps(cfg, indent=2))
        print(f"{'id':>5} {'round':<4} {'status':<13} {'score':>10} {'operation':<18} {'repairs':>7}  reason")
        for c in st.candidates():
            sc = "" if c["score"] is None else f"{c['score']:.6f}"
            print(f"{c['id']:5d} r{c['round']:<3} {c['status']:<13} {sc:>10} {c['operation']:<18} {c['repairs']:>7}  "
                  f"{c['reason'][:60]}")
        from .search.report import attempt_stats
        at = attempt_stats(st)
        if at["candidates"]:
            pct = lambda x: "-" if x is None else f"{100 * x:.0f} %"   # noqa: E731
            print(f"\n{at['candidates']} generated: {pct(at['first_try_pass_rate'])} passed the checker on the first "
                  f"try, {pct(at['pass_rate_after_repairs'])} after repairs")
        return 0
    best = st.best()
    if best is None:
        raise UsageError(f"{run} has no scored candidate yet")
    if a.action == "best":
        print(f"# candidate {best['id']} (round {best['round']}), score {best['score']:.6f}")
        print(best["source"])
        return 0
    if a.action == "export":
        cfg = _stored_config(run)
        task = tasks.load(cfg.task, **cfg.task_options)
        dest = Path(a.out or (run / "winner"))
        with RunLock(run), _workdir("pf-export-", keep=False) as work:   # not while a run writes it
            check = task.check(best["source"], work)
            if not check.ok:
                raise TaskError(f"the winner no longer passes the check ({check.stage}): "
                                f"{check.feedback.strip().splitlines()[0][:200]}")
            dest.mkdir(parents=True, exist_ok=True)
            info = task.export(best["source"], check, dest)
        for f in info.get("files", []):
            print(f)
        if info.get("usage"):
            print(info["usage"])
        return 0
    raise UsageError(f"unknown runs action {a.action}")


class _workdir:
    """A fresh temporary directory of ours (the sandbox's jobs, their own uids, may enter it),
    removed when the command ends unless `keep` (--keep): a compiled cc candidate is ~5 MB, an
    EPLB evaluation ~100 MB."""

    def __init__(self, prefix: str, keep: bool):
        self.prefix, self.keep = prefix, keep

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.path.chmod(0o755)
        return self.path

    def __exit__(self, *exc) -> None:
        if self.keep:
            print(f"kept: {self.path}", file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def _read_policy(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text file") from None


def cmd_check(a: argparse.Namespace) -> int:
    task = tasks.load(a.task, **_kv(a.option))
    source = _read_policy(a.file)
    with _workdir(f"pf-check-{task.name}-", a.keep) as work:
        task.prepare(work / "shared")
        out = task.check(source, work)
    if out.ok:
        print(f"ok: {a.file} passes every check of task {task.name} ({out.seconds:.2f}s)")
        return 0
    print(f"FAILED at stage '{out.stage}':\n{out.feedback.rstrip()}")
    return 1


def cmd_eval(a: argparse.Namespace) -> int:
    task = tasks.load(a.task, **_kv(a.option))
    source = _read_policy(a.file)
    if a.traces and not task.supports_transfer:
        raise UsageError(f"task {task.name} does not evaluate across --traces")
    if a.traces and not Path(a.traces).is_dir():
        raise UsageError(f"--traces {a.traces} is not a directory")
    with _workdir(f"pf-eval-{task.name}-", a.keep) as work:
        return _eval(a, task, source, work)


def _eval(a: argparse.Namespace, task, source: str, work: Path) -> int:
    shared = work / "shared"
    shared.mkdir(parents=True)
    task.prepare(shared)
    if a.traces:
        result = task.transfer(source, Path(a.traces), work)
        print(json.dumps(result, indent=2, default=str) if a.json else result.get("text", json.dumps(result, indent=2)))
        return 0
    check = task.check(source, work)
    if not check.ok:
        print(f"FAILED at stage '{check.stage}':\n{check.feedback.rstrip()}")
        return 1
    ev = task.evaluate(check, work, None)
    if ev.ok and ev.stage == "full":
        ev = task.verify(check, work, ev)   # a score shown to a user holds up in trusted code
    base = [] if a.no_baselines else task.baselines(shared)
    if a.json:
        print(json.dumps({"policy": {"ok": ev.ok, "score": ev.score, "metrics": ev.metrics, "reason": ev.reason},
                          "baselines": {b.name: {"score": b.evaluation.score, "ranked": b.ranked,
                                                 "metrics": b.evaluation.metrics} for b in base}},
                         indent=2, default=str))
        return 0 if ev.ok else 1
    if not ev.ok:
        print(f"evaluation failed: {ev.reason}")
        return 1
    rows = [(Path(a.file).name, ev.score, True)] + [(b.name, b.evaluation.score, b.ranked) for b in base]
    rows.sort(key=lambda r: -(r[1] if r[1] is not None else -1e300))
    shown = task.shown_label
    print(f"{'policy':<28} " + (f"{shown:<30} " if shown else "") + task.score_label)
    for name, score, ranked in rows:
        value = "failed" if score is None else f"{score:.6f}"
        if shown:
            value = f"{'failed' if score is None else format(task.shown(score), '.6f'):<30} {value}"
        print(f"{name + ('' if ranked else ' (bound)'):<28} {value}")
    from .search.report import beaten
    beats, ranked = beaten(ev.score, [(b.name, b.evaluation.score if b.evaluation.ok else None, b.ranked)
                                      for b in base])
    if ranked:
        print(f"\n{Path(a.file).name} beats {len(beats)} of {len(ranked)} ranked baselines")
    return 0


def cmd_tasks(a: argparse.Namespace) -> int:
    for name in tasks.available():
        try:
            t = tasks.load(name)
        except Exception as e:  # a task whose native part is missing still lists
            print(f"{name}: (unavailable: {e})")
            continue
        print(f"{name}: {t.title}")
        for o in t.options:
            print(f"    -o {o.name}={o.default!s:<14} {o.help}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (the usage is one --help away) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        # argparse drops a value of exactly "--" (`--budget-usd=--` would leave the default)
        for a in (sys.argv[1:] if args is None else args):
            if a.startswith("--") and a.endswith("=--"):
                self.error(f"argument {a.split('=', 1)[0]}: '--' is not a value")
        return super().parse_args(args, namespace)


def _arg(kind=int, **bounds):
    """An argparse type: a number within bounds, its error saying which bound."""
    parse = number(kind, **bounds)

    def conv(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    conv.__name__ = kind.__name__
    return conv


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="policyforge", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks of internal errors")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="synthesize a policy for TASK")
    r.add_argument("task", nargs="?")
    r.add_argument("--generator", choices=["offline", "openai", "replay"],
                   help="default: openai when OPENAI_API_KEY is set, else offline")
    r.add_argument("--model", action="append", metavar="NAME[:WEIGHT]", help="chat model (repeat for an ensemble)")
    r.add_argument("--price", action="append", metavar="MODEL=IN/OUT", help="USD per million tokens")
    r.add_argument("--model-choice", choices=["weights", "ucb"],
                   help="how each call picks a --model: by the fixed weights (default), or by the improvement per "
                        "dollar each model has shown in this run (UCB1; restored exactly on resume)")
    r.add_argument("--replay", metavar="FILE", help="JSONL of recorded responses (--generator replay)")
    r.add_argument("--rounds", type=_arg(int, min=0), help=f"rounds after the seeds (default {DEFAULTS['rounds']})")
    r.add_argument("--candidates-per-round", type=_arg(int, min=1), help=f"default {DEFAULTS['candidates_per_round']}")
    r.add_argument("--workers", type=_arg(int, min=1, max=256), help=f"candidates checked and evaluated at once (default {DEFAULTS['workers']})")
    r.add_argument("--seed", type=_arg(int), help=f"default {DEFAULTS['seed']}")
    r.add_argument("--budget-usd", type=_arg(float, above=0))
    r.add_argument("--repairs", type=_arg(int, min=0), help=f"repair attempts after a failed check (default {DEFAULTS['repairs']})")
    r.add_argument("--islands", type=_arg(int, min=1), help=f"default {DEFAULTS['islands']}")
    r.add_argument("--elites", type=_arg(int, min=0), help="parents per proposal drawn from the MAP-Elites "
                   f"archive of behaviour cells (0: off; default {DEFAULTS['elites']})")
    r.add_argument("--refine", type=_arg(float, min=0, max=1), help="offline generator: share of proposals "
                   f"that refine the best parent's constants (0: off; default {DEFAULTS['refine']})")
    r.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="task option (see `policyforge tasks`)")
    r.add_argument("--out", metavar="DIR", help="run directory (default runs/TASK-DATE)")
    r.add_argument("--resume", metavar="RUN", help="continue a stopped run (--rounds and --workers may change)")
    r.add_argument("-q", "--quiet", action="store_true")
    r.add_argument("--suite", metavar="FILE", help="workload suite, TOML or JSON: train and held-out workloads "
                   "(or repeat -o: -o trace=a -o trace=b -o heldout.trace=c)")
    r.add_argument("--executor", choices=["local", "ray"], help="where checks and evaluations run (default local)")
    r.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to use with --executor ray (default: a local Ray)")
    r.set_defaults(fn=cmd_run)

    rs = sub.add_parser("runs", help="inspect stored runs")
    rs.add_argument("action", choices=["list", "show", "best", "export"])
    rs.add_argument("run", nargs="?")
    rs.add_argument("--root", default="runs")
    rs.add_argument("--out", help="export destination (default RUN/winner)")
    rs.set_defaults(fn=cmd_runs)

    c = sub.add_parser("check", help="compile and verify one policy file")
    c.add_argument("task")
    c.add_argument("file")
    c.add_argument("-o", "--option", action="append", metavar="KEY=VALUE")
    c.add_argument("--keep", action="store_true", help="keep the temporary build directory")
    c.set_defaults(fn=cmd_check)

    e = sub.add_parser("eval", help="evaluate one policy file against the baselines")
    e.add_argument("task")
    e.add_argument("file")
    e.add_argument("-o", "--option", action="append", metavar="KEY=VALUE")
    e.add_argument("--traces", metavar="DIR", help="cache: evaluate on every trace in DIR (transfer)")
    e.add_argument("--json", action="store_true")
    e.add_argument("--no-baselines", action="store_true")
    e.add_argument("--keep", action="store_true", help="keep the temporary build and evaluation directory")
    e.set_defaults(fn=cmd_eval)

    t = sub.add_parser("tasks", help="list tasks and their options")
    t.set_defaults(fn=cmd_tasks)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    try:
        return args.fn(args)
    except (UsageError, TaskError, GeneratorError, StoreError) as e:
        return _fail(str(e), 2)
    except (RunFailed, DiskFull, ExecutorError) as e:
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        from . import sandbox
        sandbox.interrupt()          # no candidate process outlives this
        print("\npolicyforge: interrupted; a run continues with --resume RUN", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)                # do not wait for worker threads (an LLM call, say)
    except BrokenPipeError:          # `policyforge runs list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:
        if disk_error(e):
            return _fail(f"no space left on device: {e}", 1)
        if args.verbose:
            raise
        return _fail(f"internal error: {type(e).__name__}: {e} (rerun with -v for the traceback)", 1)


def _fail(message: str, code: int) -> int:
    """One line on stderr, whatever the message holds (a compiler's or an endpoint's text)."""
    print(f"policyforge: error: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
