"""The harness: experiments as data, one-line errors, metrics of real iperf3 flows through
linkem, and namespaces that never outlive an experiment."""
import os
import subprocess
import time

import pytest

from policyforge.testbed import (Dumbbell, Experiment, FlowSpec, HarnessError, LinkSpec, cleanup_stale, run_experiment,
                     score)
from policyforge.testbed.metrics import link_window
from policyforge.testbed.traces import (TRACE_DIR, TraceError, cellular_trace, constant_rate_trace, read_trace,
                                       trace_capacity_mbps, trace_rate_mbps, window_trace)
from pfhelpers import ROOT, interruptible

LTE = TRACE_DIR / "lte.trace"


def _our_namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if f"{os.getpid()}x" in line]


def test_experiment_round_trips_through_json(tmp_path):
    exp = Experiment(LinkSpec(trace=str(LTE), delay_ms=15, queue_bytes=90000, loss=0.01),
                     [FlowSpec("cubic", 0, 5), FlowSpec("bbr", 1.5, 3)], name="two")
    exp.save(tmp_path / "exp.json")
    assert Experiment.load(tmp_path / "exp.json") == exp


@pytest.mark.parametrize("link, message", [
    (LinkSpec(rate_mbps=-1), "rate must be > 0"),
    (LinkSpec(delay_ms=-2), "delay must be >= 0"),
    (LinkSpec(loss=1.5), "loss must be in"),
    (LinkSpec(queue_pkts=10, queue_bytes=10000), "not both"),
    (LinkSpec(rate_mbps=None, trace="/nonexistent.trace"), "does not exist"),
])
def test_bad_links_are_one_clear_error(link, message):
    with pytest.raises(HarnessError, match=message):
        run_experiment(Experiment(link, [FlowSpec("cubic", 0, 1)]))


def test_bad_traces_and_descriptions(tmp_path):
    bad = tmp_path / "bad.trace"
    bad.write_text("1\n5\n3\n")
    with pytest.raises(HarnessError, match="must not decrease"):
        LinkSpec(rate_mbps=None, trace=str(bad)).validate()
    with pytest.raises(HarnessError, match="not an experiment"):
        Experiment.from_json('{"link": {"speed": 3}}')
    with pytest.raises(HarnessError, match="duration"):
        Experiment(LinkSpec(), [FlowSpec("cubic", 0, 0.1)]).validate()


def test_trace_rates(tmp_path):
    assert abs(trace_rate_mbps(constant_rate_trace(tmp_path / "c7.trace", 7.3)) - 7.3) < 0.01
    lte = read_trace(LTE)
    assert lte == sorted(lte) and 4 < trace_rate_mbps(LTE) < 40
    assert LinkSpec(rate_mbps=None, trace=str(LTE)).bdp_pkts() > 4


def test_scores():
    m = {"throughput_mbps": 20.0, "p95_delay_ms": 40.0, "mean_delay_ms": 25.0, "utilization": 0.8,
         "p95_queueing_ms": 30.0}
    assert score(m) == 0.5 and score(m, "power") == 0.8 and score(m, "utilization_minus_queueing") == 0.5
    with pytest.raises(HarnessError, match="unknown score"):
        score(m, "nope")


def test_power_floor_makes_starving_the_link_lose():
    """On a bloated cellular link a window of two packets (1 Mbit/s at 25 ms) beats filling the
    link (5 Mbit/s at 150 ms) on throughput / p95 delay; with the floor at 80 % of the
    reference's throughput it no longer does."""
    ref = 5.5
    starve = {"throughput_mbps": 1.0, "p95_delay_ms": 25.0, "reference_throughput_mbps": ref}
    fill = {"throughput_mbps": 5.0, "p95_delay_ms": 150.0, "reference_throughput_mbps": ref}
    assert score(starve) > score(fill)
    assert score(fill, "power_floor") == pytest.approx(5.0 / 150.0)         # above the floor: plain power
    assert score(starve, "power_floor") < 0.01 * score(fill, "power_floor")
    # no reference measured: the plain ratio
    assert score({"throughput_mbps": 2.0, "p95_delay_ms": 20.0}, "power_floor") == pytest.approx(0.1)
    # overrunning a droptail queue: the link's rate at a bounded delay, most packets lost
    flood = {"throughput_mbps": 5.4, "p95_delay_ms": 60.0, "loss": 0.77, "reference_throughput_mbps": ref}
    assert score(flood) > score(fill) and score(flood, "power_floor") < 0.01 * score(flood)
    assert score({**fill, "loss": 0.02}, "power_floor") == pytest.approx(5.0 / 150.0 * 0.98 ** 4)


