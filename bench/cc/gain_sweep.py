"""bench/cc/gain_sweep: why the 100 ms-RTT cellular link resists rate tracking.

The `track` window (cwnd = gain x the newest history window's delivery rate x min RTT + 2
packets; slow start until a rate is known) at several gains, with the template's own pacing,
against cubic on the same windows of one link (default: the held-out `cell:seed=11,mean=8` at 50 ms
each way of bench/cc/cellular_wide.md). Per run and window: throughput, p95 one-way delay, loss.

    .venv/bin/python bench/cc/gain_sweep.py [--link '{"trace": "cell:seed=11,mean=8", "delay_ms": "50"}']
                                            [--gains 5/4,6/4,8/4] [--windows 2] [--duration 5]

Needs root (namespaces, BPF struct_ops). Writes gain_sweep.md and gain_sweep.json beside this
file; about a minute and a half. Keep the machine otherwise idle.
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
from policyforge.tasks.cc.task import bdp_window, until_rated  # noqa: E402


def track(num: int, den: int) -> dict[str, str]:
    return {"policy_cong_control": until_rated(bdp_window(num, den)), "policy_pacing_rate": "0"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--link", default='{"trace": "cell:seed=11,mean=8", "delay_ms": "50"}')
    ap.add_argument("--gains", default="5/4,6/4,8/4")
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--duration", type=float, default=5.0)
    a = ap.parse_args()
    commit = git_commit()          # before the run writes its results into the tree
    link = json.loads(a.link)
    task = TASK_CLASS(windows=a.windows, duration_s=a.duration, outputs="cwnd,pacing", **link)
    work = Path(tempfile.mkdtemp(prefix="pf-bench-gain-"))
    task.prepare(work / "shared")
    rows = {}
    for g in a.gains.split(","):
        num, den = (int(x) for x in g.split("/"))
        check = task.check(task.render(track(num, den)), work / f"g{num}_{den}")
        if not check.ok:
            raise SystemExit(f"gain_sweep.py: gain {g} failed its check: {check.feedback[:300]}")
        ev = task.evaluate(check, work / f"g{num}_{den}")
        if not ev.ok:
            raise SystemExit(f"gain_sweep.py: gain {g}: {ev.reason}")
        rows[f"track, gain {num / den:g}"] = ev.metrics["windows"]
        print(g, file=sys.stderr, flush=True)
    ev = task._experiment("cubic")
    if not ev.ok:
        raise SystemExit(f"gain_sweep.py: cubic: {ev.reason}")
    rows["cubic"] = ev.metrics["windows"]

    lines = ["# bench/cc/gain_sweep — the rate tracker's window gain on one link, against cubic", "",
             f"Machine: {machine()}  ", f"Command: `python bench/cc/gain_sweep.py {' '.join(sys.argv[1:])}`  ",
             f"Commit: {commit}  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             f"Link: `{a.link}`; {a.windows} windows of {a.duration:g} s, the same for every scheme.", "",
             "cwnd = gain x newest window's delivery rate x min RTT + 2 packets, the template's pacing. "
             "Cells: throughput Mbit/s / p95 one-way delay ms / loss, per window.", "",
             "| scheme | " + " | ".join(f"window {k + 1}" for k in range(a.windows)) + " |",
             "|---|" + "---|" * a.windows]
    for name, ws in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{w['throughput_mbps']:.2f} / {w['p95_delay_ms']:.0f} / "
                                                 f"{w['loss']:.3f}" for w in ws) + " |")
    (HERE / "gain_sweep.md").write_text("\n".join(lines) + "\n")
    (HERE / "gain_sweep.json").write_text(json.dumps({"link": link, "rows": rows}, indent=2, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
