"""bench/cc: kernel congestion controls and policyforge policies on the same emulated links.

    .venv/bin/python bench/cc/run.py [--duration 5] [--policy NAME=FILE ...]
                                     [--schemes cubic,reno,bbr,seed:reno,NAME] [--flows N]

Links (linkem, this host): a 24 Mbit/s link with 20 ms RTT (10 ms each way) and a
variable-rate LTE-like Mahimahi trace (py/policyforge/testbed/traces/lte.trace, 10 ms each way); droptail
queue of one BDP. Schemes: every kernel CC (cubic, reno, bbr here) and the cc task's seeds
compiled as BPF struct_ops (plus any --policy files, e.g. a synthesis winner). One flow
each (or --flows N of the same scheme, started 1 s apart, for Jain fairness), run one after
another. --schemes picks and orders the rows: kernel CC names (also one registered by hand,
e.g. with `bpftool struct_ops register`), `seed:NAME`, or a --policy NAME. Writes
results.md, results.json and PNG plots here.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "py")]

from policyforge.testbed import Experiment, FlowSpec, LinkSpec, run_experiment  # noqa: E402
from policyforge.testbed import use_linkem  # noqa: E402
from policyforge.native import native_path  # noqa: E402

use_linkem(native_path("bin", "linkem"))
from policyforge.search.report import machine  # noqa: E402
from policyforge.tasks.cc import TASK_CLASS  # noqa: E402

LINKS = {"24 Mbit/s, 20 ms RTT": LinkSpec(rate_mbps=24, delay_ms=10),
         "LTE-like trace, 20 ms RTT": LinkSpec(rate_mbps=None, trace=str(TRACE_DIR / "lte.trace"), delay_ms=10)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--policy", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--schemes", default="", help="comma list; default: every kernel CC, the seeds, the policies")
    ap.add_argument("--flows", type=int, default=1, help="flows of the same scheme sharing the link")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent, help="where results and plots go")
    a = ap.parse_args()
    wanted = [x for x in a.schemes.split(",") if x]
    work = Path(tempfile.mkdtemp(prefix="pf-bench-cc-"))
    task = TASK_CLASS()
    task.prepare(work / "shared")
    policies = {f"seed:{s.name}": task.render(s.genome) for s in task.seeds()}
    for item in a.policy:
        name, _, path = item.partition("=")
        policies[name] = Path(path).read_text()
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
    kernel = [s for s in available if not s.startswith("pf_")]
    if wanted:
        unknown = [x for x in wanted if x not in policies and x not in available]
        if unknown:
            raise SystemExit(f"unknown scheme(s) {', '.join(unknown)}: not a kernel CC, seed:NAME or --policy NAME")
        policies = {k: v for k, v in policies.items() if k in wanted}
    compiled = {}
    for name, src in policies.items():
        c = task.check(src, work / name.replace(":", "_"))
        if not c.ok:
            raise SystemExit(f"{name} fails the {c.stage} check:\n{c.feedback}")
        compiled[name] = c
    order = wanted or kernel + list(compiled)
    rows = []
    for link_name, link in LINKS.items():
        for scheme in order:
            cc = scheme
            if scheme in compiled:
                obj = compiled[scheme].artifact
                cc = obj.name.split(".")[0]
                ok, log = task.register(obj)
                assert ok, log
            try:
                r = run_experiment(Experiment(link, [FlowSpec(cc, i, a.duration) for i in range(a.flows)]))
            finally:
                if scheme in compiled:
                    task.unregister(cc)
            rows.append({"link": link_name, "scheme": scheme, **{k: r[k] for k in (
                "throughput_mbps", "utilization", "mean_delay_ms", "p95_delay_ms", "loss", "retransmits", "jain", "score")},
                "linkem_late_p99_ms": r["emulator_late_ms"]["p99_ms"], "linkem_late_max_ms": r["emulator_late_ms"]["max_ms"],
                "cwnd": [(s["t"], s["cwnd_bytes"]) for s in r["flows"][0]["series"]],
                "rtt": [(s["t"], s["rtt_ms"]) for s in r["flows"][0]["series"]]})
            print(f"{link_name:<28} {scheme:<14} {r['throughput_mbps']:6.2f} Mbit/s  util {r['utilization']:.3f}  "
                  f"p95 {r['p95_delay_ms']:.1f} ms  score {r['score']:.3f}", flush=True)
    here = a.out
    here.mkdir(parents=True, exist_ok=True)
    cmd = "python bench/cc/run.py " + " ".join(sys.argv[1:])
    (here / "results.json").write_text(json.dumps({"machine": machine(), "command": cmd, "rows": rows}, indent=2))
    plot(rows, here)
    lines = ["# bench/cc — congestion control on emulated links (host, linkem)", "",
             f"Machine: {machine()}  ", f"Command: `{cmd}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             (f"One {a.duration:g} s iperf3 flow per scheme" if a.flows == 1 else
              f"{a.flows} iperf3 flows of {a.duration:g} s per scheme, started 1 s apart (Jain = fairness)") +
             "; queue = 1 BDP droptail. Score = throughput / p95 "
             "per-packet one-way delay (Mbit/s per ms; PolicySmith's metric). `seed:*` are the cc task's seed "
             "policies as BPF struct_ops.", ""]
    for link_name in LINKS:
        lines += [f"## {link_name}", "", "| scheme | throughput Mbit/s | utilization | mean delay ms | p95 delay ms | loss "
                  "| retransmits | Jain | score |", "|---|---|---|---|---|---|---|---|---|"]
        for r in (x for x in rows if x["link"] == link_name):
            lines.append(f"| {r['scheme']} | {r['throughput_mbps']:.2f} | {r['utilization']:.3f} | {r['mean_delay_ms']:.1f} | "
                         f"{r['p95_delay_ms']:.1f} | {r['loss']:.4f} | {r['retransmits']} | {r['jain']:.3f} | {r['score']:.3f} |")
        lines.append("")
    lines += [f"linkem's own timing error over all these runs (delivery minus scheduled delivery, per packet): "
              f"worst p99 {max(r['linkem_late_p99_ms'] for r in rows):.3f} ms, "
              f"worst max {max(r['linkem_late_max_ms'] for r in rows):.3f} ms.", ""]
    lines += ["Plots: `tput_vs_delay.png` (throughput against p95 delay, each scheme on each link), `cwnd.png` "
              "and `rtt.png` (cwnd and smoothed RTT over time, first flow, both links).", "",
              "Utilization is counted at the link (IP bytes linkem delivered between the first and last data "
              "departure, over the capacity of that window); throughput is iperf3's goodput (all flows' "
              "received bytes) over that window. Delays are one-way through linkem (10 ms propagation + queueing)."]
    (here / "results.md").write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], here: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(LINKS), figsize=(11, 4))
    for ax, link_name in zip(axes, LINKS):
        for r in (x for x in rows if x["link"] == link_name):
            ax.scatter(r["p95_delay_ms"], r["throughput_mbps"], s=40)
            ax.annotate(r["scheme"], (r["p95_delay_ms"], r["throughput_mbps"]), fontsize=8)
        ax.set_xlabel("p95 one-way delay (ms)")
        ax.set_ylabel("throughput (Mbit/s)")
        ax.set_title(link_name, fontsize=10)
        ax.invert_xaxis()
    fig.tight_layout()
    fig.savefig(here / "tput_vs_delay.png", dpi=100)
    plt.close(fig)
    # cwnd and RTT (iperf3's snd_cwnd / rtt every 0.2 s, first flow) on each link
    for key, label, scale, png in (("cwnd", "cwnd (packets of 1448 bytes)", 1 / 1448, "cwnd.png"),
                                   ("rtt", "smoothed RTT (ms)", 1.0, "rtt.png")):
        fig, axes = plt.subplots(1, len(LINKS), figsize=(11, 3.8), sharey=False)
        for ax, link_name in zip(axes, LINKS):
            for r in (x for x in rows if x["link"] == link_name):
                ax.plot([t for t, _ in r[key]], [v * scale for _, v in r[key]], label=r["scheme"], lw=1)
            ax.set_xlabel("time (s)")
            ax.set_ylabel(label)
            ax.set_title(link_name, fontsize=10)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(here / png, dpi=100)
        plt.close(fig)


if __name__ == "__main__":
    main()
