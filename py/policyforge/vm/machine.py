"""The policyforge kernel VM, host side: find the cached image, pick an accelerator, boot qemu,
talk to the guest agent, and notice when the guest dies.

The image (scripts/vm-build.sh) is a raw ext4 root plus the guest's own vmlinuz/initrd, so qemu
boots with -kernel/-initrd and init=/usr/local/sbin/pf-init (no systemd: ready in seconds).
The root disk is opened with snapshot=on: every boot starts from the same clean image, and
several VMs can run at once. The repository is shared read-write over 9p at /work/repo.

Commands go to the guest agent (py/policyforge/vm/agent.py) over a virtio-serial port, as
JSON lines on a unix socket. The serial console goes to a file; the kernel runs with
oops=panic panic=-1 and qemu with -no-reboot, so a faulty module makes qemu exit, and the
console tail says why. A guest that stops answering past a command's deadline is a hang.
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..template import CHECKOUT

REPO_ROOT = CHECKOUT
READY_MARK = "pf-init: ready"


class VmError(Exception):
    """A VM problem the user can fix: no image, no qemu, bad arguments. One line."""


class GuestCrash(Exception):
    """The guest kernel panicked or hung; `kind` is 'panic' or 'hang', `console` its last lines."""

    def __init__(self, kind: str, console: str):
        self.kind, self.console = kind, console
        super().__init__(f"guest {kind}: {_crash_line(console) or 'no console message'}")


def _crash_line(console: str) -> str:
    for marker in ("Kernel panic", "BUG:", "Oops", "general protection fault", "watchdog:"):
        for line in console.splitlines():
            if marker in line:
                return line.strip()[-200:]
    return ""


def cache_dir() -> Path:
    return Path(os.environ.get("PF_VM_CACHE", "/var/cache/policyforge/vm"))


def image_dir() -> Path:
    """The current built image; VmError when `make vm` has not run."""
    current = cache_dir() / "current"
    if not (current / "ready").exists():
        raise VmError(f"no VM image in {cache_dir()}: run `make vm` (scripts/vm-build.sh) first")
    return current.resolve()


def kernel_release() -> str:
    return (image_dir() / "kernel-release").read_text().strip()


# --- accelerator probe ----------------------------------------------------------------------
_accel_cache: str | None = None


def _probe_initramfs(work: Path) -> Path:
    """A tiny initramfs (busybox-static) whose /init prints a marker and powers off."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    root = work / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "init").write_text("#!/bin/busybox sh\n/bin/busybox echo PF-PROBE-OK\n"
                               "/bin/busybox poweroff -f\n")
    (root / "init").chmod(0o755)
    cpio = work / "probe.cpio"
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True).stdout
    subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-O", str(cpio)], cwd=root, input=files,
                   text=True, check=True)
    return cpio


