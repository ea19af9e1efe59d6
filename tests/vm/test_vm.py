"""The kernel VM with real parts: the image from scripts/vm-build.sh (built here on a cold
machine), qemu (KVM probe, TCG), the guest agent, a cc seed as a real kernel module carrying a
5-second iperf3 flow across a Mininet netem link, and a deliberately faulty module whose
kernel panic must come back as that candidate's failure with the VM restarted."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm

from policyforge.vm import machine
from policyforge.tasks.cc.vm import evaluate_candidate, run_experiment, seed_policy
from policyforge.vm.machine import VM, GuestCrash

ROOT = Path(__file__).resolve().parents[2]
NULL_DEREF_POLICY = """s64 policy_cong_control(const struct pf_cc_state *s, const struct pf_cc_history *h)
{
    return *(volatile u32 *)(unsigned long)(s->cwnd == 0xffffffffu);   /* NULL: s->cwnd is never ~0 */
}
"""


@pytest.fixture(scope="session")
def image():
    """The cached image; a cold machine builds it here (debootstrap, minutes)."""
    if os.geteuid() != 0:
        pytest.skip("building and booting the VM image needs root (debootstrap, 9p as root)")
    t0 = time.time()
    r = subprocess.run([str(ROOT / "scripts" / "vm-build.sh")], capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-2000:]
    print(f"vm-build: {time.time() - t0:.0f} s: {r.stdout.strip().splitlines()[-1]}")
    return machine.image_dir()


@pytest.fixture(scope="module")
def vm(image):
    with VM() as v:
        yield v


def test_kvm_probe_answers_within_seconds(image):
    machine._accel_cache = None
    t0 = time.monotonic()
    accel = machine.probe_accel(image / "vmlinuz", timeout_s=6)
    assert accel in ("kvm", "tcg")
    assert time.monotonic() - t0 < 15
    if accel == "tcg" and os.access("/dev/kvm", os.W_OK):
        # the probe's initramfs itself works: under TCG the same kernel reaches its /init
        assert machine.boots_to_userspace("tcg", image / "vmlinuz", 60)


def test_agent_returns_exit_code_stdout_stderr(vm):
    r = vm.run("echo out; echo err >&2; exit 3")
    assert (r.rc, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)
    assert vm.run("uname -r").stdout.strip() == machine.kernel_release()
    assert vm.run("test -f /work/repo/kmod/pf_cc_mod.c").rc == 0      # the repository over 9p
    slow = vm.run("sleep 30", timeout_s=2)
    assert slow.timed_out


def test_seed_module_carries_iperf3_over_netem(vm):
    exp = {"name": "smoke", "link": {"rate_mbps": 20.0, "delay_ms": 10.0, "loss": 0.0, "queue_pkts": None},
           "flows": [{"scheme": "candidate", "start_s": 0.0, "duration_s": 5.0}]}
    out = evaluate_candidate(vm, seed_policy("reno"), "pf_seed", exp)
    assert out["ok"], out
    result = out["result"]
    assert 8.0 < result["throughput_mbps"] <= 21.0          # a 20 Mbit/s bottleneck, TCG guest
    assert result["mean_rtt_ms"] >= 19.0                      # 2 x 10 ms netem delay
    assert vm.run("grep -w pf_seed /proc/modules").rc != 0   # unloaded after the run
    assert "pf_seed" not in vm.run("cat /proc/sys/net/ipv4/tcp_available_congestion_control").stdout


def test_netem_link_shapes_a_kernel_cc_and_every_ack_is_traced(vm):
    """cubic on an 8 Mbit/s, 60 ms RTT netem link, its sender traced at every ACK in the guest
    (pf-tcptrace built there against the guest kernel's BTF, as on the host)."""
    exp = {"link": {"rate_mbps": 8.0, "delay_ms": 30.0, "loss": 0.0},
           "flows": [{"scheme": "cubic", "start_s": 0.0, "duration_s": 4.0}]}
    r = run_experiment(vm, exp, acks=True)
    assert 4.0 < r["throughput_mbps"] <= 8.5
    assert r["mean_rtt_ms"] >= 59.0
    acks = r["flows"][0]["acks"]
    # 4 s at up to 8 Mbit/s is at most ~2 700 full packets; with delayed ACKs at least a few hundred ACKs
    assert acks["ca"] == "cubic" and 300 < acks["acks"] < 6000, (acks["ca"], acks["acks"])
    assert len(acks["t_s"]) == len(acks["cwnd"]) == len(acks["srtt_ms"]) <= 400
    assert acks["t_s"] == sorted(acks["t_s"]) and 3.0 < acks["t_s"][-1] < 5.0
    later = [rtt for t, rtt in zip(acks["t_s"], acks["srtt_ms"]) if t > 1.0]
    assert min(later) >= 55.0 and max(acks["cwnd"]) >= 10      # the 60 ms RTT; the window grew


def test_committed_winners_hold_their_results_against_cubic_in_the_same_vm(vm):
    """The short form of `make vm-bench` that `make test` runs: on one link (24 Mbit/s, 20 ms RTT),
    every committed winner (bench/vm/winners/*.c, built and insmod'ed as a kernel module) and cubic,
    one 8 s flow each, back to back. A winner holds when its throughput relative to cubic's falls,
    and its mean RTT relative to cubic's rises, by no more than the tolerance bench/vm set for this
    link (bench/vm/run.py TOLERANCE: 15 % / 25 %) against the same ratios in the committed
    bench/vm/results.json.

    One pair of runs is not enough to call a regression. Under TCG a busy host slows the guest,
    which delay-based winners read as queueing (pf_synth fell to 0.69 x cubic in a pair that ran
    next to another VM's flow), and pf_synthreno freezes its window at whatever slow start reached
    before the first rate sample, so one run of it landed at 0.37 x cubic in CI against 0.51-0.68
    in ten runs here (docs/notes/vm.md). So a winner gets up to three pairs and regresses only
    if none holds: a broken template or module build misses all three."""
    import json
    link_name, tol = "24 Mbit/s, 20 ms RTT", {"throughput_mbps": 0.15, "mean_rtt_ms": 0.25}
    committed = {r["scheme"]: r for r in json.loads((ROOT / "bench/vm/results.json").read_text())["rows"]
                 if r["link"] == link_name and r.get("ok", True)}
    link = {"rate_mbps": 24.0, "delay_ms": 10.0, "loss": 0.0, "queue_pkts": None, "queue_bytes": None, "trace": None}

    def exp(scheme):
        return {"name": scheme, "link": link, "flows": [{"scheme": scheme, "start_s": 0.0, "duration_s": 8.0}]}
    winners = sorted((ROOT / "bench/vm/winners").glob("*.c"))
    assert winners
    problems, seen = [], []
    for path in winners:
        name = "pf_" + path.stem
        tries = []
        for _ in range(3):
            cubic = run_experiment(vm, exp("cubic"))
            out = evaluate_candidate(vm, path.read_text(), name, exp(name))
            assert out["ok"], (name, out.get("failure"), out.get("detail", "")[:300])
            misses, pair = [], []
            for key, worse in (("throughput_mbps", -1), ("mean_rtt_ms", 1)):
                before = committed[name][key] / committed["cubic"][key]
                now = out["result"][key] / cubic[key]
                pair.append(f"{key}/cubic {now:.2f} (committed {before:.2f})")
                if worse * (now - before) > tol[key] * before:
                    misses.append(key)
            tries.append(", ".join(pair))
            if not misses:
                break
        seen.append(f"{name}: " + "; ".join(tries))
        if misses:
            problems.append(seen[-1])
    assert not problems, f"regressions beyond bench/vm's tolerance in 3 pairs of runs: {problems}; all: {seen}"


def test_faulty_module_panic_is_the_candidates_failure_and_vm_restarts(vm):
    exp = {"link": {"rate_mbps": 20.0, "delay_ms": 5.0},
           "flows": [{"scheme": "candidate", "start_s": 0.0, "duration_s": 3.0}]}
    out = evaluate_candidate(vm, NULL_DEREF_POLICY, "pf_null", exp)
    assert not out["ok"]
    assert out["failure"] == "panic", out
    assert "NULL pointer" in out["console"] or "Kernel panic" in out["console"]
    r = vm.run("grep -c pf_null /proc/modules || true")     # a fresh kernel after the restart
    assert r.rc == 0 and r.stdout.strip() == "0"


def test_hung_guest_is_detected(vm):
    vm.grace_s = 3
    os.kill(vm.proc.pid, signal.SIGSTOP)      # the guest stops answering, as in a hard hang
    try:
        with pytest.raises(GuestCrash) as crash:
            vm.run("true", timeout_s=2)
        assert crash.value.kind == "hang"
    finally:
        os.kill(vm.proc.pid, signal.SIGCONT)
    vm.restart()
    assert vm.run("echo back").stdout == "back\n"


def test_cli_errors_are_one_line(tmp_path):
    env = dict(os.environ, PF_VM_CACHE=str(tmp_path / "no-image"), PYTHONPATH=str(ROOT / "py"))
    import sys
    r = subprocess.run([sys.executable, "-m", "policyforge.vm", "run", "true"], capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"policyforge.vm: no VM image in {tmp_path / 'no-image'}: run `make vm` (scripts/vm-build.sh) first"]
    r = subprocess.run([sys.executable, "-m", "policyforge.vm", "exp", str(tmp_path / "missing.json")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
