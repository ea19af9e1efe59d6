"""bench/cc/cellular: a search on a suite of generated cellular links (and one fixed lossy link),
then its winner re-measured side by side with cubic, bbr and reno on every link, held-out
links included.

    .venv/bin/python bench/cc/cellular.py [--rounds 4 --candidates 6 --seed 1] [--repeats 2]
                                          [--windows 2 --duration 5] [--run RUN]
                                          [--with-seed track,probe] [--wider] [--fresh] [--train-wide]
                                          [--train-long] [--name N]

The search is the engine's own CLI (`policyforge run cc --generator offline`, workers 1, the
default objective power_floor, -o outputs=cwnd,pacing so that rate-based designs can be
written, seeds reno, delay, rate, track and probe). Links (testbed/traces.py, cellular_trace: a heavy-tailed
log-rate walk in 50 ms steps, 0.5-20 Mbit/s, outages of 0.2-1 s):
  train     cell:seed=1 (mean 6 Mbit/s), cell:seed=2,mean=3,high=10, and a fixed 12 Mbit/s link
            with 30 ms each way and 1 % random loss
  held out  cell:seed=7,mean=10,high=20 and cell:seed=8,mean=2,low=0.5,high=8 (no search or
            selection saw them)
  wider     (--wider, re-measurement only) links whose statistics lie outside the suite's:
            the bundled LTE-like trace, a cellular link at 100 ms RTT, one with an outage every
            5 s, the fixed 24 Mbit/s link, a fixed 4 Mbit/s link at 80 ms RTT with 0.5 % loss
  fresh     (--fresh, re-measurement only) cell:seed=21,mean=8 at 100 ms RTT and cell:seed=22,mean=5
            at 50 ms RTT, drawn after the `probe` seed was written by looking at the wider 100 ms link;
            cell:seed=41,mean=3,high=10 and cell:seed=42,mean=8 at 100 ms RTT, drawn after probe's
            three-level queue gate was written (on development links that are in no table here)
--with-seed NAMES measures those seeds of the task beside the winner: what the search added.
The re-measurement: per link, every scheme on the same --windows windows (seeded offsets, the
same for all), --repeats times with the scheme order rotating, each run over the same interval
of link time. Per link: median and spread (min-max) of throughput, p95 delay, loss and the
objective; the winner's margin over the best of cubic, bbr and reno, paired by run, with a 90 %
interval; whether the winner keeps 80 % of cubic's throughput. Writes NAME.md, NAME.json,
NAME.png, NAME_acks.png and NAME_winner.c beside this file (--name, default cellular).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT / "py")]

from policyforge.search.report import git_commit, machine, paired_margin  # noqa: E402
from policyforge.tasks.cc import TASK_CLASS  # noqa: E402

TRAIN = [{"trace": "cell:seed=1"}, {"trace": "cell:seed=2,mean=3,high=10"},
         {"rate_mbps": "12", "delay_ms": "30", "loss": "0.01"}]
HELDOUT = [{"trace": "cell:seed=7,mean=10,high=20"}, {"trace": "cell:seed=8,mean=2,low=0.5,high=8"}]
# --train-wide: two more training links of the classes the first suite missed (other trace seeds
# than the wider held-out links below)
TRAIN_WIDE = [{"trace": "cell:seed=3,mean=6", "delay_ms": "40"}, {"trace": "cell:seed=4,mean=4,outages=10"}]
# --train-long: a cellular link at 100 ms RTT (another trace seed than the wider held-out one)
TRAIN_LONG = [{"trace": "cell:seed=5,mean=8", "delay_ms": "50"}]
# links no search sees and whose statistics lie outside the suite's (re-measurement only, --wider):
# the testbed's bundled LTE-like trace, a cellular link at 100 ms RTT, one with an outage every
# 5 s, the default fixed 24 Mbit/s link, and a slow fixed link at 80 ms RTT with 0.5 % loss
WIDER = [{"trace": "lte"}, {"trace": "cell:seed=11,mean=8", "delay_ms": "50"},
         {"trace": "cell:seed=12,mean=5,outages=12"}, {"rate_mbps": "24"},
         {"rate_mbps": "4", "delay_ms": "40", "loss": "0.005"}]
# --fresh: links drawn after the `probe` seed was written while looking at the 100 ms-RTT wider
# link above, so neither a search nor the seed's author saw them (re-measurement only)
FRESH = [{"trace": "cell:seed=21,mean=8", "delay_ms": "50"}, {"trace": "cell:seed=22,mean=5", "delay_ms": "25"}]
# and two drawn after the probe seed's queue gate became three levels (bench/cc/variants.py's
# last rows, designed on the development links cell:seed=31..33, which are in no table here)
FRESH2 = [{"trace": "cell:seed=41,mean=3,high=10"}, {"trace": "cell:seed=42,mean=8", "delay_ms": "50"}]
BASELINES = ("cubic", "bbr", "reno")
KEYS = ("throughput_mbps", "p95_delay_ms", "loss", "score")


def label(link: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in link.items())


def search(a: argparse.Namespace) -> Path:
    """The engine's CLI on the suite (a link is several options at once: a suite file)."""
    run = ROOT / "runs" / time.strftime("cc-cellular-%Y%m%d-%H%M%S")
    suite = {"aggregate": a.aggregate, "finalists": 3, "train": TRAIN, "heldout": HELDOUT}
    path = run.parent / (run.name + ".suite.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2))
    cmd = [str(ROOT / ".venv" / "bin" / "policyforge"), "run", "cc", "--generator", "offline", "--rounds", str(a.rounds),
           "--candidates-per-round", str(a.candidates), "--workers", "1", "--seed", str(a.seed), "--out", str(run),
           "-q", "--suite", str(path), "-o", "outputs=cwnd,pacing", "-o", f"windows={a.windows}",
           "-o", f"duration_s={a.duration}"]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    return run


def measure(sources: dict[str, str], a: argparse.Namespace, work: Path) -> list[dict]:
    """Every scheme on every link, side by side: the policies in `sources` ("winner" first,
    then e.g. the seed it came from) and the kernel's baselines."""
    rows = []
    splits = [("train", TRAIN), ("held-out", HELDOUT)] + ([("held-out, wider", WIDER)] if a.wider else []) + \
        ([("held-out, fresh", FRESH), ("held-out, fresh 2", FRESH2)] if a.fresh else [])
    for split, links in splits:
        for link in links:
            t = TASK_CLASS(windows=a.windows, duration_s=a.duration, **link)
            wd = work / label(link).replace("=", "").replace(",", "_").replace(":", "_")
            t.prepare(wd / "shared")
            checks = {name: t.check(src, wd / name.replace(":", "_")) for name, src in sources.items()}
            bad = next((name for name, c in checks.items() if not c.ok), None)
            if bad:
                rows.append({"link": label(link), "split": split, "error": f"{bad}: {checks[bad].feedback[:200]}"})
                continue
            runs: dict[str, list[dict]] = {s: [] for s in (*sources, *BASELINES)}
            acks: dict[str, dict] = {}
            order = [*sources, *BASELINES]
            for rep in range(a.repeats):
                for scheme in order[rep % len(order):] + order[:rep % len(order)]:
                    ev = t.evaluate(checks[scheme], wd / scheme.replace(":", "_")) if scheme in sources \
                        else t._experiment(scheme)
                    if not ev.ok:
                        print(f"{label(link)} {scheme}: {ev.reason}", file=sys.stderr)
                        continue
                    if ev.metrics.get("acks") and scheme not in acks:
                        acks[scheme] = ev.metrics["acks"]
                    for k, w in enumerate(ev.metrics["windows"]):
                        runs[scheme].append({**w, "window": rep * a.windows + k})
            stats = {}
            for scheme, rs in runs.items():
                stats[scheme] = {key: {"median": statistics.median(r[key] for r in rs),
                                       "min": min(r[key] for r in rs), "max": max(r[key] for r in rs)}
                                 for key in KEYS if rs}
                stats[scheme]["runs"] = len(rs)
            base = [{"name": s, "ranked": True, "ok": bool(runs[s]), "metrics": {"windows": runs[s]},
                     "score": statistics.fmean(r["score"] for r in runs[s]) if runs[s] else None} for s in BASELINES]
            margin = paired_margin({"windows": runs["winner"]}, base) if runs["winner"] else None
            cubic = stats.get("cubic", {}).get("throughput_mbps", {}).get("median")
            def beats_all(name: str) -> bool:
                own = stats[name]
                return bool(own.get("score")) and all(own["score"]["median"] > stats[s]["score"]["median"]
                                                      for s in BASELINES if stats[s].get("score"))
            def share(name: str) -> float | None:
                own = stats[name].get("throughput_mbps")
                return own["median"] / cubic if cubic and own else None

            def passes(name: str) -> bool:     # the issue's bar: beats all three, >= 80 % of cubic's throughput
                return beats_all(name) and (share(name) or 0) >= 0.8
            rows.append({"link": label(link), "split": split, "stats": stats, "margin": margin, "acks": acks,
                         "beats_all": beats_all("winner"),
                         "others_beat_all": {n: passes(n) for n in sources if n != "winner"},
                         "throughput_share_of_cubic": share("winner")})
            print(json.dumps(rows[-1]["stats"]["winner"]), file=sys.stderr, flush=True)
    return rows


def stored_duration(run: Path) -> float:
    """A finished run's wall time, from its store: creation to its last round's end."""
    import sqlite3
    con = sqlite3.connect(run / "store.sqlite")
    try:
        created = json.loads(con.execute("SELECT value FROM meta WHERE key='created'").fetchone()[0])
        last = con.execute("SELECT MAX(finished) FROM rounds").fetchone()[0]
        return float(last) - float(created)
    finally:
        con.close()


def plot(rows: list[dict], name: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if "stats" in r]
    fig, axes = plt.subplots(1, len(ok), figsize=(4.2 * len(ok), 3.6), squeeze=False)
    for ax, r in zip(axes.flat, ok):
        for scheme, st in r["stats"].items():
            if not st.get("throughput_mbps"):
                continue
            x, y = st["p95_delay_ms"], st["throughput_mbps"]
            ax.errorbar(x["median"], y["median"], xerr=[[x["median"] - x["min"]], [x["max"] - x["median"]]],
                        yerr=[[y["median"] - y["min"]], [y["max"] - y["median"]]], fmt="*" if scheme == "winner" else "o",
                        color="tab:red" if scheme == "winner" else None, ms=10 if scheme == "winner" else 5, capsize=2)
            ax.annotate(scheme, (x["median"], y["median"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"{r['link']} ({r['split']})", fontsize=8)
        ax.set_xlabel("p95 one-way delay (ms)")
        ax.set_ylabel("throughput (Mbit/s)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / f"{name}.png", dpi=110)
    # cwnd at every ACK (traced with libbpf, testbed/acktrace.py): the winner against cubic and bbr
    fig, axes = plt.subplots(len(ok), 1, figsize=(8, 2.4 * len(ok)), squeeze=False)
    for ax, r in zip(axes.flat, ok):
        for scheme in ("winner", "cubic", "bbr"):
            a = r.get("acks", {}).get(scheme)
            if a:
                ax.plot(a["t_s"], a["cwnd"], label=scheme, lw=1.5 if scheme == "winner" else 0.9,
                        color="tab:red" if scheme == "winner" else None)
        ax.set_title(f"{r['link']} ({r['split']}): cwnd at every ACK, first window", fontsize=8)
        ax.set_ylabel("cwnd (packets)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    axes.flat[-1].set_xlabel("time since the first ACK (s)")
    fig.tight_layout()
    fig.savefig(HERE / f"{name}_acks.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--candidates", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--run", help="re-measure the winner of this run instead of searching")
    ap.add_argument("--with-seed", default="", help="also measure these seeds of the task (e.g. track,probe) "
                                                   "beside the winner: what the search added to them")
    ap.add_argument("--train-wide", action="store_true", help="also train on TRAIN_WIDE (a 80 ms-RTT and an "
                                                              "outage-heavy cellular link)")
    ap.add_argument("--train-long", action="store_true", help="also train on TRAIN_LONG (a 100 ms-RTT "
                                                             "cellular link)")
    ap.add_argument("--aggregate", default="mean", choices=("mean", "worst", "rank"),
                    help="how the search combines the train links' margins (search/suite.py); worst selects "
                         "the policy whose weakest link is strongest")
    ap.add_argument("--name", default="cellular", help="output files NAME.md, NAME.json, NAME.png, ...")
    ap.add_argument("--wider", action="store_true", help="also the WIDER held-out links (lte, 100 ms RTT, "
                                                         "outages, fixed links)")
    ap.add_argument("--fresh", action="store_true", help="also the FRESH and FRESH2 held-out links (drawn after "
                                                         "the probe seed and its revision were written)")
    a = ap.parse_args()
    if a.train_wide:
        TRAIN.extend(TRAIN_WIDE)
    if a.train_long:
        TRAIN.extend(TRAIN_LONG)
    commit = git_commit()          # before this run writes its own outputs into the tree
    t0 = time.monotonic()
    run = Path(a.run) if a.run else search(a)
    search_s = time.monotonic() - t0 if not a.run else stored_duration(run)
    best = json.loads((run / "best.json").read_text())
    source = best["winner"]["source"]
    (HERE / f"{a.name}_winner.c").write_text(source)
    work = Path(tempfile.mkdtemp(prefix="pf-bench-cellular-"))
    sources = {"winner": source}
    seeder = TASK_CLASS(outputs="cwnd,pacing")
    for wanted in filter(None, a.with_seed.split(",")):
        seed = next((s for s in seeder.seeds() if s.name == wanted), None)
        if seed is None:
            sys.exit(f"cellular.py: no seed '{wanted}' (the task's: {', '.join(s.name for s in seeder.seeds())})")
        sources[f"seed:{wanted}"] = seeder.render(seed.genome)
    rows = measure(sources, a, work)
    plot(rows, a.name)
    suite = best.get("suite") or {}
    lines = ["# bench/cc/cellular — a search on cellular links, its winner against cubic, bbr and reno", "",
             f"Machine: {machine()}  ", f"Command: `python bench/cc/cellular.py {' '.join(sys.argv[1:])}`  ",
             f"Commit: {commit}  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             f"Search: run `{run.name}`, {best['candidates']} candidates, {search_s:.0f} s of search (baselines, "
             f"seeds, rounds; the held-out finalists after); objective power_floor, suite aggregate "
             f"{suite.get('aggregate', a.aggregate)}; windows {a.windows}, "
             f"measured interval {a.duration:g} s.", "",
             "Winner:", "", "```c", source.strip(), "```", "",
             f"Re-measured: every scheme on each link's {a.windows} windows, {a.repeats} times, the scheme order "
             "rotating. Cells: median (min-max) over the runs. Objective: throughput / p95 delay x (1 - loss)^4 with "
             "the floor at 80 % of cubic's throughput on the same window (docs/cc.md).", "",
             "| link | split | scheme | throughput (Mbit/s) | p95 delay (ms) | loss | objective |",
             "|---|---|---|---|---|---|---|"]

    def cell(st, key, fmt):
        v = st.get(key)
        return f"{format(v['median'], fmt)} ({format(v['min'], fmt)}-{format(v['max'], fmt)})" if v else "-"
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['link']} | {r['split']} | winner | error: {r['error']} | | | |")
            continue
        for scheme, st in r["stats"].items():
            lines.append(f"| {r['link']} | {r['split']} | {scheme} | {cell(st, 'throughput_mbps', '.2f')} | "
                         f"{cell(st, 'p95_delay_ms', '.0f')} | {cell(st, 'loss', '.3f')} | {cell(st, 'score', '.4f')} |")
    others = [n for n in sources if n != "winner"]
    lines += ["", "| link | split | beats cubic, bbr and reno (medians) | margin over the best, 90 % interval | "
              "throughput / cubic's |" + "".join(f" {n} beats all three, >= 80 % of cubic's |" for n in others),
              "|---|---|---|---|---|" + "---|" * len(others)]
    wins, other_wins = 0, {n: 0 for n in others}
    for r in rows:
        if "error" in r:
            continue
        m = r["margin"]
        mt = (f"{m['margin']:+.4f} vs {m['baseline']} [{m['low']:+.4f}, {m['high']:+.4f}]" if m and m["low"] is not None
              else "-")
        share = r["throughput_share_of_cubic"]
        ok = r["beats_all"] and share is not None and share >= 0.8
        wins += ok
        seeds = ""
        for n in others:
            b = r["others_beat_all"].get(n, False)
            other_wins[n] += b
            seeds += f" {'yes' if b else 'no'} |"
        lines.append(f"| {r['link']} | {r['split']} | {'yes' if r['beats_all'] else 'no'} | {mt} | "
                     f"{share:.0%} |{seeds}" if share is not None else f"| {r['link']} | {r['split']} | - | {mt} | - |{seeds}")
    n_links = sum('stats' in r for r in rows)
    lines += ["", f"The winner beats all three with at least 80 % of cubic's throughput on {wins} of {n_links} links."
              + "".join(f" {n} does (the same bar) on {w} of {n_links}." for n, w in other_wins.items()),
              "", f"![throughput against delay]({a.name}.png)", "",
              "cwnd at every ACK (libbpf on tcp:tcp_probe), the winner against cubic and bbr, each link's first "
              "window:", "", f"![cwnd per ACK]({a.name}_acks.png)", ""]
    if suite:
        lines += [f"In the search's own held-out table: beats every ranked baseline on {suite.get('heldout_wins')} of "
                  f"{suite.get('heldout_n')} held-out links.", ""]
    (HERE / f"{a.name}.md").write_text("\n".join(lines))
    (HERE / f"{a.name}.json").write_text(json.dumps({"run": str(run), "rows": rows, "search_s": search_s,
                                                     "suite": suite}, indent=2, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.pop("OPENAI_API_KEY", None)
    main()
