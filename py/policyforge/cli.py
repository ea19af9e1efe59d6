"""policyforge command line.

    policyforge run TASK [--generator offline|openai|replay] [--rounds N] ...
    policyforge runs list|show|best|export
    policyforge check TASK FILE      compile + verify one hand-written policy
    policyforge eval TASK FILE       evaluate one policy against the baselines
    policyforge tasks                list tasks and their options
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import tasks
from .search.controller import Controller, RunConfig
from .search.database import Store
from .search.generators import GeneratorError
from .task import TaskError


class UsageError(Exception):
    pass


def _kv(items: list[str] | None) -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"option '{it}' is not KEY=VALUE")
        k, v = it.split("=", 1)
        out[k.strip().replace("-", "_")] = v
    return out


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
    label = summary["score_label"]
    rows = []
    if w:
        rows.append((f"WINNER (cand {w['id']}, {w['generator']})", w["score"], True))
    for name, b in summary["baselines"].items():
        rows.append((name if b["ranked"] else f"{name} (bound)", b["score"], b["ranked"]))
    rows.sort(key=lambda r: -(r[1] if r[1] is not None else -1e300))
    print(f"\n{'policy':<36} {label}")
    print("-" * (37 + len(label)))
    for name, score, _ in rows:
        s = "failed" if score is None else f"{score:.6f}"
        print(f"{name:<36} {s}")
    if w:
        n = len(summary["ranked_baselines"])
        print(f"\nwinner beats {len(summary['beats'])} of {n} ranked baselines"
              + (" (all)" if summary["beats_all"] else ""))


def cmd_run(a: argparse.Namespace) -> int:
    if a.resume:
        out = Path(a.resume)
        if not (out / "store.sqlite").exists():
            raise UsageError(f"{out} holds no run to resume (no store.sqlite)")
        cfg = RunConfig.from_json(Store(out / "store.sqlite").meta("config"))
        if a.rounds is not None:
            cfg.rounds = a.rounds
        print(f"resuming {out}", file=sys.stderr)
    else:
        if not a.task:
            raise UsageError("run needs a TASK (or --resume RUN)")
        task_opts = _kv(a.option)
        tasks.load(a.task, **task_opts)  # validate options before creating anything
        gen = a.generator
        if gen is None:
            gen = "openai" if os.environ.get("OPENAI_API_KEY") else "offline"
            if gen == "offline":
                print("policyforge: no OPENAI_API_KEY set: using the offline generator "
                      "(program search, no network)", file=sys.stderr)
        if gen == "replay" and not a.replay:
            raise UsageError("--generator replay needs --replay FILE")
        cfg = RunConfig(task=a.task, task_options=task_opts, generator=gen, models=_models(a.model),
                        rounds=a.rounds if a.rounds is not None else 8,
                        candidates_per_round=a.candidates_per_round, workers=a.workers, seed=a.seed,
                        budget_usd=a.budget_usd, repairs=a.repairs, islands=a.islands,
                        replay_file=str(Path(a.replay).resolve()) if a.replay else None,
                        prices=_prices(a.price))
        out = Path(a.out) if a.out else Path("runs") / f"{a.task}-{time.strftime('%Y%m%d-%H%M%S')}"
        if (out / "store.sqlite").exists():
            raise UsageError(f"{out} already holds a run: continue it with --resume {out}, "
                             "or choose another --out")
    t0 = time.monotonic()
    fresh = not (out / "store.sqlite").exists()
    ctl = Controller(out, cfg, quiet=a.quiet)
    try:
        result = ctl.run()
    except TaskError:
        if fresh and not ctl.store.candidates():   # nothing was stored: leave no empty run behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    from .search.report import write_report
    summary = write_report(out, ctl.store, ctl.task, command=" ".join(shlex.quote(x) for x in sys.argv))
    _print_table(summary)
    print(f"\nreport: {out / 'report.html'}\nbest:   {out / 'best.json'}")
    if summary.get("export", {}).get("usage"):
        print(f"deploy: {summary['export']['usage'].splitlines()[0]}")
    print(f"time:   {time.monotonic() - t0:.1f}s")
    if result["stop_reason"]:
        print(f"stopped early: {result['stop_reason']}", file=sys.stderr)
    if summary.get("export", {}).get("error"):
        print(f"policyforge: the winner was not exported: {summary['export']['error']}", file=sys.stderr)
        return 1
    return 0 if summary["winner"] else 1


def _find_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/store.sqlite"))


def cmd_runs(a: argparse.Namespace) -> int:
    if a.action == "list":
        runs = _find_runs(Path(a.root))
        if not runs:
            print(f"no runs under {a.root}")
            return 0
        print(f"{'run':<40} {'task':<8} {'gen':<8} {'cands':>5} {'best':>10}")
        for r in runs:
            st = Store(r / "store.sqlite")
            cfg = st.meta("config") or {}
            best = st.best()
            print(f"{str(r):<40} {cfg.get('task', '?'):<8} {cfg.get('generator', '?'):<8} "
                  f"{len(st.candidates()):>5} {best['score'] if best else float('nan'):>10.6f}")
        return 0
    if not a.run:
        raise UsageError(f"runs {a.action} needs a RUN directory")
    run = Path(a.run)
    if not (run / "store.sqlite").exists():
        raise UsageError(f"{run} is not a run directory (no store.sqlite)")
    st = Store(run / "store.sqlite")
    if a.action == "show":
        cfg = st.meta("config")
        print(json.dumps(cfg, indent=2))
        for c in st.candidates():
            sc = "" if c["score"] is None else f"{c['score']:.6f}"
            print(f"{c['id']:5d} r{c['round']:<3} {c['status']:<13} {sc:>10} {c['operation']:<18} {c['reason'][:60]}")
        return 0
    best = st.best()
    if best is None:
        raise UsageError(f"{run} has no scored candidate yet")
    if a.action == "best":
        print(f"# candidate {best['id']} (round {best['round']}), score {best['score']:.6f}")
        print(best["source"])
        return 0
    if a.action == "export":
        cfg = RunConfig.from_json(st.meta("config"))
        task = tasks.load(cfg.task, **cfg.task_options)
        dest = Path(a.out or (run / "winner"))
        dest.mkdir(parents=True, exist_ok=True)
        work = _workdir("pf-export-")
        check = task.check(best["source"], work)
        if not check.ok:
            raise TaskError(f"the winner no longer passes the check ({check.stage}): {check.feedback[:200]}")
        info = task.export(best["source"], check, dest)
        for f in info.get("files", []):
            print(f)
        if info.get("usage"):
            print(info["usage"])
        return 0
    raise UsageError(f"unknown runs action {a.action}")


def _workdir(prefix: str) -> Path:
    """A fresh directory of ours; the sandbox's jobs (their own uids) may enter it."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    return work


