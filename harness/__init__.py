"""Testbeds for congestion control: a dumbbell of network namespaces joined by linkem
(the userspace link emulator), iperf3 flows, and the metrics of Pantheon / PolicySmith.

    from harness import LinkSpec, FlowSpec, Experiment, run_experiment
    exp = Experiment(LinkSpec(rate_mbps=24, delay_ms=10), [FlowSpec("cubic", 0, 5)])
    result = run_experiment(exp)          # dict: throughput, utilization, delays, loss, ...
"""
from .spec import Experiment, FlowSpec, LinkSpec
from .runner import HarnessError, run_experiment

__all__ = ["Experiment", "FlowSpec", "LinkSpec", "run_experiment", "HarnessError"]
