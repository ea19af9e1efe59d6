"""linkem validated with real packets between real namespaces."""
import re

import numpy as np
import pytest

from policyforge.testbed import Experiment, FlowSpec, LinkSpec, run_experiment
from policyforge.testbed.metrics import LOG_RECORD
from policyforge.testbed.runner import Dumbbell
from policyforge.testbed.traces import TRACE_DIR


def test_idle_rtt_is_twice_the_delay(tmp_path):
    with Dumbbell(LinkSpec(rate_mbps=None, delay_ms=10.0), tmp_path) as db:
        db.snd(["ping", "-c", "3", "-i", "0.05", db.RCV_ADDR], timeout=10)       # warm up ARP-free path
        r = db.snd(["ping", "-c", "40", "-i", "0.02", "-q", db.RCV_ADDR], timeout=30)
    avg = float(re.search(r"= [\d.]+/([\d.]+)/", r.stdout).group(1))
    assert abs(avg - 20.0) < 0.5, r.stdout


def test_constant_rate_trace_gives_its_rate(tmp_path):
    trace = TRACE_DIR / "const24.trace"
    with Dumbbell(LinkSpec(trace=str(trace), delay_ms=5.0, queue_pkts=200), tmp_path) as db:
        db.spawn_rcv(["iperf3", "-s", "-1", "-p", "5299"])
        import time
        time.sleep(0.3)
        db.snd(["iperf3", "-c", db.RCV_ADDR, "-p", "5299", "-u", "-b", "40M", "-l", "1400", "-t", "3"], timeout=30)
    rec = np.fromfile(tmp_path / "linkem.bin", dtype=LOG_RECORD)
    data = rec[(rec["dir"] == 0) & (rec["dropped"] == 0)]
    t = (data["dlv"] - data["dlv"].min()) / 1e9
    steady = data[(t > 0.5) & (t < 2.5)]
    rate = steady["size"].astype(np.int64).sum() * 8 / 2.0 / 1e6
    assert abs(rate - 24.0) / 24.0 < 0.02, rate
    assert (rec["dropped"] == 2).any()    # the droptail queue overflowed: the sender offered 40 Mbit/s


def test_tcp_fills_the_link_and_reports_metrics(tmp_path):
    r = run_experiment(Experiment(LinkSpec(rate_mbps=24, delay_ms=10), [FlowSpec("cubic", 0, 3)]), tmp_path)
    assert 0.8 < r["utilization"] <= 1.02
    assert 20 <= r["mean_delay_ms"] <= r["p95_delay_ms"] < 20 + 2 * 10 + 5   # propagation + at most ~1 BDP queue
    assert r["flows"][0]["series"] and r["flows"][0]["series"][0]["cwnd_bytes"] > 0


def test_unknown_scheme_is_one_clear_error(tmp_path):
    from policyforge.testbed import HarnessError
    with pytest.raises(HarnessError, match="'nosuchcc' is not available"):
        run_experiment(Experiment(LinkSpec(), [FlowSpec("nosuchcc", 0, 1)]), tmp_path)
