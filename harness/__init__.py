"""Testbeds for congestion control: a dumbbell of network namespaces joined by linkem
(the userspace link emulator), iperf3 flows, and the metrics of Pantheon / PolicySmith.

    from harness import LinkSpec, FlowSpec, Experiment, run_experiment
    exp = Experiment(LinkSpec(rate_mbps=24, delay_ms=10), [FlowSpec("cubic", 0, 5)])
    result = run_experiment(exp)          # dict: throughput, utilization, delays, loss, ...

`harness` lives at the repository root, next to py/. It is importable when the root is on
sys.path (pytest does that; `pip install -e .` installs it next to policyforge).
"""
from .spec import Experiment, FlowSpec, HarnessError, LinkSpec
from .runner import Dumbbell, available_schemes, cleanup_stale, run_experiment, use_linkem
from .score import SCORES, score

__all__ = ["Experiment", "FlowSpec", "LinkSpec", "run_experiment", "HarnessError", "Dumbbell", "use_linkem",
           "available_schemes", "cleanup_stale", "score", "SCORES"]
