"""linkem's own accuracy, from its packet log: departures on time at 50 Mbit/s, the fixed
rate exact under backlog, the droptail limit and random loss as configured."""
import subprocess
import time

import numpy as np
import pytest

from policyforge.testbed import Dumbbell, LinkSpec
from policyforge.testbed.metrics import LOG_RECORD
from policyforge import native

DELAY_MS = 5.0


def _blast_udp(db, mbps, seconds=2, size=1472):
    """Offer UDP at mbps from sender to receiver (1500-byte IP packets by default)."""
    db.spawn_rcv(["iperf3", "-s", "-1", "-p", "5301"])
    time.sleep(0.3)
    r = db.snd(["iperf3", "-c", db.RCV_ADDR, "-p", "5301", "-u", "-b", f"{mbps}M", "-l", str(size),
                "-t", str(seconds)], timeout=30)
    assert r.returncode == 0, r.stderr


def _data_packets(log):
    rec = np.fromfile(log, dtype=LOG_RECORD)
    return rec[rec["dir"] == 0]


def _on_time(tmp_path, label: str) -> None:
    """linkem's timing error stays under 0.5 ms at p99 and its rate is exact under backlog, in
    one of up to three runs. That is the contract the cc evaluator relies on: it repeats a run
    whose emulator was late and never scores one. A linkem that is late in every run fails."""
    attempts = []
    for i in range(3):
        with Dumbbell(LinkSpec(rate_mbps=50, delay_ms=DELAY_MS, queue_pkts=100), tmp_path / f"{label}{i}") as db:
            _blast_udp(db, 60)
        data = _data_packets(tmp_path / f"{label}{i}" / "linkem.bin")
        sent = data[data["dropped"] == 0]
        assert sent.size > 5000
        # timing error: actual delivery minus the scheduled one (departure + propagation delay)
        late_ms = (sent["dlv"].astype(np.int64) - sent["deq"].astype(np.int64) - int(DELAY_MS * 1e6)) / 1e6
        assert late_ms.min() > -0.01                      # never early, in any run
        # under backlog the wire is never idle: bytes over the departure span is the rate
        full = sent[sent["size"] == 1500]
        rate = full["size"].astype(np.int64).sum() * 8 / ((full["deq"].max() - full["deq"].min()) / 1e9) / 1e6
        attempts.append((np.percentile(late_ms, [50, 99, 100]).round(3).tolist(), round(rate, 3)))
        if np.percentile(late_ms, 99) < 0.5 and abs(rate - 50) / 50 < 0.02:
            return
    pytest.fail(f"{label}: linkem was late or off its rate in all 3 runs (p50/p99/max lateness ms, Mbit/s): "
                f"{attempts}")


def test_departures_on_time_and_rate_exact_at_50mbps(tmp_path):
    _on_time(tmp_path, "as-is")


def test_departures_on_time_under_a_cpu_hog_the_test_starts(tmp_path):
    """The same bound while one busy loop per core runs (started here, killed by process group):
    linkem's real-time priority must keep it on time whatever the user-mode load. (Loads that
    keep the CPUs inside the kernel are another matter: bench/cc/linkem_load.md.)"""
    import os
    import signal
    hogs = [subprocess.Popen(["bash", "-c", "while :; do :; done"], start_new_session=True)
            for _ in range(os.cpu_count() or 2)]
    try:
        time.sleep(0.5)
        _on_time(tmp_path, "hog")
    finally:
        for h in hogs:
            os.killpg(h.pid, signal.SIGKILL)
            h.wait()


def test_droptail_queue_limit_and_random_loss(tmp_path):
    with Dumbbell(LinkSpec(rate_mbps=12, delay_ms=DELAY_MS, queue_pkts=20), tmp_path / "q") as db:
        _blast_udp(db, 24, seconds=1)
    data = _data_packets(tmp_path / "q" / "linkem.bin")
    sent = data[data["dropped"] == 0]
    assert (data["dropped"] == 2).sum() > 0.3 * data.size          # half the offered load overflows
    # a packet waits behind at most 20 others of 1 ms each (12 Mbit/s, 1500 bytes)
    wait_ms = (sent["deq"] - sent["enq"]) / 1e6
    assert wait_ms.max() < 21 + 0.5, wait_ms.max()

    with Dumbbell(LinkSpec(rate_mbps=12, delay_ms=DELAY_MS, queue_bytes=15000), tmp_path / "b") as db:
        _blast_udp(db, 24, seconds=1)
    sent = _data_packets(tmp_path / "b" / "linkem.bin")
    sent = sent[sent["dropped"] == 0]
    wait_ms = (sent["deq"] - sent["enq"]) / 1e6
    assert 8 < wait_ms.max() < 11 + 0.5, wait_ms.max()          # 15000 bytes = 10 packets of 1 ms

    with Dumbbell(LinkSpec(rate_mbps=None, delay_ms=DELAY_MS, loss=0.1), tmp_path / "l") as db:
        _blast_udp(db, 10, seconds=1)
    data = _data_packets(tmp_path / "l" / "linkem.bin")
    lost = (data["dropped"] == 1).mean()
    assert 0.07 < lost < 0.13, lost


@pytest.mark.parametrize("args, message", [
    (["--rate-mbps", "-3"], "must be >= 0"),
    (["--trace", "/nonexistent.trace"], "cannot open trace"),
    ([], "usage"),
])
def test_bad_arguments_are_one_line(args, message):
    base = [] if not args else ["--dev-a", "pfxa", "--dev-b", "pfxb"]
    r = subprocess.run([str(native.native_path("bin", "linkem")), *base, *args], capture_output=True, text=True,
                       timeout=5)
    assert r.returncode != 0 and message in r.stderr


def test_idle_rtt_through_the_rate_limiter(tmp_path):
    """An idle 24 Mbit/s link adds only serialization (~30 us for a ping) to 2 x delay."""
    import re
    with Dumbbell(LinkSpec(rate_mbps=24, delay_ms=10.0), tmp_path) as db:
        db.snd(["ping", "-c", "2", "-i", "0.05", db.RCV_ADDR], timeout=10)
        r = db.snd(["ping", "-c", "30", "-i", "0.02", "-q", db.RCV_ADDR], timeout=30)
    avg = float(re.search(r"= [\d.]+/([\d.]+)/", r.stdout).group(1))
    assert abs(avg - 20.0) < 0.5, r.stdout
