"""python -m policyforge.vm shell | probe | run CMD... | exp EXPERIMENT.json [--policy policy.c]
| bench [bench/vm/run.py args]"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from .machine import REPO_ROOT, VM, GuestCrash, VmError, probe_accel, shell


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m policyforge.vm", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("shell", help="boot the image with its console on this terminal")
    sub.add_parser("probe", help="say which accelerator qemu will use (kvm or tcg)")
    run = sub.add_parser("run", help="boot, run one shell command in the guest, print its output")
    run.add_argument("command", nargs=argparse.REMAINDER)
    exp = sub.add_parser("exp", help="run a harness experiment description on Mininet in the guest")
    exp.add_argument("experiment", type=Path)
    exp.add_argument("--policy", type=Path, help="a policy_cong_control() source; flows with scheme "
                                                 "'candidate' use it as module pf_cand")
    bench = sub.add_parser("bench", help="bench/vm/run.py")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "shell":
            return shell()
        if args.cmd == "probe":
            print(probe_accel())
            return 0
        if args.cmd == "bench":
            return subprocess.call([sys.executable, str(REPO_ROOT / "bench" / "vm" / "run.py"), *args.rest])
        if args.cmd == "exp":      # read the inputs before paying for a boot
            try:
                experiment = json.loads(args.experiment.read_text())
                policy = args.policy.read_text() if args.policy else None
            except (OSError, ValueError) as e:
                raise VmError(f"cannot read the experiment or policy: {e}") from None
        with VM() as vm:
            if args.cmd == "run":
                r = vm.run(" ".join(args.command) or "true", timeout_s=600)
                sys.stdout.write(r.stdout)
                sys.stderr.write(r.stderr)
                return r.rc
            from ..tasks.cc.vm import evaluate_candidate, run_experiment   # the cc task's experiments
            if policy is not None:
                out = evaluate_candidate(vm, policy, "pf_cand", experiment)
            else:
                out = {"ok": True, "result": run_experiment(vm, experiment)}
            print(json.dumps(out, indent=1))
            return 0 if out["ok"] else 1
    except (VmError, GuestCrash, OSError) as e:
        print(f"policyforge.vm: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
