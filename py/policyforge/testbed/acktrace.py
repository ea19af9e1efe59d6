"""Per-ACK traces of the senders' TCP state for any congestion control: cwnd, ssthresh, srtt and
the delivery rate at every ACK, from the kernel's tcp:tcp_probe tracepoint.

bcc was the first choice and cannot work on this host: it compiles its programs against the
running kernel's headers, and there are none for this kernel (no /lib/modules/$(uname -r)/build,
no CONFIG_IKHEADERS); `BPF(text=...)` fails with "Unable to find kernel headers" (docs/testbed.md).
So the tracer is libbpf directly: a small BPF program (pf_tcptrace.bpf.c, a BTF tracepoint) built
at run time with clang against this kernel's BTF, loaded by the pf-tcptrace binary, which prints
one CSV line per ACK. The program keeps only sockets in the experiment's sender namespaces whose
remote port is an iperf3 server's, so concurrent experiments do not see each other's ACKs.

    with AckTracer(netns_inode("pfs123x0"), 5201, 5201) as tr:
        ...                                  # run the flows
    tr.flows()                               # {(sport, dport): [AckRow, ...]}
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from .spec import HarnessError

# where pf-tcptrace and its BPF source are: told by the caller (policyforge passes its build's,
# use_tcptrace), or PF_TCPTRACE (the binary; the source beside it in ../share), or PATH
TCPTRACE: tuple[str, str] | None = None
_build_lock = threading.Lock()
_objects: dict[tuple[str, str], Path] = {}      # (source, cache) -> the object built for this kernel
INFINITE_SSTHRESH = 0x7FFFFFFF


def use_tcptrace(binary: str | os.PathLike, source: str | os.PathLike) -> None:
    global TCPTRACE
    TCPTRACE = (str(binary), str(source))


def _tool() -> tuple[str, str]:
    if TCPTRACE:
        return TCPTRACE
    binary = os.environ.get("PF_TCPTRACE") or shutil.which("pf-tcptrace")
    if not binary:
        raise HarnessError("pf-tcptrace is not found: pass it with policyforge.testbed.use_tcptrace(BIN, SOURCE) or "
                           "PF_TCPTRACE (`make build` builds it; it needs libbpf-dev)")
    return binary, str(Path(binary).resolve().parent.parent / "share" / "pf_tcptrace.bpf.c")


def tracer_object(cache: Path | None = None) -> Path:
    """The tracer's BPF object for this kernel, built once per kernel BTF and source."""
    binary, source = _tool()
    btf = Path("/sys/kernel/btf/vmlinux")
    if not btf.exists():
        raise HarnessError("this kernel has no BTF (/sys/kernel/btf/vmlinux): per-ACK tracing needs it")
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "policyforge" / "tcptrace"
    with _build_lock:
        # the kernel's BTF (megabytes) is hashed once per process and source, not at every experiment
        key = (str(source), str(cache))
        if key in _objects and _objects[key].exists():
            return _objects[key]
        h = hashlib.sha256(btf.read_bytes() + Path(source).read_bytes()).hexdigest()[:16]
        obj = cache / f"pf_tcptrace.{h}.o"
        if obj.exists():
            _objects[key] = obj
            return obj
        cache.mkdir(parents=True, exist_ok=True)
        work = cache / f"build-{os.getpid()}"
        work.mkdir(exist_ok=True)
        try:
            r = subprocess.run(["bpftool", "btf", "dump", "file", str(btf), "format", "c"], capture_output=True,
                               text=True)
            if r.returncode:
                raise HarnessError(f"bpftool could not dump the kernel's BTF: {r.stderr.strip()[:200]}")
            (work / "vmlinux.h").write_text(r.stdout)
            shutil.copy(source, work / "pf_tcptrace.bpf.c")
            r = subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I.", "-c",
                                "pf_tcptrace.bpf.c", "-o", "t.o"], cwd=work, capture_output=True, text=True)
            if r.returncode:
                raise HarnessError(f"the per-ACK tracer does not compile: {r.stderr.strip()[-300:]}")
            (work / "t.o").replace(obj)
            _objects[key] = obj
        except FileNotFoundError as e:
            raise HarnessError(f"{e.filename} is not installed (make deps)") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return obj


@dataclasses.dataclass
class AckRow:
    t_s: float                 # since the first ACK the tracer saw
    cwnd: int                  # packets
    ssthresh: int | None       # packets; None while infinite
    srtt_ms: float
    rate_mbps: float | None    # the last rate sample, None before the first
    delivered: int
    ca: str


class AckTracer:
    """Traces ACKs for the duration of a `with` block."""

    def __init__(self, netns: int, port_lo: int, port_hi: int, cache: Path | None = None):
        self.netns, self.ports = netns, (port_lo, port_hi)     # one sender namespace per tracer
        self.cache = cache
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.error = ""

    def __enter__(self) -> "AckTracer":
        binary, _ = _tool()
        obj = tracer_object(self.cache)
        self.proc = subprocess.Popen([binary, str(obj), str(self.netns), *map(str, self.ports)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        if first != "ready":
            self.proc.kill()
            err = self.proc.stderr.read().strip()
            raise HarnessError(f"pf-tcptrace did not start: {err[-300:] or first or 'no output'}")
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
        conns = self.flows()
        return max(conns.values(), key=len) if conns else []

    def flows(self) -> dict[tuple[int, int], list[AckRow]]:
        """(local port, remote port) -> the ACKs of that connection, in order."""
        out: dict[tuple[int, int], list[AckRow]] = {}
        t0 = None
        for line in self.lines:
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


def netns_inode(name: str) -> int:
    """The inode of a named network namespace (what the tracer compares with the socket's)."""
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError as e:
        raise HarnessError(f"network namespace {name} not found: {e.strerror}") from None


def series(rows: list[AckRow], points: int = 400) -> dict[str, list]:
    """A connection's ACKs as columns, thinned to at most `points` evenly spaced ACKs."""
    step = max(1, -(-len(rows) // points))
    keep = rows[::step]
    return {"t_s": [round(r.t_s, 4) for r in keep], "cwnd": [r.cwnd for r in keep],
            "ssthresh": [r.ssthresh for r in keep], "srtt_ms": [round(r.srtt_ms, 3) for r in keep],
            "rate_mbps": [None if r.rate_mbps is None else round(r.rate_mbps, 3) for r in keep],
            "acks": len(rows), "ca": rows[0].ca if rows else ""}
