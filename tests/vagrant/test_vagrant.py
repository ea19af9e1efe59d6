"""`vagrant up` for real, offline: Debian's vagrant + vagrant-libvirt + libvirt (a qemu TCG domain),
the box that scripts/vagrant-box.sh packages from the `make vm` image, vagrant/Vagrantfile as a
user runs it (rsync synced folder, no NFS). In the guest, over `vagrant ssh -c`, a committed cc
winner is built against the guest's headers, insmod'ed and carries one iperf3 flow across the
Mininet netem link (scripts/vm-cc-winner.sh); then `vagrant destroy`.

`make test` runs it (about 5 minutes: a systemd boot under TCG, and on a cold machine the box
build and its upload into libvirt's pool); `make vagrant-test` runs this file alone and records
what it saw in bench/vm/vagrant.md (PF_VAGRANT_RECORD)."""
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vagrant, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WINNER = "bench/vm/winners/synth.c"


def sh(argv, timeout, env=None, cwd=None):
    t0 = time.time()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    return r, time.time() - t0


def tail(r: subprocess.CompletedProcess, n: int = 1500) -> str:
    return (r.stdout[-n:] + "\n" + r.stderr[-n:]).replace("\r", "\n")


@pytest.fixture(scope="module")
def box():
    """The VM image (built on a cold machine), libvirtd answering, the box added to vagrant."""
    if os.geteuid() != 0:
        pytest.skip("the box build loop-mounts and chroots, libvirt's system instance needs root")
    missing = [t for t in ("vagrant", "virsh", "libvirtd", "sfdisk", "grub-mkimage") if not shutil.which(t)]
    assert not missing, f"{missing} not found: scripts/install-deps.sh installs them"
    steps = {}
    for name, argv, limit in (("make vm", [str(ROOT / "scripts/vm-build.sh")], 1500),
                              ("libvirtd", [str(ROOT / "scripts/libvirt-up.sh")], 60),
                              ("make vagrant-box", [str(ROOT / "scripts/vagrant-box.sh")], 900)):
        r, dt = sh(argv, limit)
        assert r.returncode == 0, f"{name}: {tail(r)}"
        steps[name] = (dt, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "")
    return steps


@pytest.mark.timeout(3000)
def test_vagrant_up_builds_loads_and_runs_a_winner(box, tmp_path):
    # vagrant's state for this machine lives in tmp_path and its libvirt domain has its own
    # prefix: a machine a user brought up from vagrant/ is never touched
    env = dict(os.environ, VAGRANT_DOTFILE_PATH=str(tmp_path / "dot-vagrant"),
               PF_VAGRANT_PREFIX=f"pf-test-{os.getpid()}-", VAGRANT_NO_COLOR="1",
               VAGRANT_CHECKPOINT_DISABLE="1")          # no version check against the internet
    cwd = ROOT / "vagrant"
    timings, record = dict(box), {}
    try:
        r, dt = sh(["vagrant", "up", "--provider=libvirt"], 1500, env, cwd)
        timings["vagrant up"] = (dt, "")
        assert r.returncode == 0, f"vagrant up: {tail(r)}"
        out = r.stdout.replace("\r", "\n")
        assert "Machine booted and ready" in out and "Rsyncing folder" in out, out[-2000:]

        r, dt = sh(["vagrant", "ssh", "-c", "uname -r; findmnt -n -o FSTYPE /; ls /work/repo/kmod/Makefile"],
                   300, env, cwd)
        assert r.returncode == 0, f"vagrant ssh: {tail(r)}"
        guest_kernel = r.stdout.split()[0]
        assert guest_kernel.endswith("-amd64") and guest_kernel != platform.release(), r.stdout

        r, dt = sh(["vagrant", "ssh", "-c", f"sudo /work/repo/scripts/vm-cc-winner.sh /work/repo/{WINNER}"],
                   900, env, cwd)
        timings["winner: build, insmod, 8 s flow"] = (dt, "")
        assert r.returncode == 0, f"vm-cc-winner: {tail(r)}"
        assert "pf_synth built and loaded on " + guest_kernel in r.stderr, r.stderr[-1500:]
        result = json.loads(r.stdout)
        flow = result["flows"][0]
        # the module's own flow: bytes moved, RTT at least the link's 20 ms, at most the link rate
        assert result["experiment"]["flows"][0]["scheme"] == "pf_synth"
        assert 5.0 < result["throughput_mbps"] <= 24.5, result["throughput_mbps"]
        assert result["mean_rtt_ms"] >= 19.0, result["mean_rtt_ms"]
        assert flow["bytes"] > 0 and len(flow["series"]) >= 20
        record = {"guest_kernel": guest_kernel, "throughput_mbps": result["throughput_mbps"],
                  "mean_rtt_ms": result["mean_rtt_ms"], "p95_rtt_ms": result["p95_rtt_ms"],
                  "retransmits": result["retransmits"]}
    finally:
        r, dt = sh(["vagrant", "destroy", "-f"], 300, env, cwd)
        timings["vagrant destroy"] = (dt, "")
    assert r.returncode == 0, f"vagrant destroy: {tail(r)}"
    left = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                          capture_output=True, text=True).stdout
    assert env["PF_VAGRANT_PREFIX"] not in left, left
    if os.environ.get("PF_VAGRANT_RECORD"):
        write_record(Path(os.environ["PF_VAGRANT_RECORD"]), timings, record)


def write_record(path: Path, timings: dict, record: dict) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    versions = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", "vagrant", "vagrant-libvirt",
                               "libvirt-daemon", "qemu-system-x86"], capture_output=True, text=True).stdout
    lines = ["# `vagrant up` test (make vagrant-test)", "",
             f"Machine: {platform.node()} ({os.cpu_count()} CPUs, host kernel {platform.release()}, no usable KVM: "
             f"TCG). Command: `make vagrant-test` (tests/vagrant/test_vagrant.py). Commit {commit}. "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             "Packages: " + ", ".join(versions.split("\n")[:-1]) + ".", "",
             "| step | seconds | note |", "|---|---|---|"]
    lines += [f"| {k} | {v[0]:.0f} | {v[1]} |" for k, v in timings.items()]
    lines += ["", f"In the guest (kernel {record.get('guest_kernel')}), `{WINNER}` as module pf_synth, "
              "one 8 s iperf3 flow on Mininet, 24 Mbit/s, 20 ms RTT (htb + netem):", "",
              "| throughput (Mbit/s) | mean RTT (ms) | p95 RTT (ms) | retransmits |", "|---|---|---|---|",
              f"| {record.get('throughput_mbps', 0):.2f} | {record.get('mean_rtt_ms', 0):.1f} | "
              f"{record.get('p95_rtt_ms', 0):.1f} | {record.get('retransmits')} |", ""]
    path.write_text("\n".join(lines))
