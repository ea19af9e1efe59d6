"""Run an Experiment on this host: two network namespaces joined by linkem.

    [sender ns] tun-a  <->  linkem (this namespace; queue, bottleneck, delay)  <->  tun-b [receiver ns]
      10.77.0.1/24                                                                   10.77.0.2/24

linkem creates both TUN devices; they are then moved into the namespaces (pyroute2), its
file descriptors keep working. iperf3 servers run in the receiver namespace, clients with
`-C scheme` in the sender namespace. Everything is named after this process and torn
down afterwards, also on errors.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .metrics import iperf3_flow, jain, packet_delays
from .spec import Experiment

_seq = itertools.count()


class HarnessError(Exception):
    """A testbed problem the user can fix (missing tool, unknown scheme, bad trace)."""


def available_schemes() -> list[str]:
    return Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()


def _linkem() -> str:
    try:
        import policyforge.native as native
        return str(native.native_path("bin", "linkem"))
    except Exception:
        found = shutil.which("linkem")
        if not found:
            raise HarnessError("linkem is not built: run `make build`") from None
        return found


def _ns_setup(ns_name: str, dev: str, addr: str) -> None:
    from pyroute2 import IPRoute, NetNS
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=dev)
        if not idx:
            raise HarnessError(f"TUN device {dev} did not appear")
        ipr.link("set", index=idx[0], net_ns_fd=ns_name)
    with NetNS(ns_name) as ns:
        lo = ns.link_lookup(ifname="lo")[0]
        ns.link("set", index=lo, state="up")
        i = ns.link_lookup(ifname=dev)[0]
        ns.addr("add", index=i, address=addr, prefixlen=24)
        ns.link("set", index=i, state="up", txqlen=1000)


def run_experiment(exp: Experiment, out_dir: Path | None = None, keep_log: bool = False) -> dict:
    for tool in ("iperf3", "ip"):
        if not shutil.which(tool):
            raise HarnessError(f"{tool} is not installed (make deps)")
    schemes = available_schemes()
    for f in exp.flows:
        if f.scheme not in schemes:
            raise HarnessError(f"congestion control '{f.scheme}' is not available here ({', '.join(schemes)})")
    from pyroute2 import netns

    link = exp.link
    if link.trace and not Path(link.trace).is_file():
        raise HarnessError(f"link trace {link.trace} does not exist")
    tag = f"{os.getpid() % 100000}x{next(_seq)}"
    snd, rcv, dev_a, dev_b = f"pfs{tag}", f"pfr{tag}", f"pfa{tag}", f"pfb{tag}"
    work = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="pf-harness-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "linkem.bin"
    queue = link.queue_pkts or (None if link.queue_bytes else link.bdp_pkts())
    cmd = [_linkem(), "--dev-a", dev_a, "--dev-b", dev_b, "--delay-ms", str(link.delay_ms), "--log", str(log)]
    cmd += ["--trace", str(link.trace)] if link.trace else ["--rate-mbps", str(link.rate_mbps)]
    cmd += ["--queue-pkts", str(queue)] if queue else ["--queue-bytes", str(link.queue_bytes)]
    if link.loss:
        cmd += ["--loss", str(link.loss)]
    procs: list[subprocess.Popen] = []
    emu = None
    try:
        netns.create(snd)
        netns.create(rcv)
        emu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if emu.stdout.readline().strip() != "ready":
            raise HarnessError(f"linkem did not start: {emu.stderr.read().strip()}")
        _ns_setup(snd, dev_a, "10.77.0.1")
        _ns_setup(rcv, dev_b, "10.77.0.2")
        reports: list[dict | None] = [None] * len(exp.flows)
        servers = []
        for i in range(len(exp.flows)):
            servers.append(subprocess.Popen(["ip", "netns", "exec", rcv, "iperf3", "-s", "-1", "-p", str(5201 + i)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs += servers
        time.sleep(0.3)

        def client(i: int) -> None:
            f = exp.flows[i]
            time.sleep(f.start_s)
            r = subprocess.run(["ip", "netns", "exec", snd, "iperf3", "-c", "10.77.0.2", "-p", str(5201 + i),
                                "-t", str(f.duration_s), "-C", f.scheme, "-J", "-i", "0.2", "--connect-timeout", "3000"],
                               capture_output=True, text=True, timeout=f.start_s + f.duration_s + 30)
            try:
                reports[i] = json.loads(r.stdout)
            except ValueError:
                reports[i] = {"error": (r.stderr or r.stdout).strip()[:300]}

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(exp.flows))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = [r.get("error") for r in reports if r is None or "error" in r]
        if errors:
            raise HarnessError(f"iperf3 failed: {errors[0]}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if emu is not None:
            emu.terminate()
            try:
                emu.wait(timeout=5)
            except subprocess.TimeoutExpired:
                emu.kill()
        for ns in (snd, rcv):
            try:
                netns.remove(ns)
            except OSError:
                pass
    flows = [iperf3_flow(r) for r in reports]
    delays = packet_delays(log)
    cap = link.capacity_mbps()
    tput = sum(f["throughput_mbps"] for f in flows)
    result = {
        "experiment": json.loads(exp.to_json()), "capacity_mbps": cap, "throughput_mbps": tput,
        "utilization": tput / cap if cap else 0.0, "mean_delay_ms": delays["mean_delay_ms"],
        "p95_delay_ms": delays["p95_delay_ms"],
        "p95_queueing_ms": None if delays["p95_delay_ms"] is None else delays["p95_delay_ms"] - link.delay_ms,
        "loss": delays["loss"], "retransmits": sum(f["retransmits"] for f in flows),
        "jain": jain([f["throughput_mbps"] for f in flows]), "flows": flows,
        "delay_timeline": delays.get("timeline"),
    }
    # PolicySmith's score: throughput over p95 per-packet delay (Mbit/s per ms)
    result["score"] = tput / delays["p95_delay_ms"] if delays["p95_delay_ms"] else 0.0
    if not keep_log:
        log.unlink(missing_ok=True)
    return result
