"""The per-ACK tracer's records and its build, with no imports beyond the standard library: the
host's AckTracer (acktrace.py) and mininet_runner.py in the VM guest (Debian's python3 alone)
share them.

pf-tcptrace prints one CSV line per ACK after a first line "ready":
    t_ns,sport,dport,ca,cwnd,ssthresh,srtt_us,mss,delivered,rate_delivered,rate_interval_us
"""
from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import threading
from pathlib import Path

INFINITE_SSTHRESH = 0x7FFFFFFF


class TracerError(Exception):
    """The tracer did not build or start; the message says which step and why."""


@dataclasses.dataclass
class AckRow:
    t_s: float                 # since the first ACK the tracer saw
    cwnd: int                  # packets
    ssthresh: int | None       # packets; None while infinite
    srtt_ms: float
    rate_mbps: float | None    # the last rate sample, None before the first
    delivered: int
    ca: str


def parse(lines) -> dict[tuple[int, int], list[AckRow]]:
    """(local port, remote port) -> the ACKs of that connection, in order."""
    out: dict[tuple[int, int], list[AckRow]] = {}
    t0 = None
    for line in lines:
        f = line.strip().split(",")
        if len(f) != 11 or not f[0].isdigit():
            continue
        t = int(f[0])
        t0 = t if t0 is None else t0
        cwnd, ssthresh, srtt, mss = int(f[4]), int(f[5]), int(f[6]), int(f[7])
        rd, ri = int(f[9]), int(f[10])
        out.setdefault((int(f[1]), int(f[2])), []).append(AckRow(
            t_s=(t - t0) / 1e9, cwnd=cwnd, ssthresh=None if ssthresh >= INFINITE_SSTHRESH else ssthresh,
            srtt_ms=srtt / 1000, rate_mbps=rd * mss * 8 / ri if ri else None, delivered=int(f[8]), ca=f[3]))
    return out


def main_flow(conns: dict[tuple[int, int], list[AckRow]]) -> list[AckRow]:
    """The ACKs of the connection with the most (iperf3's data stream, not its control one)."""
    return max(conns.values(), key=len) if conns else []


def series(rows: list[AckRow], points: int = 400) -> dict[str, list]:
    """A connection's ACKs as columns, thinned to at most `points` evenly spaced ACKs."""
    step = max(1, -(-len(rows) // points))
    keep = rows[::step]
    return {"t_s": [round(r.t_s, 4) for r in keep], "cwnd": [r.cwnd for r in keep],
            "ssthresh": [r.ssthresh for r in keep], "srtt_ms": [round(r.srtt_ms, 3) for r in keep],
            "rate_mbps": [None if r.rate_mbps is None else round(r.rate_mbps, 3) for r in keep],
            "acks": len(rows), "ca": rows[0].ca if rows else ""}


def build_object(source: Path, work: Path, out: Path, btf: Path = Path("/sys/kernel/btf/vmlinux")) -> Path:
    """Compile the tracer's BPF program against this kernel's BTF (bpftool dumps vmlinux.h,
    clang builds a CO-RE object) into `out`, using the folder `work`."""
    if not btf.exists():
        raise TracerError(f"this kernel has no BTF ({btf}): per-ACK tracing needs it")
    try:
        r = subprocess.run(["bpftool", "btf", "dump", "file", str(btf), "format", "c"], capture_output=True, text=True)
        if r.returncode:
            raise TracerError(f"bpftool could not dump the kernel's BTF: {r.stderr.strip()[:200]}")
        (work / "vmlinux.h").write_text(r.stdout)
        shutil.copy(source, work / "pf_tcptrace.bpf.c")
        r = subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I.", "-c",
                            "pf_tcptrace.bpf.c", "-o", "t.o"], cwd=work, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise TracerError(f"{e.filename} is not installed") from None
    if r.returncode:
        raise TracerError(f"the per-ACK tracer does not compile: {r.stderr.strip()[-300:]}")
    (work / "t.o").replace(out)
    return out


class TracerProcess:
    """pf-tcptrace BINARY OBJ NETNS_INODE PORT_LO PORT_HI for the duration of a `with` block: the
    ACKs of the sockets in that network namespace whose remote port is in [PORT_LO, PORT_HI]."""

    def __init__(self, binary: str, obj: str, netns: int, port_lo: int, port_hi: int):
        self.binary, self.obj, self.netns, self.ports = binary, obj, netns, (port_lo, port_hi)
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.error = ""

    def __enter__(self):
        self.proc = subprocess.Popen([self.binary, str(self.obj), str(self.netns), *map(str, self.ports)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        if first != "ready":
            self.proc.kill()
            err = self.proc.stderr.read().strip()
            raise TracerError(f"pf-tcptrace did not start: {err[-300:] or first or 'no output'}")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        self.error = self.proc.stderr.read().strip() if self.proc.stderr else ""
        self.proc = None

    def main_flow(self) -> list[AckRow]:
        """The ACKs of the connection with the most (iperf3's data stream, not its control one)."""
        return main_flow(self.flows())

    def flows(self) -> dict[tuple[int, int], list[AckRow]]:
        """(local port, remote port) -> the ACKs of that connection, in order."""
        return parse(self.lines)