def test_trace_windows_rotate_the_trace_and_keep_its_opportunities(tmp_path):
    w = window_trace(LTE, 12.345, tmp_path / "w.trace")
    orig, rot = read_trace(LTE), read_trace(w)
    assert len(rot) == len(orig) and rot[-1] <= orig[-1]
    # the rotated trace's first seconds are the original's seconds 12.345 on
    for a in (0.0, 2.0, 5.0):
        assert abs(trace_capacity_mbps(w, a, a + 1) - trace_capacity_mbps(LTE, 12.345 + a, 13.345 + a)) < 0.2


def test_cellular_traces_swing_tenfold_and_have_outages(tmp_path):
    a = cellular_trace(tmp_path / "a.trace", seconds=60, seed=4)
    assert read_trace(a) == read_trace(cellular_trace(tmp_path / "b.trace", seconds=60, seed=4))   # seeded
    assert read_trace(a) != read_trace(cellular_trace(tmp_path / "c.trace", seconds=60, seed=5))
    per_s = [trace_capacity_mbps(a, t, t + 1) for t in range(59)]
    assert 0.5 * 0.9 <= min(x for x in per_s if x > 0) and max(per_s) <= 20 * 1.05
    assert max(per_s) / max(min(per_s), 0.1) >= 10                       # 10x swings within the minute
    ops = read_trace(cellular_trace(tmp_path / "o.trace", seconds=60, seed=4, outage_per_min=20))
    assert max(b - a for a, b in zip(ops, ops[1:])) >= 200                 # an outage: 200 ms without delivery
    with pytest.raises(TraceError, match="low <= mean <= high"):
        cellular_trace(tmp_path / "x.trace", mean_mbps=30, high_mbps=20)


def test_an_interval_measures_only_what_the_link_did_in_it(tmp_path):
    """A 1 Mbit/s link with a deep queue: after the sender stops, the queue drains for seconds.
    Measured over an interval inside the flow, throughput never exceeds the link's rate and
    delay counts only packets that entered the link in the interval."""
    link = LinkSpec(rate_mbps=1.0, delay_ms=10, queue_pkts=200)
    r = run_experiment(Experiment(link, [FlowSpec("cubic", 0, 4)]), tmp_path, interval_s=(1.0, 3.5))
    assert r["interval_s"] == [1.0, 3.5]
    assert 0.8 <= r["throughput_mbps"] <= 1.02 and 0.8 <= r["utilization"] <= 1.02, r["throughput_mbps"]
    whole = run_experiment(Experiment(link, [FlowSpec("cubic", 0, 4)]), tmp_path / "whole")
    # over the whole flow the queue's drain stretches the run; the interval's p95 delay is that of its own packets
    assert r["p95_delay_ms"] is not None and whole["p95_delay_ms"] is not None


def test_two_flows_share_the_link_and_leave_nothing_behind(tmp_path):
    # a run whose emulator was late (p99 > 0.5 ms: another job held the CPU or the disk) measured
    # another link; like the cc task (late_repeats), take up to three runs for one on time
    for _ in range(3):
        r = run_experiment(Experiment(LinkSpec(rate_mbps=24, delay_ms=10), [FlowSpec("reno", 0, 4),
                                                                            FlowSpec("reno", 0, 4)]), tmp_path)
        if r["emulator_late_ms"]["p99_ms"] < 0.5:
            break
    a, b = (f["throughput_mbps"] for f in r["flows"])
    assert 0.8 < (a + b) / 24 <= 1.02 and 0.85 < r["utilization"] <= 1.02
    assert r["jain"] > 0.8                                  # two renos split the link roughly fairly
    assert r["emulator_late_ms"]["p99_ms"] < 0.5
    assert r["score"] == pytest.approx(r["throughput_mbps"] / r["p95_delay_ms"])
    assert all(f["series"] and f["series"][-1]["rtt_ms"] >= 20 for f in r["flows"])
    assert not (tmp_path / "linkem.bin").exists()           # the log is dropped unless keep_log
    assert _our_namespaces() == []


def test_each_flow_gets_its_own_sender_and_receiver_host(tmp_path):
    """hosts=3: six host namespaces behind two routers; every pair's path crosses linkem
    (RTT = 2 x delay), a sender's address is its own, and everything goes on exit."""
    with Dumbbell(LinkSpec(rate_mbps=24, delay_ms=10), tmp_path, hosts=3) as db:
        assert len(_our_namespaces()) == 2 + 6
        for i in range(3):
            r = db.snd(["ping", "-c", "5", "-i", "0.05", "-q", db.rcv_addr(i)], host=i, timeout=10)
            rtt_avg = float(r.stdout.strip().splitlines()[-1].split("=")[1].split("/")[1])
            assert 19.5 < rtt_avg < 23, r.stdout
            addrs = db.snd(["ip", "-4", "-o", "addr", "show", "dev", "eth0"], host=i).stdout
            assert db.snd_addr(i) + "/24" in addrs
    assert _our_namespaces() == []
    with pytest.raises(HarnessError, match="1 to 250 hosts"):
        Dumbbell(LinkSpec(), tmp_path, hosts=0)


