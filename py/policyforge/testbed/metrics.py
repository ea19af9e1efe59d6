"""Metrics from linkem's packet log and iperf3's JSON."""
from __future__ import annotations

from pathlib import Path

import numpy as np

LOG_RECORD = np.dtype([("dir", "u1"), ("dropped", "u1"), ("size", "<u2"), ("pad", "<u4"),
                       ("enq", "<u8"), ("deq", "<u8"), ("dlv", "<u8")])


LOG_ORIGIN = 255   # linkem's first record: enq = the clock at which the traces' time 0 lies


def link_window(log: Path, direction: int = 0) -> dict | None:
    """What crossed the bottleneck (Pantheon counts at the link, as mm-link's log does):
    delivered bytes and the window from the first to the last departure, in s after
    linkem's time 0 (None without data or origin)."""
    rec = np.fromfile(log, dtype=LOG_RECORD)
    origin = rec[rec["dir"] == LOG_ORIGIN]
    sent = rec[(rec["dir"] == direction) & (rec["dropped"] == 0)]
    # the window is bounded by full-size (data) packets: iperf3's small control messages
    # before and after the test would stretch it over idle time
    full = sent[sent["size"] >= 1000]
    if not origin.size or full.size < 2:
        return None
    t0, start, end = int(origin["enq"][0]), int(full["deq"].min()), int(full["deq"].max())
    inside = sent[(sent["deq"] >= start) & (sent["deq"] <= end)]
    return {"bytes": int(inside["size"].astype(np.int64).sum()), "start_s": (start - t0) / 1e9,
            "end_s": (end - t0) / 1e9}


def emulator_lateness(log: Path, delay_ms: float) -> dict | None:
    """linkem's own timing error: actual delivery minus scheduled delivery (departure +
    propagation delay) of every delivered packet, ms. None without packets."""
    rec = np.fromfile(log, dtype=LOG_RECORD)
    sent = rec[(rec["dir"] != LOG_ORIGIN) & (rec["dropped"] == 0)]
    if not sent.size:
        return None
    late = (sent["dlv"].astype(np.int64) - sent["deq"].astype(np.int64) - int(delay_ms * 1e6)) / 1e6
    return {"mean_ms": float(late.mean()), "p99_ms": float(np.percentile(late, 99)), "max_ms": float(late.max())}


def _origin(rec: np.ndarray) -> int | None:
    origin = rec[rec["dir"] == LOG_ORIGIN]
    return int(origin["enq"][0]) if origin.size else None


def interval_usage(log: Path, start_s: float, end_s: float, direction: int = 0) -> dict | None:
    """What the link delivered between start_s and end_s after linkem's time 0: bytes and
    packets whose delivery falls in the interval (None without an origin record). Every scheme
    measured over the same interval of link time sees the same part of a trace and no drain
    of its own queue after its sender stopped."""
    rec = np.fromfile(log, dtype=LOG_RECORD)
    t0 = _origin(rec)
    if t0 is None:
        return None
    lo, hi = t0 + int(start_s * 1e9), t0 + int(end_s * 1e9)
    ok = rec[(rec["dir"] == direction) & (rec["dropped"] == 0) & (rec["dlv"] >= lo) & (rec["dlv"] < hi)]
    return {"bytes": int(ok["size"].astype(np.int64).sum()), "packets": int(ok.size)}


def packet_delays(log: Path, direction: int = 0, interval_s: tuple[float, float] | None = None) -> dict:
    """Per-packet one-way delay through the emulated link (queueing + propagation), ms; with
    `interval_s`, of the packets that entered the link in that interval of link time."""
    rec = np.fromfile(log, dtype=LOG_RECORD)
    t0 = _origin(rec)
    rec = rec[rec["dir"] == direction]
    if interval_s is not None and t0 is not None:
        lo, hi = t0 + int(interval_s[0] * 1e9), t0 + int(interval_s[1] * 1e9)
        rec = rec[(rec["enq"] >= lo) & (rec["enq"] < hi)]
    ok = rec[rec["dropped"] == 0]
    if ok.size == 0:
        return {"packets": int(rec.size), "delivered": 0, "dropped": int(rec.size), "loss": 1.0 if rec.size else 0.0,
                "mean_delay_ms": None, "p95_delay_ms": None}
    d = (ok["dlv"] - ok["enq"]).astype(np.float64) / 1e6
    return {"packets": int(rec.size), "delivered": int(ok.size), "dropped": int(rec.size - ok.size),
            "loss": float((rec.size - ok.size) / rec.size), "mean_delay_ms": float(d.mean()),
            "p95_delay_ms": float(np.percentile(d, 95)),
            "timeline": {"t_s": ((ok["enq"] - rec["enq"].min()) / 1e9)[::max(1, ok.size // 2000)].tolist(),
                         "delay_ms": d[::max(1, ok.size // 2000)].tolist()}}


def jain(xs: list[float]) -> float:
    xs = [x for x in xs]
    if not xs or sum(xs) == 0:
        return 0.0
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


def iperf3_flow(report: dict) -> dict:
    """Throughput, retransmits and cwnd / RTT over time from one iperf3 client's --json."""
    end = report.get("end", {})
    recv = end.get("sum_received", {}).get("bits_per_second", 0.0)
    sent = end.get("sum_sent", {})
    series = []
    for iv in report.get("intervals", []):
        st = iv["streams"][0]
        series.append({"t": st["end"], "mbps": st["bits_per_second"] / 1e6,
                       "cwnd_bytes": st.get("snd_cwnd"), "rtt_ms": st.get("rtt", 0) / 1000})
    return {"throughput_mbps": recv / 1e6, "bytes": end.get("sum_received", {}).get("bytes", 0),
            "retransmits": sent.get("retransmits", 0), "series": series}