def _read_policy(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None


def cmd_check(a: argparse.Namespace) -> int:
    task = tasks.load(a.task, **_kv(a.option))
    work = _workdir(f"pf-check-{task.name}-")
    task.prepare(work / "shared")
    out = task.check(_read_policy(a.file), work)
    if out.ok:
        print(f"ok: {a.file} passes every check of task {task.name} ({out.seconds:.2f}s)")
        return 0
    print(f"FAILED at stage '{out.stage}':\n{out.feedback.rstrip()}")
    return 1


def cmd_eval(a: argparse.Namespace) -> int:
    task = tasks.load(a.task, **_kv(a.option))
    work = _workdir(f"pf-eval-{task.name}-")
    source = _read_policy(a.file)
    shared = work / "shared"
    shared.mkdir(parents=True)
    task.prepare(shared)
    if a.traces:
        if not hasattr(task, "transfer"):
            raise UsageError(f"task {task.name} does not evaluate across --traces")
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
    print(f"{'policy':<28} {task.score_label}")
    for name, score, ranked in rows:
        print(f"{name + ('' if ranked else ' (bound)'):<28} {'failed' if score is None else f'{score:.6f}'}")
    beaten = [b.name for b in base if b.ranked and b.evaluation.score is not None and ev.score > b.evaluation.score]
    ranked = [b for b in base if b.ranked and b.evaluation.score is not None]
    if ranked:
        print(f"\n{Path(a.file).name} beats {len(beaten)} of {len(ranked)} ranked baselines")
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="policyforge", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="synthesize a policy for TASK")
    r.add_argument("task", nargs="?")
    r.add_argument("--generator", choices=["offline", "openai", "replay"],
                   help="default: openai when OPENAI_API_KEY is set, else offline")
    r.add_argument("--model", action="append", metavar="NAME[:WEIGHT]", help="chat model (repeat for an ensemble)")
    r.add_argument("--price", action="append", metavar="MODEL=IN/OUT", help="USD per million tokens")
    r.add_argument("--replay", metavar="FILE", help="JSONL of recorded responses (--generator replay)")
    r.add_argument("--rounds", type=int)
    r.add_argument("--candidates-per-round", type=int, default=16)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--budget-usd", type=float)
    r.add_argument("--repairs", type=int, default=3, help="repair attempts after a failed check")
    r.add_argument("--islands", type=int, default=2)
    r.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="task option (see `policyforge tasks`)")
    r.add_argument("--out", metavar="DIR", help="run directory (default runs/TASK-DATE)")
    r.add_argument("--resume", metavar="RUN", help="continue a stopped run")
    r.add_argument("-q", "--quiet", action="store_true")
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
    c.set_defaults(fn=cmd_check)

    e = sub.add_parser("eval", help="evaluate one policy file against the baselines")
    e.add_argument("task")
    e.add_argument("file")
    e.add_argument("-o", "--option", action="append", metavar="KEY=VALUE")
    e.add_argument("--traces", metavar="DIR", help="cache: evaluate on every trace in DIR (transfer)")
    e.add_argument("--json", action="store_true")
    e.add_argument("--no-baselines", action="store_true")
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
    except (UsageError, TaskError, GeneratorError) as e:
        print(f"policyforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        from . import sandbox
        sandbox.interrupt()          # no candidate process outlives this
        print("\npolicyforge: interrupted; a run continues with --resume RUN", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)                # do not wait for worker threads (an LLM call, say)


if __name__ == "__main__":
    sys.exit(main())
