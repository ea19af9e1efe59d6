"""Run an Experiment on this host: a dumbbell of network namespaces joined by linkem.

One flow (hosts=1): the sender and receiver are the two namespaces that hold linkem's TUN
devices.

    [sender ns] tun-a  <->  linkem (this namespace; queue, bottleneck, delay)  <->  tun-b [receiver ns]
      10.77.0.1/24                                                                   10.77.0.2/24

N flows (hosts=N): those two namespaces become the left and right routers, and each flow
gets its own sender host and receiver host, each joined to its router by a veth pair:

    [snd host i] 10.78.i.2 -veth- 10.78.i.1 [left router] tun-a <-> linkem <-> tun-b
        [right router] 10.79.i.1 -veth- 10.79.i.2 [rcv host i]

linkem creates both TUN devices; they are then moved into the namespaces (pyroute2), its
file descriptors keep working. iperf3 servers run in the receiver hosts, clients with
`-C scheme` in the sender hosts. Everything is named after this process (pfs<pid>x<n>,
pfs<pid>x<n>h<i>, ...) and torn down afterwards, also on errors and Ctrl-C; what a killed
process left behind is removed by cleanup_stale().
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .acktrace import AckTracer, netns_inode, series as ack_series
from .metrics import emulator_lateness, interval_usage, iperf3_flow, jain, link_window, packet_delays
from .traces import trace_capacity_mbps
from .score import score as score_of
from .spec import Experiment, HarnessError

_seq = itertools.count()
NS_PREFIXES = ("pfs", "pfr")        # sender / receiver namespaces: <prefix><pid>x<n>


def cleanup_stale() -> list[str]:
    """Remove the namespaces of harness processes that no longer exist (killed with -9),
    and the iperf3 processes left inside them. Their TUN devices went away with their
    linkem already (it exits when its parent dies)."""
    from pyroute2 import netns
    removed = []
    for name in netns.listnetns():
        if not name.startswith(NS_PREFIXES) or "x" not in name:
            continue
        pid = name[3:].split("x")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            left = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
            for orphan in left:
                try:
                    os.kill(int(orphan), signal.SIGKILL)
                except (ValueError, OSError):
                    pass
            try:
                netns.remove(name)
                removed.append(name)
            except OSError:
                pass
    return removed


def available_schemes() -> list[str]:
    return Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()


# The userspace link emulator: its path is given by the caller (policyforge passes its build's,
# testbed.use_linkem), or PF_LINKEM, or found on PATH; the testbed imports nothing else of policyforge.
LINKEM: str | None = os.environ.get("PF_LINKEM") or None


def use_linkem(path: str | os.PathLike) -> None:
    """Where linkem is, for every dumbbell from now on."""
    global LINKEM
    LINKEM = str(path)


def _linkem() -> str:
    found = LINKEM or shutil.which("linkem")
    if not found:
        raise HarnessError("linkem is not found: pass its path with policyforge.testbed.use_linkem(PATH) or PF_LINKEM "
                           "(`make build` builds it)")
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


def _ip(ns: str, *argv: str) -> None:
    r = subprocess.run(["ip", "-n", ns, *argv], capture_output=True, text=True)
    if r.returncode:
        raise HarnessError(f"ip -n {ns} {' '.join(argv)}: {r.stderr.strip()}")


class Dumbbell:
    """The namespaces and linkem of one experiment, torn down on exit (also on errors).

        with Dumbbell(link, work_dir) as db:              # one sender, one receiver
            db.snd(["ping", "-c", "3", db.RCV_ADDR])
        with Dumbbell(link, work_dir, hosts=3) as db:     # three of each, one bottleneck
            db.spawn_rcv(["iperf3", "-s"], host=2)
            db.snd(["iperf3", "-c", db.rcv_addr(2)], host=2)
    """
    SND_ADDR, RCV_ADDR = "10.77.0.1", "10.77.0.2"

    def __init__(self, link, work: Path, hosts: int = 1):
        if hosts < 1 or hosts > 250:
            raise HarnessError(f"a dumbbell has 1 to 250 hosts a side, not {hosts}")
        self.link, self.work, self.hosts = link, Path(work), hosts
        tag = f"{os.getpid()}x{next(_seq)}"          # device names stay within 15 characters
        self.snd_ns, self.rcv_ns, self.dev_a, self.dev_b = f"pfs{tag}", f"pfr{tag}", f"pfa{tag}", f"pfb{tag}"
        # with one host the routers are the hosts
        self.snd_hosts = [self.snd_ns] if hosts == 1 else [f"{self.snd_ns}h{i}" for i in range(hosts)]
        self.rcv_hosts = [self.rcv_ns] if hosts == 1 else [f"{self.rcv_ns}h{i}" for i in range(hosts)]
        self.log = self.work / "linkem.bin"
        self.emu: subprocess.Popen | None = None
        self.procs: list[subprocess.Popen] = []

    def rcv_addr(self, host: int = 0) -> str:
        return self.RCV_ADDR if self.hosts == 1 else f"10.79.{host}.2"

    def snd_addr(self, host: int = 0) -> str:
        return self.SND_ADDR if self.hosts == 1 else f"10.78.{host}.2"

    def __enter__(self) -> "Dumbbell":
        from pyroute2 import netns
        link = self.link
        link.validate()
        cleanup_stale()
        self.work.mkdir(parents=True, exist_ok=True)
        queue = link.queue_pkts or (None if link.queue_bytes else link.bdp_pkts())
        cmd = [_linkem(), "--dev-a", self.dev_a, "--dev-b", self.dev_b, "--delay-ms", str(link.delay_ms),
               "--log", str(self.log)]
        if link.trace:
            cmd += ["--trace", str(link.trace)]
        elif link.rate_mbps:
            cmd += ["--rate-mbps", str(link.rate_mbps)]
        if queue:
            cmd += ["--queue-pkts", str(queue)]
        elif link.queue_bytes:
            cmd += ["--queue-bytes", str(link.queue_bytes)]
        if link.loss:
            cmd += ["--loss", str(link.loss)]
        try:
            netns.create(self.snd_ns)
            netns.create(self.rcv_ns)
            self.emu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if self.emu.stdout.readline().strip() != "ready":
                raise HarnessError(f"linkem did not start: {self.emu.stderr.read().strip()}")
            _ns_setup(self.snd_ns, self.dev_a, self.SND_ADDR)
            _ns_setup(self.rcv_ns, self.dev_b, self.RCV_ADDR)
            if self.hosts > 1:
                self._attach_hosts()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _attach_hosts(self) -> None:
        """Give each router its hosts (veth pairs, one /24 each) and route the far side's
        hosts through the TUN device, so that every packet between the sides crosses linkem."""
        from pyroute2 import netns
        sides = ((self.snd_ns, self.dev_a, self.snd_hosts, "10.78", "10.79"),
                 (self.rcv_ns, self.dev_b, self.rcv_hosts, "10.79", "10.78"))
        for router, tun, hosts, net, far in sides:
            for i, host in enumerate(hosts):
                netns.create(host)
                for argv in ([router, "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", "netns", host],
                             [router, "addr", "add", f"{net}.{i}.1/24", "dev", f"h{i}"],
                             [router, "link", "set", f"h{i}", "up"],
                             [host, "addr", "add", f"{net}.{i}.2/24", "dev", "eth0"],
                             [host, "link", "set", "eth0", "up"],
                             [host, "link", "set", "lo", "up"],
                             [host, "route", "add", "default", "via", f"{net}.{i}.1"]):
                    _ip(*argv)
            _ip(router, "route", "add", f"{far}.0.0/16", "dev", tun)
            r = self._exec(router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            if r.returncode:
                raise HarnessError(f"cannot enable forwarding in {router}: {r.stderr.strip()}")

    def _exec(self, ns: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, **kw)

    def snd(self, argv: list[str], host: int = 0, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run argv on a sender host to its end; tracked like the receivers, so that leaving the
        dumbbell (also on Ctrl-C, while another thread waits here) kills it."""
        p = subprocess.Popen(["ip", "netns", "exec", self.snd_hosts[host], *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def spawn_rcv(self, argv: list[str], host: int = 0) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", self.rcv_hosts[host], *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def __exit__(self, *exc) -> None:
        from pyroute2 import netns
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if self.emu is not None:
            self.emu.terminate()
            try:
                self.emu.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.emu.kill()
            self.emu = None
        hosts = self.snd_hosts + self.rcv_hosts if self.hosts > 1 else []
        for ns in hosts + [self.snd_ns, self.rcv_ns]:
            try:
                netns.remove(ns)
            except OSError:
                pass


def _link_usage(link, log: Path) -> dict | None:
    """Capacity and utilization over the window in which data crossed the bottleneck: the
    bytes linkem delivered against what the rate or the trace offered in that same window
    (a 5 s run sees only part of a 30 s trace, whose mean would mislead)."""
    window = link_window(log)
    if window is None or window["end_s"] <= window["start_s"]:
        return None
    seconds = window["end_s"] - window["start_s"]
    if link.trace:
        capacity = trace_capacity_mbps(link.trace, window["start_s"], window["end_s"])
    else:
        capacity = link.capacity_mbps()
    utilization = window["bytes"] * 8 / seconds / 1e6 / capacity if capacity else 0.0
    return {"seconds": seconds, "capacity_mbps": capacity, "utilization": utilization}


def run_experiment(exp: Experiment, out_dir: Path | None = None, keep_log: bool = False,
                   score: str = "throughput_over_p95_delay", interval_s: tuple[float, float] | None = None,
                   acks: bool = False) -> dict:
    """Run the flows of exp over its link; return the metrics (see py/policyforge/testbed/README.md).
    With `interval_s` = (start, end), in seconds of link time (linkem's time 0 is when the link
    came up, a few hundred ms before the flows start), throughput, utilization, delay and loss
    are those of that interval alone; the flows must cover it. With `acks`, every flow's sender
    is traced at every ACK (testbed/acktrace.py) and its flow carries `acks`: time, cwnd,
    ssthresh, srtt and delivery rate, thinned to 400 points."""
    exp.validate()
    for tool in ("iperf3", "ip"):
        if not shutil.which(tool):
            raise HarnessError(f"{tool} is not installed (make deps)")
    schemes = available_schemes()
    for f in exp.flows:
        if f.scheme not in schemes:
            raise HarnessError(f"congestion control '{f.scheme}' is not available here ({', '.join(schemes)})")
    link = exp.link
    work = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="pf-harness-"))
    reports: list[dict | None] = [None] * len(exp.flows)
    with Dumbbell(link, work, hosts=len(exp.flows)) as db, contextlib.ExitStack() as tracing:
        tracers = [tracing.enter_context(AckTracer(netns_inode(db.snd_hosts[i]), 5201 + i, 5201 + i))
                   for i in range(len(exp.flows))] if acks else []
        for i in range(len(exp.flows)):
            db.spawn_rcv(["iperf3", "-s", "-1", "-p", str(5201 + i)], host=i)
        time.sleep(0.3)

        def client(i: int) -> None:
            f = exp.flows[i]
            time.sleep(f.start_s)
            r = db.snd(["iperf3", "-c", db.rcv_addr(i), "-p", str(5201 + i), "-t", str(f.duration_s), "-C", f.scheme,
                        "-J", "-i", "0.2", "--connect-timeout", "3000"], host=i, timeout=f.start_s + f.duration_s + 30)
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
    log = db.log
    flows = [iperf3_flow(r) for r in reports]
    for f, tr in zip(flows, tracers):
        f["acks"] = ack_series(tr.main_flow())
    delays = packet_delays(log, interval_s=interval_s)
    if interval_s is not None:
        # the same interval of link time for every scheme: what the link delivered in it
        start, end = interval_s
        got = interval_usage(log, start, end)
        cap = trace_capacity_mbps(link.trace, start, end) if link.trace else link.capacity_mbps()
        tput = (got["bytes"] * 8 / (end - start) / 1e6) if got else 0.0
        utilization = tput / cap if cap else 0.0
    else:
        usage = _link_usage(link, log)
        cap = usage["capacity_mbps"] if usage else link.capacity_mbps()
        utilization = usage["utilization"] if usage else 0.0
        # throughput (goodput): all flows' received bytes over the time data crossed the link
        # (the flows' nominal span undercounts: iperf3 starts each test after its own handshake)
        span = usage["seconds"] if usage else (max(f.start_s + f.duration_s for f in exp.flows)
                                               - min(f.start_s for f in exp.flows))
        tput = sum(f["bytes"] for f in flows) * 8 / span / 1e6
    result = {
        "experiment": json.loads(exp.to_json()), "capacity_mbps": cap, "throughput_mbps": tput,
        "utilization": utilization, "mean_delay_ms": delays["mean_delay_ms"],
        "p95_delay_ms": delays["p95_delay_ms"],
        "p95_queueing_ms": None if delays["p95_delay_ms"] is None else delays["p95_delay_ms"] - link.delay_ms,
        "loss": delays["loss"], "retransmits": sum(f["retransmits"] for f in flows),
        "jain": jain([f["throughput_mbps"] for f in flows]), "flows": flows,
        "delay_timeline": delays.get("timeline"), "interval_s": list(interval_s) if interval_s else None,
        # linkem's own timing error in this run (should stay well under 0.5 ms)
        "emulator_late_ms": emulator_lateness(log, link.delay_ms),
    }
    result["score_name"] = score
    result["score"] = score_of(result, score)
    if not keep_log:
        log.unlink(missing_ok=True)
    return result
