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

import hashlib
import os
import shutil
import threading
from pathlib import Path

from .ackrows import AckRow, TracerError, TracerProcess, build_object, series
from .spec import HarnessError

__all__ = ["AckRow", "AckTracer", "netns_inode", "series", "tracer_object", "use_tcptrace"]

# where pf-tcptrace and its BPF source are: told by the caller (policyforge passes its build's,
# use_tcptrace), or PF_TCPTRACE (the binary; the source beside it in ../share), or PATH
TCPTRACE: tuple[str, str] | None = None
_build_lock = threading.Lock()
_objects: dict[tuple[str, str], Path] = {}      # (source, cache) -> the object built for this kernel


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
        if not obj.exists():
            cache.mkdir(parents=True, exist_ok=True)
            work = cache / f"build-{os.getpid()}"
            work.mkdir(exist_ok=True)
            try:
                build_object(Path(source), work, obj, btf)
            except TracerError as e:
                raise HarnessError(f"{e} (make deps)" if "not installed" in str(e) else str(e)) from None
            finally:
                shutil.rmtree(work, ignore_errors=True)
        _objects[key] = obj
    return obj


class AckTracer(TracerProcess):
    """Traces ACKs for the duration of a `with` block."""

    def __init__(self, netns: int, port_lo: int, port_hi: int, cache: Path | None = None):
        super().__init__("", "", netns, port_lo, port_hi)     # one sender namespace per tracer
        self.cache = cache

    def __enter__(self) -> "AckTracer":
        self.binary, _ = _tool()
        self.obj = str(tracer_object(self.cache))
        try:
            return super().__enter__()
        except TracerError as e:
            raise HarnessError(str(e)) from None


def netns_inode(name: str) -> int:
    """The inode of a named network namespace (what the tracer compares with the socket's)."""
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError as e:
        raise HarnessError(f"network namespace {name} not found: {e.strerror}") from None
