"""Testbeds for congestion control: a dumbbell of network namespaces joined by linkem
(the userspace link emulator), iperf3 flows, and the metrics of Pantheon / PolicySmith.

    from policyforge.testbed import LinkSpec, FlowSpec, Experiment, run_experiment
    exp = Experiment(LinkSpec(rate_mbps=24, delay_ms=10), [FlowSpec("cubic", 0, 5)])
    result = run_experiment(exp)          # dict: throughput, utilization, delays, loss, ...

The testbed depends on nothing else in policyforge: it is told where linkem is
(`use_linkem(path)` or PF_LINKEM), and mininet_runner.py runs alone inside the VM guest.
"""
from .spec import Experiment, FlowSpec, HarnessError, LinkSpec
from .runner import Dumbbell, available_schemes, cleanup_stale, run_experiment, use_linkem
from .score import SCORES, score
from .acktrace import AckTracer, use_tcptrace

__all__ = ["Experiment", "FlowSpec", "LinkSpec", "run_experiment", "HarnessError", "Dumbbell", "use_linkem",
           "AckTracer", "use_tcptrace",
           "available_schemes", "cleanup_stale", "score", "SCORES"]