def probe_accel(kernel: Path | None = None, timeout_s: float = 6.0) -> str:
    """'kvm' if a guest kernel reaches userspace under KVM within timeout_s, else 'tcg'.

    Here /dev/kvm opens but a stock guest hangs under it, so the probe boots the guest kernel
    with a marker-printing initramfs and gives up after a few seconds. PF_VM_ACCEL overrides."""
    global _accel_cache
    forced = os.environ.get("PF_VM_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    if _accel_cache:
        return _accel_cache
    _accel_cache = "tcg"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return _accel_cache
    # the answer depends on the host kernel and qemu: remember it next to the image
    remembered = cache_dir() / f"accel-{os.uname().release}"
    if remembered.exists() and kernel is None:
        _accel_cache = remembered.read_text().strip()
        return _accel_cache
    if boots_to_userspace("kvm", kernel or image_dir() / "vmlinuz", timeout_s):
        _accel_cache = "kvm"
    try:
        remembered.write_text(_accel_cache + "\n")
    except OSError:
        pass
    return _accel_cache


def boots_to_userspace(accel: str, kernel: Path, timeout_s: float) -> bool:
    """Does `kernel` reach a marker-printing /init under `accel` within timeout_s?"""
    with tempfile.TemporaryDirectory(prefix=f"pf-kvmprobe-{os.getpid()}-") as tmp:
        cpio = _probe_initramfs(Path(tmp))
        argv = [_qemu(), "-accel", accel, "-m", "256", "-nographic", "-no-reboot", "-kernel", str(kernel),
                "-initrd", str(cpio), "-append", "console=ttyS0 quiet panic=-1"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return _read_until(proc, b"PF-PROBE-OK", timeout_s)
        finally:
            _kill(proc)


def _read_until(proc: subprocess.Popen, marker: bytes, timeout_s: float) -> bool:
    deadline, seen = time.monotonic() + timeout_s, b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return marker in seen
            seen = (seen + chunk)[-8192:]
            if marker in seen:
                return True
    return False


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def _qemu() -> str:
    path = shutil.which("qemu-system-x86_64")
    if not path:
        raise VmError("qemu-system-x86_64 is not installed (scripts/install-deps.sh)")
    return path


# --- the VM -----------------------------------------------------------------------------------
@dataclasses.dataclass
class CommandResult:
    rc: int
    stdout: str
    stderr: str
    timed_out: bool = False


class VM:
    """One guest. `with VM() as vm: vm.run("uname -r")`. After a GuestCrash, vm.restart()."""

    def __init__(self, memory_mb: int = 2048, cpus: int = 2, boot_timeout_s: float = 90.0):
        self.image = image_dir()
        self.memory_mb, self.cpus, self.boot_timeout_s = memory_mb, cpus, boot_timeout_s
        self.accel = probe_accel()
        self.work = Path(tempfile.mkdtemp(prefix=f"pf-vm-{os.getpid()}-"))
        self.xfer = self.work / "xfer"      # shared into the guest at /work/xfer
        self.xfer.mkdir()
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self._pending = b""
        self._next_id = 1
        self.boot_s = 0.0
        self.grace_s = 20.0     # past a command's own timeout, silence means the guest hung

    @property
    def console_log(self) -> Path:
        return self.work / "console.log"

    def qemu_argv(self, shell: bool = False) -> list[str]:
        append = ("root=/dev/vda rw console=ttyS0 init=/usr/local/sbin/pf-init oops=panic panic=-1 "
                  "softlockup_panic=1 quiet loglevel=4" + (" pf.shell" if shell else ""))
        argv = [_qemu(), "-accel", self.accel, "-m", str(self.memory_mb), "-smp", str(self.cpus),
                "-no-reboot", "-display", "none", "-kernel", str(self.image / "vmlinuz"),
                "-initrd", str(self.image / "initrd.img"), "-append", append,
                "-drive", f"file={self.image / 'rootfs.ext4'},format=raw,if=virtio,snapshot=on",
                "-virtfs", f"local,path={REPO_ROOT},mount_tag=pfrepo,security_model=none,id=pfrepo",
                "-virtfs", f"local,path={self.xfer},mount_tag=pfxfer,security_model=none,id=pfxfer",
                "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=pfagent,path={self.work / 'agent.sock'},server=on,wait=off",
                "-device", "virtserialport,chardev=pfagent,name=pf.agent",
                "-nic", "none"]
        if self.accel == "tcg":
            argv[3:3] = ["-cpu", "max"]
        argv += ["-serial", "mon:stdio"] if shell else ["-serial", f"file:{self.console_log}", "-monitor", "none"]
        return argv

    def start(self) -> "VM":
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.qemu_argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.work / "qemu.err", "wb"), start_new_session=True)
        sock_path = self.work / "agent.sock"
        while not sock_path.exists():
            self._check_alive()
            if time.monotonic() - t0 > 10:
                raise VmError(f"qemu did not start: {self._qemu_err()}")
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(sock_path))
        hello = self._read_reply(lambda r: r.get("ready"), self.boot_timeout_s)
        if hello is None:
            raise GuestCrash("hang", self.console_tail())
        self.boot_s = time.monotonic() - t0
        self.run("mkdir -p /work/xfer && mount -t 9p -o trans=virtio,version=9p2000.L pfxfer /work/xfer",
                 timeout_s=30, cwd="/")
        return self

    def _qemu_err(self) -> str:
        try:
            return (self.work / "qemu.err").read_text().strip().splitlines()[-1]
        except (OSError, IndexError):
            return "no message"

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            console = self.console_tail()
            if "Kernel panic" in console or _crash_line(console):
                raise GuestCrash("panic", console)
            if self.proc.returncode not in (0, None) and not console:
                raise VmError(f"qemu failed: {self._qemu_err()}")
            raise GuestCrash("panic", console or "qemu exited")

    def _read_reply(self, wanted, timeout_s: float) -> dict | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                try:
                    reply = json.loads(line)
                except ValueError:
                    continue
                if wanted(reply):
                    return reply
            self._check_alive()
            ready, _, _ = select.select([self.sock], [], [], 0.25)
            if ready:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    time.sleep(0.2)     # qemu closing: _check_alive reports it
                self._pending += chunk
        return None

    def run(self, sh: str, timeout_s: float = 120, cwd: str = "/work/repo") -> CommandResult:
        """Run a shell command in the guest. GuestCrash if the kernel dies or stops answering."""
        if self.sock is None:
            raise VmError("the VM is not running")
        rid = self._next_id
        self._next_id += 1
        self.sock.sendall(json.dumps({"id": rid, "sh": sh, "timeout": timeout_s, "cwd": cwd}).encode() + b"\n")
        reply = self._read_reply(lambda r: r.get("id") == rid, timeout_s + self.grace_s)
        if reply is None:
            raise GuestCrash("hang", self.console_tail())
        return CommandResult(reply["rc"], reply["stdout"], reply["stderr"], reply.get("timed_out", False))

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None
        self._pending = b""

    def restart(self) -> "VM":
        self.stop()
        self.console_log.unlink(missing_ok=True)
        (self.work / "agent.sock").unlink(missing_ok=True)
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "VM":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()


def shell() -> int:
    """Boot the image with the serial console on this terminal (Ctrl-A X quits qemu)."""
    vm = VM()
    try:
        print(f"policyforge VM ({vm.accel}); the repository is at /work/repo; Ctrl-A X quits", flush=True)
        return subprocess.call(vm.qemu_argv(shell=True))
    finally:
        vm.close()
