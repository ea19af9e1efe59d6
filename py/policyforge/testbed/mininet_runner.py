#!/usr/bin/env python3
"""Run an experiment description (py/policyforge/testbed/spec.py JSON) on Mininet inside the policyforge VM.

The same description as the host harness: one bottleneck link (rate, one-way delay, loss,
droptail queue) and iperf3 flows, each with its congestion control, start and duration. Here
the link is a Mininet dumbbell, snd -- s1 ==TCLink== s2 -- rcv, with LinuxBridge switches and
no controller. The data direction (s1 -> s2) gets htb at the rate and netem with the delay,
the loss and the queue limit (1 BDP by default, as on the host); the ACK direction gets the
delay only, so the RTT is 2 x delay as on the host.

Runs in the guest with Debian's python3 + mininet only (no numpy, no policyforge package; only
ackrows.py beside it):
    python3 py/policyforge/testbed/mininet_runner.py experiment.json > result.json
Prints one JSON object: throughput, mean / p95 RTT (from iperf3), retransmits, per-flow series.
With "acks": true in the experiment, every flow's sender is traced at every ACK as on the host
(pf-tcptrace, built in the guest against its own kernel's BTF) and the flow carries `acks`.
"""
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ackrows import TracerError, TracerProcess, build_object, series   # beside this file

REPO = Path(__file__).resolve().parents[3]


def load_experiment(path: str) -> dict:
    with open(path) as f:
        exp = json.load(f)
    link = exp["link"]
    if link.get("trace"):
        raise SystemExit("mininet_runner: trace links need linkem (host harness); netem runs fixed rates")
    return exp


def queue_pkts(link: dict) -> int:
    """The droptail limit in packets, defaulting to one BDP like py/policyforge/testbed/spec.py."""
    if link.get("queue_pkts"):
        return int(link["queue_pkts"])
    if link.get("queue_bytes"):
        return max(1, int(link["queue_bytes"]) // 1500)
    rate = link.get("rate_mbps") or 0
    if not rate:
        return 1000
    return max(4, int(rate * 1e6 / 8 * (2 * link.get("delay_ms", 10.0) / 1000) / 1500))


def in_flight_pkts(link: dict) -> int:
    """Packets that sit in netem's delay line at full rate: rate x one-way delay."""
    rate = link.get("rate_mbps") or 0
    return int(rate * 1e6 / 8 * link.get("delay_ms", 10.0) / 1000 / 1500) + 1


def build_net(link: dict, hosts: int = 1):
    """A dumbbell like the host's: `hosts` senders on switch s1, as many receivers on s2, and
    one TCLink s1-s2 (netem/htb) as the bottleneck. Sender i is 10.0.0.(i+1), receiver i
    10.0.0.(i+101)."""
    from mininet.link import Link, TCLink
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge
    net = Mininet(controller=None, switch=LinuxBridge, link=Link, autoSetMacs=True, waitConnected=False)
    s1, s2 = net.addSwitch("s1"), net.addSwitch("s2")
    snds = [net.addHost(f"snd{i}", ip=f"10.0.0.{i + 1}/24") for i in range(hosts)]
    rcvs = [net.addHost(f"rcv{i}", ip=f"10.0.0.{i + 101}/24") for i in range(hosts)]
    for snd, rcv in zip(snds, rcvs):
        net.addLink(snd, s1)
        net.addLink(rcv, s2)
    delay = f"{link.get('delay_ms', 10.0):g}ms"
    # netem's limit counts the packets in its delay line too: add the one-way BDP so the
    # droptail backlog matches linkem's queue (else cubic/reno lose a third of the rate)
    data_dir = {"delay": delay, "max_queue_size": queue_pkts(link) + in_flight_pkts(link)}
    if link.get("rate_mbps"):
        data_dir["bw"] = float(link["rate_mbps"])
    if link.get("loss"):
        data_dir["loss"] = float(link["loss"]) * 100        # netem takes percent
    bottleneck = net.addLink(s1, s2, cls=TCLink, params1=data_dir, params2={"delay": delay})
    net.start()
    for intf in (bottleneck.intf1, bottleneck.intf2):         # the bottleneck: no offloads
        intf.cmd(f"ethtool -K {intf} tso off gso off gro off 2>/dev/null")
    for host in snds + rcvs:
        host.cmd(f"ethtool -K {host.defaultIntf()} tso off gso off gro off 2>/dev/null")
    return net, snds, rcvs


def flow_metrics(report: dict) -> dict:
    end = report.get("end", {})
    series = []
    for iv in report.get("intervals", []):
        st = iv["streams"][0]
        series.append({"t": st["end"], "mbps": st["bits_per_second"] / 1e6,
                       "cwnd_bytes": st.get("snd_cwnd"), "rtt_ms": st.get("rtt", 0) / 1000})
    return {"throughput_mbps": end.get("sum_received", {}).get("bits_per_second", 0.0) / 1e6,
            "bytes": end.get("sum_received", {}).get("bytes", 0),
            "retransmits": end.get("sum_sent", {}).get("retransmits", 0), "series": series}


def percentile(xs: list, q: float):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def tracer_tool(work: Path = Path("/tmp/pf-tcptrace")) -> tuple[str, str]:
    """pf-tcptrace and its BPF object, built in the guest from the repository's sources once per
    boot (/tmp is a tmpfs in the VM): gcc against Debian's libbpf, clang against this kernel's BTF."""
    src = REPO / "native" / "tcptrace"
    work.mkdir(exist_ok=True)
    binary, obj = work / "pf-tcptrace", work / "pf_tcptrace.o"
    try:
        if not binary.exists():
            r = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(src / "pf-tcptrace.c"), "-lbpf"],
                               capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"mininet_runner: pf-tcptrace does not build: {r.stderr.strip()[-300:]}")
        if not obj.exists():
            build_object(src / "pf_tcptrace.bpf.c", work, obj)
    except TracerError as e:
        raise SystemExit(f"mininet_runner: {e}") from None
    return str(binary), str(obj)