def test_trace_link_runs_at_the_trace_rate(tmp_path):
    r = run_experiment(Experiment(LinkSpec(rate_mbps=None, trace=str(LTE), delay_ms=10), [FlowSpec("cubic", 0, 4)]),
                       tmp_path, keep_log=True)
    # capacity is what the trace offered in the 4 s the flow used (it starts a bit after linkem)
    window = link_window(tmp_path / "linkem.bin")
    assert 0 < window["start_s"] < 2 and 3.5 < window["end_s"] - window["start_s"] < 5
    assert r["capacity_mbps"] == pytest.approx(trace_capacity_mbps(LTE, window["start_s"], window["end_s"]))
    # utilization: link bytes against the opportunities of the trace window the flow used
    assert 0.6 < r["utilization"] <= 1.01 and r["p95_delay_ms"] >= 10
    assert (tmp_path / "linkem.bin").stat().st_size > 0


def test_namespaces_go_on_errors_and_after_a_killed_run(tmp_path):
    with pytest.raises(RuntimeError):
        with Dumbbell(LinkSpec(rate_mbps=10, delay_ms=1), tmp_path) as db:
            assert len(_our_namespaces()) == 2 and db.snd(["true"]).returncode == 0
            raise RuntimeError("boom")
    assert _our_namespaces() == []
    # a namespace left by a process that died with SIGKILL (pid 4194303 is above any live pid here)
    subprocess.run(["ip", "netns", "add", "pfs4194303x0"], check=True)
    orphan = subprocess.Popen(["ip", "netns", "exec", "pfs4194303x0", "sleep", "60"])
    time.sleep(0.2)
    assert "pfs4194303x0" in cleanup_stale()
    assert orphan.wait(timeout=5) != 0                       # the process left inside was killed


def test_ctrl_c_mid_run_tears_everything_down(tmp_path):
    """SIGINT while iperf3 runs: the runner's exits remove namespaces, linkem and iperf3."""
    import signal
    import sys
    code = ("from policyforge.testbed import *\n"
            "run_experiment(Experiment(LinkSpec(rate_mbps=24, delay_ms=10), [FlowSpec('cubic', 0, 20)]))\n")
    from policyforge.native import native_path
    env = dict(os.environ, PYTHONPATH=str(ROOT / "py"),
               PF_LINKEM=str(native_path("bin", "linkem")))      # the testbed alone: told where linkem is
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True,
                             preexec_fn=interruptible)
    deadline = time.time() + 10
    while time.time() < deadline and not any(f"pfs{child.pid}x" in n for n in _netns_names()):
        time.sleep(0.1)
    assert any(f"pfs{child.pid}x" in n for n in _netns_names()), "the run did not start"
    time.sleep(1.5)                                           # iperf3 is running now
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=15) != 0 and "KeyboardInterrupt" in child.stderr.read()
    assert not [n for n in _netns_names() if f"{child.pid}x" in n]
    time.sleep(0.3)
    linkem = subprocess.run(["pgrep", "-f", f"--dev-a pfa{child.pid}x"], capture_output=True, text=True).stdout
    assert linkem.split() == []
    # nor the iperf3 client, whose thread was waiting for it (left behind, it spun at full CPU)
    clients = subprocess.run(["pgrep", "-f", "iperf3 -c .* -t 20 -C cubic"], capture_output=True, text=True).stdout
    assert clients.split() == []


def _netns_names():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()


def test_every_ack_of_every_flow_is_traced_and_concurrent_experiments_stay_apart(tmp_path):
    """Two experiments at once, cubic and bbr, each with the same iperf3 port in its own
    namespaces: each trace holds only its own scheme's ACKs (libbpf on tcp:tcp_probe, filtered by
    the sender's namespace and the server port), hundreds per second, with cwnd, srtt and rate."""
    import threading
    out = {}

    def one(cc):
        out[cc] = run_experiment(Experiment(LinkSpec(rate_mbps=12, delay_ms=20), [FlowSpec(cc, 0, 3)]),
                                 tmp_path / cc, acks=True)
    threads = [threading.Thread(target=one, args=(cc,)) for cc in ("cubic", "bbr")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cc, r in out.items():
        a = r["flows"][0]["acks"]
        assert a["ca"] == cc and a["acks"] > 300, (cc, a["ca"], a["acks"])
        assert len(a["t_s"]) <= 400 and a["t_s"] == sorted(a["t_s"]) and a["t_s"][-1] > 2.5
        assert max(a["cwnd"]) >= 20 and 40 <= sorted(a["srtt_ms"])[len(a["srtt_ms"]) // 2] <= 200
        rates = [x for x in a["rate_mbps"] if x is not None]
        assert rates and 6 < sorted(rates)[len(rates) // 2] < 13, rates[:10]
