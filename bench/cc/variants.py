"""bench/cc/variants: hand-written cwnd rules beside cubic on the same windows of a few links.

The rules that led to the task's `probe` seed: the `track` window (gain x the newest window's
delivery rate x min RTT + 2 packets) with the reactions tried on top of it, each with the
template's own pacing. Links: the 100 ms-RTT training link of `cellular.py --train-long`
(`cell:seed=5,mean=8`) and the 100 ms-RTT wider held-out link (`cell:seed=11,mean=8`), which the
design looked at (so that link is no longer a clean hold-out for `probe`: `cellular.py --fresh`
adds links drawn after it), the outage-heavy training link, and the fixed 24 Mbit/s link where
`probe` lost to bbr in bench/cc/cellular_probe.md.

    .venv/bin/python bench/cc/variants.py [--windows 2] [--duration 5] [--only 0,2,...] [--dev]

Needs root (namespaces, BPF struct_ops). Writes variants.md and variants.json beside this file;
about 2 minutes a link. Keep the machine otherwise idle.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "py"))
from policyforge.search.report import git_commit, machine  # noqa: E402
from policyforge.tasks.cc import TASK_CLASS  # noqa: E402
from policyforge.tasks.cc.task import bdp_window, srtt_above, until_rated  # noqa: E402

LINKS = [{"trace": "cell:seed=5,mean=8", "delay_ms": "50"}, {"trace": "cell:seed=11,mean=8", "delay_ms": "50"},
         {"trace": "cell:seed=4,mean=4,outages=10"}, {"rate_mbps": "24"}]
# --dev: the links the three-level rule was chosen on: the fixed 24 Mbit/s link, the low-rate
# training link of cellular.py, and development links of the classes where probe was weak or
# strong (a 2 Mbit/s link, a 100 ms-RTT one, an outage-heavy one) that no cellular.py table holds
DEV = [{"rate_mbps": "24"}, {"trace": "cell:seed=2,mean=3,high=10"}, {"trace": "cell:seed=31,mean=2,low=0.5,high=8"},
       {"trace": "cell:seed=32,mean=8", "delay_ms": "50"}, {"trace": "cell:seed=33,mean=5,outages=12"}]
FRESH = "(max rate rate_w0)"          # the fresher of this ACK's and the newest window's rate
LONG_QUEUE = f"(ifgt {srtt_above(3, 2)} 0 1 0)"     # 1 when srtt > 1.5 x min RTT


def on_rising(margin: str) -> str:
    """probe's reactions with a window of 1.5 x this ACK's rate while `margin` > 0 (this ACK's
    rate above the newest window's), track's 1.25 x otherwise."""
    return until_rated(f"(ifgt (add lost_w0 {LONG_QUEUE}) 0 {bdp_window(1, 1)} "
                       f"(ifgt {margin} 0 {bdp_window(3, 2, 'rate')} {bdp_window(5, 4)}))")


VARIANTS = {
    "track (1.25 x)": until_rated(bdp_window(5, 4)),
    "2 x, 1.25 x after a loss in the history": until_rated(f"(ifgt hist_lost 0 {bdp_window(5, 4)} {bdp_window(2, 1)})"),
    "westwood-like: 1.25 x srtt BDP, 1 x after a lossy window":
        until_rated(f"(ifgt lost_w0 0 {bdp_window(1, 1)} {bdp_window(5, 4, rtt='srtt')})"),
    "1.5 x fresher rate, 1 x after a lossy window":
        until_rated(f"(ifgt lost_w0 0 {bdp_window(1, 1)} {bdp_window(3, 2, FRESH)})"),
    # the task's first probe seed (until the three-level rule below replaced it)
    "probe: that, and 1 x while srtt > 1.5 x min RTT":
        until_rated(f"(ifgt (add lost_w0 {LONG_QUEUE}) 0 {bdp_window(1, 1)} {bdp_window(3, 2, FRESH)})"),
    # after bench/cc/cellular_probe.md: probe's half-BDP queue loses to bbr on the fixed 24 Mbit/s link
    "probe with the gate at srtt > 1.25 x min RTT":
        until_rated(f"(ifgt (add lost_w0 (ifgt {srtt_above(5, 4)} 0 1 0)) 0 {bdp_window(1, 1)} "
                   f"{bdp_window(3, 2, FRESH)})"),
    # and the window itself: 1.5 x only while this ACK's rate is above the newest window's (a
    # rising link), track's 1.25 x otherwise
    "probe, 1.5 x only on a rising rate, else 1.25 x": on_rising("(sub rate rate_w0)"),
    # the same with a margin: 1.5 x only while this ACK's rate is 1/8 above the newest window's
    "probe, 1.5 x only on a rate 1/8 above the window's, else 1.25 x": on_rising("(sub (mul 8 rate) (mul 9 rate_w0))"),
    # the task's probe seed now: 1.5 x below 1.25 x min RTT, track's 1.25 x up to 1.5 x, then 1 x
    "probe, three levels: 1.5 x / 1.25 x / 1 x as srtt passes 1.25 and 1.5 x min RTT":
        next(s for s in TASK_CLASS(seeds="probe").seeds()).genome["policy_cong_control"],
}


def measure(link: dict, policies: dict[str, str], windows: int, duration: float, work: Path) -> dict[str, list]:
    """Each policy (a cwnd expression, the template's pacing) and cubic on the same windows of
    `link`: per policy, its windows' metrics."""
    task = TASK_CLASS(windows=windows, duration_s=duration, outputs="cwnd,pacing", acks=False, **link)
    task.prepare(work / "shared")
    rows = {}
    for k, (name, expr) in enumerate(policies.items()):
        check = task.check(task.render({"policy_cong_control": expr, "policy_pacing_rate": "0"}), work / f"p{k}")
        if not check.ok:
            raise SystemExit(f"variants.py: '{name}' failed its check: {check.feedback[:300]}")
        ev = task.evaluate(check, work / f"p{k}")
        if not ev.ok:
            raise SystemExit(f"variants.py: '{name}': {ev.reason}")
        rows[name] = ev.metrics["windows"]
        print(f"{link} {name}", file=sys.stderr, flush=True)
    ev = task._experiment("cubic")
    if not ev.ok:
        raise SystemExit(f"variants.py: cubic: {ev.reason}")
    rows["cubic"] = ev.metrics["windows"]
    return rows


def table(rows: dict[str, list], windows: int) -> list[str]:
    """Cells: throughput Mbit/s / p95 one-way delay ms / loss per window, and the mean objective."""
    out = ["| scheme | " + " | ".join(f"window {k + 1}" for k in range(windows)) + " | objective (mean) |",
           "|---|" + "---|" * (windows + 1)]
    for name, ws in rows.items():
        score = sum(w["score"] for w in ws) / len(ws)
        out.append(f"| {name} | " + " | ".join(f"{w['throughput_mbps']:.2f} / {w['p95_delay_ms']:.0f} / "
                                               f"{w['loss']:.3f}" for w in ws) + f" | {score:.4f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--only", default="", help="comma-separated link indexes (0-based) to run")
    ap.add_argument("--dev", action="store_true", help="the DEV links instead (writes variants_dev.md/.json)")
    a = ap.parse_args()
    commit = git_commit()          # before the run writes its results into the tree
    pool = DEV if a.dev else LINKS
    links = [pool[int(i)] for i in a.only.split(",")] if a.only else pool
    work = Path(tempfile.mkdtemp(prefix="pf-bench-variants-"))
    results = {json.dumps(link): measure(link, VARIANTS, a.windows, a.duration, work / f"l{k}")
               for k, link in enumerate(links)}
    lines = ["# bench/cc/variants — reactions on top of the rate tracker, against cubic", "",
             f"Machine: {machine()}  ", f"Command: `python bench/cc/variants.py {' '.join(sys.argv[1:])}`  ",
             f"Commit: {commit}  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             f"{a.windows} windows of {a.duration:g} s per link, the same for every scheme; the template's pacing. "
             "Cells: throughput Mbit/s / p95 one-way delay ms / loss; objective: power_floor (docs/cc.md).", "",
             "Rules (cwnd in packets; BDP = rate x min RTT; slow start until a window has a rate):", ""]
    lines += [f"- {name}: `{expr}`" for name, expr in VARIANTS.items()]
    for link, rows in results.items():
        lines += ["", f"## `{link}`", ""] + table(rows, a.windows)
    out = "variants_dev" if a.dev else "variants"
    (HERE / f"{out}.md").write_text("\n".join(lines) + "\n")
    (HERE / f"{out}.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