def run(exp: dict) -> dict:
    link, flows = exp["link"], exp["flows"]
    tool = tracer_tool() if exp.get("acks") else None
    net, snds, rcvs = build_net(link, hosts=len(flows))     # one sender and receiver host per flow
    tracing = contextlib.ExitStack()
    try:
        # a Mininet host is a shell in its own network namespace: the tracer keeps the sockets
        # of that namespace (its inode) whose remote port is the flow's iperf3 server's
        tracers = [tracing.enter_context(TracerProcess(*tool, os.stat(f"/proc/{snds[i].pid}/ns/net").st_ino,
                                                       5201 + i, 5201 + i))
                   for i in range(len(flows))] if tool else []
        servers = [rcvs[i].popen(["iperf3", "-s", "-1", "-p", str(5201 + i)]) for i in range(len(flows))]
        time.sleep(0.5)
        reports = [None] * len(flows)

        def client(i: int) -> None:
            f = flows[i]
            time.sleep(f.get("start_s", 0.0))
            p = snds[i].popen(["iperf3", "-c", rcvs[i].IP(), "-p", str(5201 + i), "-t", str(f.get("duration_s", 5)),
                           "-C", f["scheme"], "-J", "-i", "0.2", "--connect-timeout", "3000"])
            out, err = p.communicate()
            try:
                reports[i] = json.loads(out)
            except ValueError:
                reports[i] = {"error": (err or out).decode(errors="replace").strip()[:300]}

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(flows))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in servers:
            s.kill()
    except TracerError as e:
        raise SystemExit(f"mininet_runner: {e}") from None
    finally:
        tracing.close()
        net.stop()
    errors = [r.get("error") for r in reports if "error" in r]
    if errors:
        raise SystemExit(f"mininet_runner: iperf3 failed: {errors[0]}")
    per_flow = [flow_metrics(r) for r in reports]
    for f, tr in zip(per_flow, tracers):
        f["acks"] = series(tr.main_flow())
    span = max(f.get("start_s", 0) + f.get("duration_s", 5) for f in flows) - min(f.get("start_s", 0) for f in flows)
    rtts = [p["rtt_ms"] for fl in per_flow for p in fl["series"] if p["rtt_ms"]]
    tputs = [fl["throughput_mbps"] for fl in per_flow]
    return {"experiment": exp, "testbed": "vm-mininet-netem", "capacity_mbps": link.get("rate_mbps"),
            "throughput_mbps": sum(fl["bytes"] for fl in per_flow) * 8 / span / 1e6,
            "mean_rtt_ms": sum(rtts) / len(rtts) if rtts else None, "p95_rtt_ms": percentile(rtts, 0.95),
            "retransmits": sum(fl["retransmits"] for fl in per_flow),
            "jain": (sum(tputs) ** 2 / (len(tputs) * sum(x * x for x in tputs))) if any(tputs) else 0.0,
            "flows": per_flow}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: mininet_runner.py EXPERIMENT.json")
    from mininet.log import setLogLevel
    setLogLevel("error")
    print(json.dumps(run(load_experiment(sys.argv[1]))))
