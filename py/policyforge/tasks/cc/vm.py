"""Congestion-control experiments in the VM (the cc task's; the VM itself, policyforge.vm, knows
no task): build a candidate's kernel module against the
guest's headers (kmod/), insmod it, run a harness experiment on Mininet + netem
(py/policyforge/testbed/mininet_runner.py), rmmod it. A panic or hang on the way is that candidate's
failure: the VM is restarted and the next candidate gets a clean kernel.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from ...vm.machine import VM, GuestCrash, VmError

KERNEL_SCHEMES = ("cubic", "reno", "bbr", "vegas")
# modules the kernel CCs and netem need; Debian builds them as modules
GUEST_MODULES = "tcp_bbr tcp_vegas sch_netem sch_htb"


def seed_policy(name: str = "reno") -> str:
    """The C source of a cc-task seed (rendered from its genome by the task itself)."""
    from .task import CCTask
    task = CCTask()
    seed = next((s for s in task.seeds() if s.name == name), None)
    if seed is None:
        raise VmError(f"the cc task has no seed named {name!r}")
    return task.render(seed.genome)


class ModuleError(Exception):
    """The candidate module did not build or load; message = the compiler / insmod output."""


def build_and_load(vm: VM, policy_source: str, name: str, timeout_s: float = 300) -> None:
    """Build NAME.ko from the policy in the guest and insmod it (ModuleError / GuestCrash)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,14}", name):
        raise VmError(f"module name must be a short C identifier, got {name!r}")
    (vm.xfer / f"{name}.c").write_text(policy_source)   # its linkage comes from pf_cc_policy.h
    out = f"/tmp/kmod-{name}"
    r = vm.run(f"make -s -C /work/repo/kmod KDIR=/lib/modules/$(uname -r)/build POLICY=/work/xfer/{name}.c "
               f"NAME={name} OUT={out} 2>&1 && insmod {out}/{name}.ko 2>&1", timeout_s=timeout_s)
    if r.rc != 0:
        raise ModuleError((r.stdout + r.stderr).strip()[-2000:])


def unload(vm: VM, name: str) -> None:
    vm.run(f"rmmod {shlex.quote(name)} 2>/dev/null || true", timeout_s=30)


def run_experiment(vm: VM, experiment: dict, timeout_s: float | None = None, acks: bool = False) -> dict:
    """Run an experiment description (harness Experiment as a dict) on Mininet in the guest. With
    `acks`, every flow carries the per-ACK trace of its sender (cwnd, ssthresh, srtt, delivery
    rate), as on the host; the guest builds the tracer at its first use after a boot."""
    path = vm.xfer / "experiment.json"
    path.write_text(json.dumps(dict(experiment, acks=True) if acks else experiment))
    span = max(f.get("start_s", 0) + f.get("duration_s", 5) for f in experiment["flows"])
    vm.run(f"modprobe -a {GUEST_MODULES} 2>/dev/null; mn -c >/dev/null 2>&1 || true", timeout_s=60)
    r = vm.run("python3 /work/repo/py/policyforge/testbed/mininet_runner.py /work/xfer/experiment.json",
               timeout_s=timeout_s or span + (240 if acks else 90))
    if r.rc != 0:
        raise VmError(f"mininet run failed: {(r.stderr or r.stdout).strip().splitlines()[-1:] or r.rc}")
    return json.loads(r.stdout)


def evaluate_candidate(vm: VM, policy_source: str, name: str, experiment: dict, repeats: int = 1,
                       acks: bool = False) -> dict:
    """One candidate, start to end: build, insmod, run the experiment `repeats` times (the first
    with per-ACK traces if `acks`), rmmod.
    Returns {"ok": True, "result": the first run, "results": every run} or
    {"ok": False, "failure": "build|load|panic|hang", "detail": ...}; after a crash the VM is
    restarted so the caller can go on."""
    try:
        try:
            build_and_load(vm, policy_source, name)
        except ModuleError as e:
            return {"ok": False, "failure": "build", "detail": str(e)}
        flows = [dict(f, scheme=name) if f.get("scheme") in ("candidate", name) else f for f in experiment["flows"]]
        results = [run_experiment(vm, dict(experiment, flows=flows), acks=acks and i == 0)
                   for i in range(max(1, repeats))]
        unload(vm, name)
        return {"ok": True, "result": results[0], "results": results}
    except GuestCrash as crash:
        vm.restart()
        return {"ok": False, "failure": crash.kind, "detail": str(crash), "console": crash.console}
