"""The congestion-control task: one integer policy, deployed as eBPF struct_ops (evaluated on
this kernel) and as a kernel module (built here, loaded in the VM).

check:    static kernel rules -> clang -target bpf -> the kernel's BPF verifier (register,
          then unregister) -> optionally the Kbuild module with -Werror (-o kmod=1)
evaluate: register under a unique name, iperf3 flows across the linkem dumbbell, unregister
score:    PolicySmith's throughput / p95 per-packet delay (Mbit/s per ms) by default
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# the testbed's score names (testbed/score.py): one vocabulary for the testbed, this task and bench/cc
from policyforge.testbed.score import ALIASES as SCORE_ALIASES, NEEDS_REFERENCE, SCORES, score as testbed_score

from ... import sandbox
from ...checking import (PREPROCESSED, Call, Function, Grammar, Param, StageFailed, build, compiler_feedback, pipeline,
                         template_macros)
from ...native import native_path
from ...template import CHECKOUT, Template
from ...task import Baseline, CheckOutcome, Evaluation, Hole, Option, Seed, Task, TaskError, boolean, number

ROOT = CHECKOUT                                      # the checkout: kmod/

STATE_FIELDS = ("cwnd", "ssthresh", "ca_state", "in_recovery", "new_loss", "srtt_us", "min_rtt_us", "rtt_us",
                "delivered", "interval_us", "losses", "acked", "prior_in_flight", "is_app_limited", "mss",
                "cwnd_clamp", "ai_inc", "rate_pps", "bdp")
HISTORY_FIELDS = ("n", "conn_min_rtt_us", "max_rate_pps", "sum_lost", "sum_ecn", "sum_delivered",
                  "recent_min_rtt_us", "recent_max_rtt_us", "recent_avg_rtt_us", "recent_max_rate_pps")
WINDOW_FIELDS = ("delivered", "lost", "ecn", "min_rtt_us", "avg_rtt_us", "max_rtt_us", "rate_pps")
INT_TYPES = ("s64", "u64", "s32", "u32", "__s64", "__u64", "__s32", "__u32")
WINDOWS_HINT = "read history windows through pf_window(h, k) (bounds are checked there)"
POLICY_DOC = (
    "The kernel calls it on every ACK. It returns the next congestion window in packets. The template "
    "then: clamps it to [2, s->cwnd_clamp] (a negative value means 2); on the first lossy ACK of a "
    "recovery episode (s->new_loss == 1) also sets ssthresh to it, and ssthresh changes at no other "
    "time (so s->ssthresh is the window you returned at the last loss, or huge before the first one; a "
    "policy cannot otherwise remember that it left slow start, it must decide from its inputs on every "
    "ACK; unless you define policy_ssthresh); paces the connection at 2 x cwnd x mss / srtt while cwnd < "
    "ssthresh and 1.2 x after (unless you define policy_pacing_rate). "
    "The function keeps no state between calls: all history is in s and h. The BPF verifier walks every path "
    "through the program (at most a million instructions in all): branches inside loops multiply, so prefer "
    "the aggregates of h to nested loops. clang warns (as errors) about && inside || without parentheses.")
CC_FIELDS = {
    "pf_cc_state.cwnd": "the current congestion window, packets",
    "pf_cc_state.ssthresh": "slow-start threshold, packets (see above: set only on a new loss)",
    "pf_cc_state.ca_state": "the kernel's congestion state: 0 open, 1 disorder, 2 CWR, 3 recovery, 4 loss",
    "pf_cc_state.in_recovery": "1 while recovering from a loss (ca_state >= 3), else 0",
    "pf_cc_state.new_loss": "1 on the first lossy ACK of a recovery episode, else 0",
    "pf_cc_state.srtt_us": "smoothed RTT, microseconds",
    "pf_cc_state.min_rtt_us": "lowest RTT seen on the connection, microseconds",
    "pf_cc_state.rtt_us": "this ACK's RTT sample, microseconds; -1 when it has none",
    "pf_cc_state.delivered": "packets delivered in this ACK's rate sample",
    "pf_cc_state.interval_us": "length of that sample, microseconds (delivery rate = delivered / interval)",
    "pf_cc_state.losses": "packets marked lost by this ACK",
    "pf_cc_state.acked": "packets newly acknowledged (cumulatively or selectively) by this ACK",
    "pf_cc_state.prior_in_flight": "packets in flight before this ACK",
    "pf_cc_state.is_app_limited": "1 when the sender had too little data to fill cwnd (rates read low), else 0",
    "pf_cc_state.mss": "bytes per packet",
    "pf_cc_state.cwnd_clamp": "the largest cwnd allowed, packets",
    "pf_cc_state.ai_inc": "1 when the packets acked since the last +1 reach cwnd (Reno's +1 per RTT), else 0",
    "pf_cc_state.rate_pps": "this ACK's delivery rate, packets per second (0 when app-limited)",
    "pf_cc_state.bdp": "bandwidth-delay product: max delivery rate x min RTT, packets",
    "pf_cc_history.n": "closed windows available, 0..PF_HIST (a window lasts about one srtt)",
    "pf_cc_history.conn_min_rtt_us": "lowest RTT of the connection, microseconds",
    "pf_cc_history.max_rate_pps": "highest delivery rate of the connection, packets per second",
    "pf_cc_history.sum_lost": "packets lost over the n windows",
    "pf_cc_history.sum_ecn": "packets ECN-marked over the n windows",
    "pf_cc_history.sum_delivered": "packets delivered over the n windows",
    "pf_cc_history.recent_min_rtt_us": "lowest RTT over the n windows (0 when n == 0)",
    "pf_cc_history.recent_max_rtt_us": "highest RTT over the n windows",
    "pf_cc_history.recent_avg_rtt_us": "mean of the windows' average RTTs",
    "pf_cc_history.recent_max_rate_pps": "highest delivery rate over the n windows, packets per second",
    "pf_cc_window.delivered": "packets delivered in the window",
    "pf_cc_window.lost": "packets lost in the window",
    "pf_cc_window.ecn": "packets ECN-marked in the window",
    "pf_cc_window.min_rtt_us": "lowest RTT sample in the window, microseconds (0 if none)",
    "pf_cc_window.avg_rtt_us": "mean RTT sample in the window",
    "pf_cc_window.max_rtt_us": "highest RTT sample in the window",
    "pf_cc_window.rate_pps": "highest delivery rate in the window, packets per second",
}
SSTHRESH_DOC = (
    "Called on every ACK after policy_cong_control(). A value > 0 is the slow-start threshold to set now, "
    "packets (clamped to [2, s->cwnd_clamp]); the template then never sets ssthresh itself. A value <= 0 "
    "leaves the template's rule: ssthresh = the returned cwnd on a new loss. Defining it lets a policy "
    "remember a state in s->ssthresh (e.g. that it left slow start) on any ACK.")
PACING_DOC = (
    "Called on every ACK after policy_cong_control(). A value > 0 is the pacing rate, packets per second "
    "(the template multiplies by s->mss, caps it at the socket's maximum, and turns on TCP's own pacing "
    "for the connection, so the rate is enforced without an fq qdisc); cwnd still bounds the data in "
    "flight, so a rate-based design returns a cwnd with headroom (e.g. 2 x s->bdp). A value <= 0 leaves "
    "the template's rule (2 x cwnd x mss / srtt in slow start, 1.2 x after).")
POLICY_PARAMS = (Param("s", "const struct pf_cc_state *", "pf_cc_state"),
                 Param("h", "const struct pf_cc_history *", "pf_cc_history"))
# the optional outputs: function -> the macro the templates test (bpf/pf_cc_policy.h)
OPTIONAL = {"policy_ssthresh": "PF_HAS_SSTHRESH", "policy_pacing_rate": "PF_HAS_PACING"}
GRAMMAR = Grammar(
    language="c", file="policy.c",
    functions=(Function("policy_cong_control", "s64", POLICY_PARAMS, doc=POLICY_DOC),
               Function("policy_ssthresh", "s64", POLICY_PARAMS, doc=SSTHRESH_DOC, optional=True),
               Function("policy_pacing_rate", "s64", POLICY_PARAMS, doc=PACING_DOC, optional=True)),
    calls=(Call("pf_div", 2, doc="a / b rounded toward zero, 0 when b == 0"), Call("pf_min", 2, doc="the smaller"),
           Call("pf_max", 2, doc="the larger"),
           Call("pf_window", 2, pointer_args=((0, "pf_cc_history"),), returns="pf_cc_window", args=("h", "k"),
                doc="the k-th newest closed window, k = 0 newest; meaningful for k < h->n")),
    structs={"pf_cc_state": STATE_FIELDS, "pf_cc_history": HISTORY_FIELDS, "pf_cc_window": WINDOW_FIELDS},
    types=INT_TYPES + ("int", "long", "unsigned", "short", "char", "signed", "_Bool"), typedefs=INT_TYPES,
    constants={"PF_HIST": 10}, floating=False, division=False, max_trips=16,
    field_hints={"w": WINDOWS_HINT, "head": WINDOWS_HINT},
    purpose="the kernel runs it on every ACK", fields=CC_FIELDS)
# the policy alone as x86 code, for the audit: the header's policy side, outside the kernel
AUDIT_PRELUDE = """typedef long long s64; typedef unsigned long long u64; typedef int s32; typedef unsigned int u32;
typedef s64 __s64; typedef u64 __u64; typedef s32 __s32; typedef u32 __u32;
#define __always_inline inline __attribute__((always_inline))
#define PF_POLICY_ONLY 1
#define PF_POLICY_LINKAGE
#include "pf_cc_policy.h"
"""

FEATURES = {
    "cwnd": "s->cwnd", "ssthresh": "s->ssthresh", "acked": "s->acked", "ai_inc": "s->ai_inc",
    "new_loss": "s->new_loss", "in_recovery": "s->in_recovery", "losses": "s->losses",
    "srtt": "s->srtt_us", "min_rtt": "s->min_rtt_us", "rtt": "s->rtt_us", "inflight": "s->prior_in_flight",
    "bdp": "s->bdp", "rate": "s->rate_pps", "max_rate": "h->max_rate_pps",
    "recent_min_rtt": "h->recent_min_rtt_us", "recent_max_rtt": "h->recent_max_rtt_us",
    "recent_avg_rtt": "h->recent_avg_rtt_us", "recent_max_rate": "h->recent_max_rate_pps",
    "hist_lost": "h->sum_lost", "hist_ecn": "h->sum_ecn",
    # the history arrays, newest window and the fourth newest (0 until that many windows closed):
    # trends such as a rising RTT or a falling rate
    "rtt_w0": "pf_window(h, 0)->avg_rtt_us", "rtt_w3": "pf_window(h, 3)->avg_rtt_us",
    "rate_w0": "pf_window(h, 0)->rate_pps", "rate_w3": "pf_window(h, 3)->rate_pps",
    "lost_w0": "pf_window(h, 0)->lost",
}
# what the offline generator may write besides cwnd (-o outputs): the optional functions
OUTPUT_HOLES = {"ssthresh": "policy_ssthresh", "pacing": "policy_pacing_rate"}
SEED_NAMES = ("reno", "delay", "rate", "track", "probe")   # the offline generator's starting policies


def bdp_window(num: int, den: int, rate: str = "rate_w0", rtt: str = "min_rtt") -> str:
    """A cwnd expression: num/den x `rate` (packets/s) x `rtt` (us) + 2 packets, at least 4."""
    scaled = rate if num == 1 else f"(mul {num} {rate})"
    return f"(max 4 (add 2 (div (mul {scaled} {rtt}) {den * 1000000})))"


def srtt_above(num: int, den: int) -> str:
    """An expression > 0 exactly when srtt > num/den x min RTT (a queue of that share of it)."""
    return f"(sub (mul {den} srtt) (mul {num} min_rtt))"


def until_rated(expr: str) -> str:
    """`expr` once a history window has closed with a delivery rate; slow start before."""
    return f"(ifgt rate_w0 0 {expr} (add cwnd acked))"


def optional_prefix(defined: set[str]) -> str:
    """What goes above a checked policy in both templates: for each optional output it
    defines, the macro that turns the template's call on and the function's declaration (with
    the template's linkage: a definition that follows it gets the same)."""
    out = []
    for fn in GRAMMAR.functions:
        if fn.optional and fn.name in defined:
            params = ", ".join(f"{p.type}{p.name}" for p in fn.params)
            out.append(f"#define {OPTIONAL[fn.name]} 1\nPF_POLICY_LINKAGE {fn.returns} {fn.name}({params});\n")
    return "".join(out)



SCORE_LABELS = {"power_floor": "throughput / p95 delay x (1 - loss)^4, floored at 80 % of cubic's throughput",
                "throughput_over_p95_delay": "throughput / p95 delay (Mbit/s per ms)",
                "power": "throughput / mean delay (Mbit/s per ms)", "utilization": "link utilization",
                "utilization_minus_queueing": "utilization - p95 queueing / 100 ms",
                "neg_p95_delay": "- p95 delay (ms)"}


def _stderr(xs: list[float]) -> float:
    """The standard error of a mean (0 for fewer than two values)."""
    if len(xs) < 2:
        return 0.0
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) ** 0.5


def _available_schemes() -> list[str]:
    return Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError:
        raise TaskError(f"{cmd[0]} is not installed (make deps)") from None


NOT_REASON = re.compile(r"^(\d+:|;|mark_precise|verification time|stack depth|processed |\s|func |Func#|Validating|"
                        r"last_idx|from \d+ to|libbpf:|-- |Global function)")
INSN = re.compile(r"^\d+: ")
GLUED = re.compile(r"(BPF program is too large\.[^\n]*|The sequence of \d+ jumps is too complex[^\n]*|"
                   r"infinite loop detected[^\n]*|back-edge from insn[^\n]*)")
SOURCE = re.compile(r"^; (.*) @ (\S+):(\d+)$")
# the common classes of rejection, and what to do about each (first match wins)
VERIFIER_HINTS = (
    (re.compile(r"back-edge|infinite loop|loop is not bounded|unbounded loop", re.I),
     "a loop the verifier cannot bound: write `for (int k = 0; k < PF_HIST; k++)` with a constant bound and "
     "a counter that nothing else changes"),
    (re.compile(r"too large|too complex|is too complex|processed \d{7,} insns|complexity", re.I),
     "the program is too complex for the verifier: fewer nested loops and branches (h->sum_* and "
     "h->recent_* need no loop)"),
    (re.compile(r"unbounded memory access|invalid access to map value|outside of the allowed memory range|"
                r"invalid mem access|out of bounds|invalid read|invalid write", re.I),
     "an index or offset the verifier cannot bound: read windows only as pf_window(h, k) with k a loop "
     "counter of constant bound"),
    (re.compile(r"stack", re.I), "too much stack: use fewer locals"),
    (re.compile(r"div", re.I), "divide with pf_div(a, b)"),
)


def summarize_verifier_log(text: str, policy_file: str = "policy.c", keep: int = 12) -> str:
    """What a model can act on from a BPF verifier rejection (libbpf prints the whole log):
    the policy's source line that the rejected instruction came from (the BPF line info names
    it), the verifier's reason for that instruction (the lines just before its statistics
    line, most specific first), a hint for the common classes, and the last few instructions
    from the policy's own lines, without the template's register dumps. The raw log is kept
    with the attempt in the store."""
    lines = text.splitlines()
    if "-- BEGIN PROG LOAD LOG --" not in text:
        return "\n".join(ln for ln in lines if ln.strip())[-4000:]
    glued = GLUED.findall(text)   # limits the kernel prints at the end of an instruction's line
    start = next(i for i, ln in enumerate(lines) if "BEGIN PROG LOAD LOG" in ln)
    end = next((i for i, ln in enumerate(lines) if "END PROG LOAD LOG" in ln), len(lines))
    log = [ln for ln in lines[start + 1:end] if not ln.startswith("mark_precise")]
    stats = next((k for k in range(len(log) - 1, -1, -1) if log[k].startswith("processed ")), len(log))
    k = stats
    while k > 0 and log[k - 1].strip() and not NOT_REASON.match(log[k - 1]):
        k -= 1
    reasons = [ln.strip() for ln in log[k:stats]]
    if glued:
        reasons = [glued[-1].strip()] + reasons
    if not reasons:    # no statistics line: the last line that reads as a reason
        cands = [n for n, ln in enumerate(log) if ln.strip() and not NOT_REASON.match(ln)]
        k = cands[-1] if cands else len(log)
        reasons = [log[k].strip()] if cands else ["(no reason given)"]
    insn = next((n for n in range(k - 1, -1, -1) if INSN.match(log[n])), None)
    before = log[:insn if insn is not None else k]
    where = next((m for ln in reversed(before) if (m := SOURCE.match(ln))), None)
    mine = next((m for ln in reversed(before) if (m := SOURCE.match(ln)) and m.group(2) == policy_file), None)
    out = []
    if where and where.group(2) == policy_file:
        out.append(f"{policy_file}:{where.group(3)}: the BPF verifier rejected the program: {'; '.join(reasons)}")
        out.append(f"    at: {where.group(1).strip()}")
    else:
        place = f"{where.group(2)}:{where.group(3)}" if where else policy_file
        out.append(f"{place}: the BPF verifier rejected the program: {'; '.join(reasons)}"
                   + (f" (in the template's code, not in {policy_file})" if where else ""))
        if mine:
            out.append(f"    the last line of {policy_file} before it: {mine.group(3)}: {mine.group(1).strip()}")
    reason_text = " ".join(reasons)
    hint = next((h for rx, h in VERIFIER_HINTS if rx.search(reason_text)), None)
    if hint:
        out.append(f"hint: {hint}")
    if mine:   # the instructions from the policy's last line on, register states cut short
        first = max(n for n, ln in enumerate(before) if SOURCE.match(ln) and SOURCE.match(ln).group(2) == policy_file)
        tail = [ln if len(ln) <= 160 else ln[:160] + " ..." for ln in log[first:k] if ln.strip()][-keep:]
        out.append("the verifier's last steps:")
        out += [f"    {ln}" for ln in tail]
    return "\n".join(out)


def trim_kbuild_log(text: str, workdir: Path) -> str:
    """gcc's messages without make's recursion lines and the build folder's long path."""
    lines = [ln.replace(f"{workdir.resolve()}/kmod/", "") for ln in text.splitlines()
             if ln.strip() and not ln.startswith(("make", "Skipping BTF"))]
    return "\n".join(lines)[-4000:]


# Every struct_ops policyforge registers is marked here with the registering process's pid, so
# that one killed between register and unregister (SIGKILL, a node lost, a test timeout) leaves
# no congestion control behind for good: the next cc task on this machine unregisters the marked
# ones whose process is gone. Only names marked here are touched, never anyone else's.
REGISTERED_DIR = Path(os.environ.get("PF_CC_REGISTERED_DIR", "/run/policyforge/struct_ops"))


def _mark_registered(name: str) -> None:
    try:
        REGISTERED_DIR.mkdir(parents=True, exist_ok=True)
        (REGISTERED_DIR / name).write_text(f"{os.getpid()}\n")
    except OSError:
        pass                # best effort: the run's own unregister still happens


def sweep_stale_registrations() -> list[str]:
    """Unregister the struct_ops that policyforge processes registered and left when they died;
    returns their names."""
    swept = []
    for mark in sorted(REGISTERED_DIR.glob("pf_*")) if REGISTERED_DIR.is_dir() else []:
        try:
            os.kill(int(mark.read_text().split()[0]), 0)
            continue                                # its process is alive: its registration
        except ProcessLookupError:
            pass
        except (OSError, ValueError, IndexError):
            continue
        CCTask.unregister(mark.name)
        swept.append(mark.name)
    return swept


class CCTask(Task):
    name = "cc"
    title = "TCP congestion control (eBPF struct_ops and kernel module)"
    language = "c"
    score_label = "throughput / p95 delay x (1 - loss)^4, floored at 80 % of cubic's throughput"
    grammar = GRAMMAR
    LEAD_S, TAIL_S = 1.0, 0.5     # flows start before the measured interval and end after it
    tradeoff = ("p95_delay_ms", "throughput_mbps", "p95 one-way delay (ms)", "throughput (Mbit/s)")
    REFERENCE = "cubic"           # the scheme power_floor's floor is relative to
    options = [
        Option("rate_mbps", 24.0, "bottleneck rate (ignored with trace)", number(above=0)),
        Option("delay_ms", 10.0, "one-way delay (RTT = 2 x delay)", number(min=0)),
        Option("trace", "", "Mahimahi trace for a variable-rate link: a file, 'lte' (the testbed's bundled "
                            "LTE-like trace) or 'cell' (a generated cellular link: cell:seed=2,mean=6,low=0.5,"
                            "high=20,seconds=60,outages=3)"),
        Option("queue_pkts", 0, "droptail queue in packets (0: one BDP)", number(int, min=0)),
        Option("loss", 0.0, "random loss on the data direction (0 to 1)", number(min=0, max=1)),
        Option("duration_s", 4.0, "the measured interval of each run, s (the flows run 1.5 s longer: they "
                                  "start before it and end after it)", number(above=0)),
        Option("windows", 1, "windows of the link each scheme is measured on: on a trace, start offsets drawn "
                             "from window_seed (the same for every scheme of a run); on a fixed link, repeats. "
                             "The score is their mean", number(int, min=1, max=20)),
        Option("window_seed", 1, "seed of the windows' start offsets in the trace", number(int, min=0)),
        Option("race", 0.5, "in a search, stop measuring a candidate whose mean score after a window is below "
                            "this share of the best so far (0: never)", number(min=0, max=1)),
        Option("repeat_close", True, "in a search, measure every window once more when a candidate's score is "
                                     "within two standard errors of the best so far (windows >= 2)", boolean),
        Option("flows", 1, "competing flows of the same scheme", number(int, min=1)),
        Option("score", "power_floor", " | ".join(SCORES) + " (power_floor: throughput / p95 delay x "
                                       "(1 - loss)^4 with a floor at 80 % of cubic's throughput on the same "
                                       "window; docs/cc.md)"),
        Option("late_bound_ms", 0.0, "the link emulator's p99 lateness above which a run is invalid and repeated "
                                     "(0: the larger of 0.5 ms and 5 % of the RTT)", number(min=0)),
        Option("late_repeats", 2, "repeats of a run whose link was late before the evaluation fails",
               number(int, min=0, max=10)),
        Option("seeds", "", f"which seeds start the search: {', '.join(SEED_NAMES)} (default: reno, "
                            "delay, and rate, track and probe when outputs has pacing)"),
        Option("outputs", "cwnd", "what the offline generator writes: cwnd, plus ssthresh and/or pacing "
                                  "(e.g. cwnd,pacing); a model may define the optional outputs whatever this says"),
        Option("acks", True, "trace the sender at every ACK (cwnd, ssthresh, srtt, delivery rate; libbpf on "
                             "tcp:tcp_probe) in each scheme's first run, for the report's plots", boolean),
        Option("kmod", False, "also build the kernel module as a checker stage", boolean),
        Option("kdir", "", "kernel headers for the module (default: Debian's linux-headers-*-amd64)"),
    ]

    def __init__(self, **values: Any):
        super().__init__(**values)
        self.opts["score"] = SCORE_ALIASES.get(self.opts["score"], self.opts["score"])
        if self.opts["score"] not in SCORES:
            raise TaskError(f"unknown score '{self.opts['score']}'; choose {', '.join(SCORES)}")
        self.score_label = SCORE_LABELS.get(self.opts["score"], self.opts["score"])
        self.outputs = [n.strip() for n in str(self.opts["outputs"]).split(",") if n.strip()]
        if "cwnd" not in self.outputs or set(self.outputs) - {"cwnd", *OUTPUT_HOLES}:
            raise TaskError(f"bad outputs '{self.opts['outputs']}': cwnd, plus any of ssthresh, pacing "
                            "(comma-separated)")
        self.seed_names = [n.strip() for n in str(self.opts["seeds"]).split(",") if n.strip()] or \
            ["reno", "delay"] + (["rate", "track", "probe"] if "pacing" in self.outputs else [])
        if set(self.seed_names) - set(SEED_NAMES):
            raise TaskError(f"unknown seeds '{self.opts['seeds']}'; choose from {', '.join(SEED_NAMES)} "
                            "(comma-separated)")
        for paced in sorted({"rate", "track"} & set(self.seed_names)):
            if "pacing" not in self.outputs:
                raise TaskError(f"the {paced} seed sets the pacing rate: add -o outputs=cwnd,pacing")
        self.bpf_dir: Path | None = None
        self._references: dict[int, float] = {}       # window -> the reference scheme's throughput
        self._reference_lock = threading.Lock()

    # --- generator-facing ---------------------------------------------------------------
    def holes(self) -> list[Hole]:
        return [Hole(f.name, f.signature, FEATURES, doc=f.doc, integer=True) for f in GRAMMAR.functions
                if f.name == "policy_cong_control" or f.name in {OUTPUT_HOLES[o] for o in self.outputs[1:]}]

    def describe(self) -> str:
        link = (f"a {self.opts['rate_mbps']:g} Mbit/s" if not self.opts["trace"] else "a variable-rate (trace)") + \
            f" link with {self.opts['delay_ms']:g} ms one-way delay and a droptail queue"
        return ("Write a TCP congestion control for Linux: the policy inside a fixed template that runs in "
                "the kernel as eBPF (the BPF verifier must accept it) and as a kernel module. Values are "
                "64-bit signed integers (s64). "
                f"It is scored on {link} by {self.score_label}; higher is better.\n\n")

    def seeds(self) -> list[Seed]:
        reno = ("(ifgt new_loss 0 (max 2 (shr cwnd 1)) (ifgt in_recovery 0 cwnd "
                "(ifgt ssthresh cwnd (add cwnd acked) (add cwnd ai_inc))))")
        # delay-aware: grow like Reno, back off when the queue delay exceeds a quarter of min RTT
        delay = ("(ifgt new_loss 0 (max 2 (shr cwnd 1)) (ifgt (sub srtt (add min_rtt (shr min_rtt 2))) 0 "
                 "(max 2 (sub cwnd ai_inc)) (ifgt ssthresh cwnd (add cwnd acked) (add cwnd ai_inc))))")
        # rate-based (BBR's idea without its probing phases): slow start until a delivery rate is
        # known, then a window of two BDPs and pacing at 1.25 x the highest rate of the last windows
        rate = "(ifgt bdp 0 (max 4 (mul 2 bdp)) (add cwnd acked))"
        pace = "(ifgt recent_max_rate 0 (add recent_max_rate (shr recent_max_rate 2)) 0)"
        # rate-tracking: the newest window's delivery rate instead of BBR's max filter, so the
        # window follows a link whose rate falls within one RTT; paced at 1.25 x that rate (it
        # probes 25 % per RTT while the link has room) with a window of 1.25 x its BDP + 2, which
        # bounds the queue it builds to about a quarter of a BDP; it ignores loss
        track = until_rated(bdp_window(5, 4))
        track_pace = "(ifgt rate_w0 0 (add rate_w0 (shr rate_w0 2)) 0)"
        # track with a gain that follows the queue: while srtt < 1.25 x min RTT (almost no queue)
        # it probes with 1.5 x the fresher of this ACK's and the newest window's rate; up to
        # 1.5 x min RTT it keeps track's window (1.25 x); after a lossy window or with a longer
        # queue it falls to one BDP of the newest window's rate (+2), which drains the queue
        # within about an RTT; the template's pacing. (A single 1.5 x / 1 x step held a half-BDP
        # queue on a steady link: bench/cc/variants.md.)
        long_queue = f"(ifgt {srtt_above(3, 2)} 0 1 0)"          # 1 when srtt > 1.5 x min RTT
        probe = until_rated(f"(ifgt (add lost_w0 {long_queue}) 0 {bdp_window(1, 1)} "
                            f"(ifgt {srtt_above(5, 4)} 0 {bdp_window(5, 4)} {bdp_window(3, 2, '(max rate rate_w0)')}))")
        cwnd = {"reno": reno, "delay": delay, "rate": rate, "track": track, "probe": probe}
        extra = {"policy_pacing_rate": {"rate": pace, "track": track_pace}}   # the others: 0, the template's rule
        holes = [h.name for h in self.holes()]
        return [Seed(n, {h: cwnd[n] if h == "policy_cong_control" else extra.get(h, {}).get(n, "0") for h in holes})
                for n in self.seed_names]

    # --- preparation --------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        if os.geteuid() != 0:
            raise TaskError("the cc task needs root (BPF struct_ops, network namespaces)")
        btf = Path("/sys/kernel/btf/vmlinux")
        if not btf.exists():
            raise TaskError("this kernel has no BTF (/sys/kernel/btf/vmlinux): BPF struct_ops cannot be used")
        sweep_stale_registrations()
        self.bpf_dir = Path(workdir).resolve() / "bpf"   # an -I path for clang, which runs in candidate dirs
        self.bpf_dir.mkdir(parents=True, exist_ok=True)
        vmlinux = self.bpf_dir / "vmlinux.h"
        if not vmlinux.exists():
            r = _run(["bpftool", "btf", "dump", "file", str(btf), "format", "c"])
            if r.returncode != 0:
                raise TaskError(f"bpftool could not dump the kernel's BTF: {r.stderr.strip()[:200]}")
            tmp = vmlinux.with_suffix(".tmp")
            tmp.write_text(r.stdout)
            tmp.replace(vmlinux)
        text = vmlinux.read_text()
        m = re.search(r"void \(\*cong_control\)\(([^)]*)\);", text)
        if not m:
            raise TaskError("this kernel's tcp_congestion_ops has no cong_control")
        self.args4 = m.group(1).count(",") == 3    # (sk, ack, flag, rs) since 6.10, else (sk, rs)
        source = Template.find("cc", "pf_cc.bpf.c").dir
        for f in ("pf_cc.bpf.c", "pf_cc_policy.h"):
            shutil.copy(source / f, self.bpf_dir / f)
        from policyforge.testbed import LinkSpec, use_linkem, use_tcptrace
        from policyforge.testbed.traces import TRACE_DIR
        use_linkem(native_path("bin", "linkem"))     # the testbed is told where our build's emulator is
        if self.opts["acks"]:
            try:
                use_tcptrace(native_path("bin", "pf-tcptrace"), native_path("share", "pf_tcptrace.bpf.c"))
            except TaskError:
                raise TaskError("pf-tcptrace was not built (it needs libbpf-dev: make deps); -o acks=0 runs "
                                "without per-ACK traces") from None
        trace = self.opts["trace"]
        if trace == "lte":
            trace = str(TRACE_DIR / "lte.trace")
        elif trace == "cell" or trace.startswith("cell:"):
            trace = str(self._cellular(trace, Path(workdir).resolve()))
        if trace and not Path(trace).is_file():
            raise TaskError(f"link trace {trace} does not exist")
        self.link = LinkSpec(rate_mbps=None if trace else self.opts["rate_mbps"], trace=trace or None,
                             delay_ms=self.opts["delay_ms"], queue_pkts=self.opts["queue_pkts"] or None,
                             loss=self.opts["loss"])
        self.windows = self._window_links(Path(workdir).resolve())
        if self.opts["score"] in NEEDS_REFERENCE and self.REFERENCE not in _available_schemes():
            raise TaskError(f"score {self.opts['score']} needs {self.REFERENCE} on this kernel; choose another "
                            "-o score")

    @staticmethod
    def _cellular(spec: str, workdir: Path) -> Path:
        """A generated cellular trace, written once into the run's shared folder."""
        from policyforge.testbed.traces import TraceError, cellular_trace
        names = {"seed": ("seed", int), "mean": ("mean_mbps", float), "low": ("low_mbps", float),
                 "high": ("high_mbps", float), "seconds": ("seconds", float), "outages": ("outage_per_min", float)}
        kw: dict[str, Any] = {}
        for part in filter(None, spec.partition(":")[2].split(",")):
            key, _, value = part.partition("=")
            if key.strip() not in names:
                raise TaskError(f"cellular trace: unknown parameter '{key.strip()}' (known: {', '.join(names)})")
            name, kind = names[key.strip()]
            try:
                kw[name] = kind(value)
            except ValueError:
                raise TaskError(f"cellular trace: {key.strip()}={value!r} is not a number") from None
        path = workdir / "traces" / (spec.replace(":", "_").replace(",", "_").replace("=", "") + ".trace")
        if not path.exists():
            try:
                cellular_trace(path.with_suffix(".tmp"), **kw).replace(path)
            except TraceError as e:
                raise TaskError(str(e)) from None
        return path

    def _window_links(self, workdir: Path) -> list:
        """The links of the run's windows: on a trace, rotated copies starting at offsets drawn
        from window_seed (every scheme of the run sees the same ones); on a fixed link, the link."""
        import dataclasses as dc
        import random
        from policyforge.testbed.traces import read_trace, window_trace
        n = self.opts["windows"]
        if not self.link.trace:
            return [self.link] * n
        period_s = read_trace(self.link.trace)[-1] / 1000
        span = self.opts["duration_s"] + self.LEAD_S + self.TAIL_S
        rng = random.Random(f"{self.opts['window_seed']}:{Path(self.link.trace).name}")
        out = []
        for k in range(n):
            offset = rng.uniform(0, max(0.0, period_s - span))
            path = workdir / "traces" / f"{Path(self.link.trace).stem}.w{self.opts['window_seed']}-{k}.trace"
            if not path.exists():
                window_trace(self.link.trace, offset, path.with_suffix(".tmp")).replace(path)
            out.append(dc.replace(self.link, trace=str(path)))
        return out

    def _need(self) -> None:
        if self.bpf_dir is None:
            raise TaskError("the cc task was not prepared (internal error)")

    # --- check --------------------------------------------------------------------------
    def _template(self) -> Template:
        """The prepared copy of bpf/pf_cc.bpf.c (beside vmlinux.h for this kernel)."""
        return Template(self.bpf_dir / "pf_cc.bpf.c")

    def full_source(self, checked: str) -> str:
        return self._template().splice(checked)

    @staticmethod
    def cc_name(workdir: Path) -> str:
        return "pf_" + hashlib.sha1(str(workdir.resolve()).encode()).hexdigest()[:8]

    def _clang(self, name: str) -> list[str]:
        cmd = ["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{self.bpf_dir}",
               f'-DPF_CC_NAME="{name}"', f"-DPF_OPS={name}_ops", "-Wall", "-Werror",
               "-Wno-unused-variable", "-Wno-unused-function"]
        return cmd + (["-DPF_CC_ARGS4"] if self.args4 else [])

    def _macros(self) -> frozenset[str]:
        return template_macros(self._template().head(), "c", [self.bpf_dir], self.bpf_dir / "macros",
                               defines=["-D__TARGET_ARCH_x86", "-D__bpf__"])

    def compile_bpf(self, checked: str, workdir: Path, name: str) -> tuple[Path | None, str]:
        """The template with a checked policy, built by clang for BPF in the sandbox (exports)."""
        (workdir / "cc.bpf.c").write_text(self.full_source(checked))
        obj = workdir / f"{name}.bpf.o"
        job = build([("compile", [*self._clang(name), "-c", "cc.bpf.c", "-o", obj.name])], workdir,
                    ro=[self.bpf_dir])
        return (obj if not job.failed else None), (job.stderr or job.reason)

    @staticmethod
    def register(obj: Path, timeout_s: float = 120) -> tuple[bool, str]:
        """Load the object through the kernel's BPF verifier (trusted bpftool, as root: the
        verifier is what stands between the candidate's code and this kernel). Not with
        `bpftool -d`: that makes the kernel log every instruction of every load (up to a million
        lines, 1-34 s a registration); on a rejection libbpf loads again with the log on and
        prints it, which is all the feedback needs."""
        try:
            r = subprocess.run(["bpftool", "struct_ops", "register", str(obj)], capture_output=True, text=True,
                               timeout=timeout_s, env={**os.environ, "LC_ALL": "C"})
        except FileNotFoundError:
            raise TaskError("bpftool is not installed (make deps)") from None
        except subprocess.TimeoutExpired:
            return False, (f"the BPF verifier did not finish within {timeout_s:g} s: the program is too complex "
                           "for it (fewer nested loops and branches)")
        ok = r.returncode == 0 and "Registered" in (r.stdout + r.stderr)
        if ok:
            _mark_registered(obj.name.split(".")[0])     # swept if this process dies before unregister
        return ok, r.stdout + r.stderr

    @staticmethod
    def unregister(name: str) -> None:
        _run(["bpftool", "struct_ops", "unregister", "name", f"{name}_ops"], timeout=30)
        (REGISTERED_DIR / name).unlink(missing_ok=True)

    def _kdir(self) -> str:
        kdir = self.opts["kdir"] or next(iter(sorted(Path("/usr/src").glob("linux-headers-*-amd64"))), None)
        if not kdir or not Path(kdir).is_dir():
            raise TaskError(f"no kernel headers for the module build at '{kdir or '/usr/src/linux-headers-*-amd64'}' "
                            "(install linux-headers-amd64 or pass -o kdir=...)")
        return str(kdir)

    def build_module(self, checked: str, workdir: Path, name: str) -> tuple[Path | None, str]:
        """The module from the checked policy, built by Kbuild in the sandbox."""
        kdir = Path(self._kdir()).resolve()
        workdir = workdir.resolve()              # make -C changes directory
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "kmod-policy.c").write_text(checked)
        out = workdir / "kmod"
        out.mkdir(exist_ok=True)
        r = sandbox.run(["make", "-s", "-C", str(ROOT / "kmod"), f"KDIR={kdir}", f"POLICY={workdir / 'kmod-policy.c'}",
                         f"NAME={name}", f"OUT={out}"], cwd=workdir, rw=[workdir, out],
                        ro=[ROOT / "kmod", ROOT / "bpf", kdir, *kdir.parent.glob("linux-headers-*")],
                        timeout_s=300, mem_mb=2048, max_procs=64, profile="build")
        ko = out / f"{name}.ko"
        return (ko if r.ok and ko.exists() else None), r.stdout + r.stderr

    def ray_resources(self) -> dict:
        # a node that can make network namespaces and load struct_ops declares it:
        #   ray start ... --resources '{"netns_struct_ops": 1}'
        return {"num_cpus": 1, "netns_struct_ops": 0.01}

    def check(self, source: str, workdir: Path) -> CheckOutcome:
        self._need()
        t0 = time.monotonic()
        workdir = Path(workdir).resolve()  # tools below run with cwd=workdir
        workdir.mkdir(parents=True, exist_ok=True)

        def failed(stage: str, feedback: str) -> CheckOutcome:
            return CheckOutcome(False, stage, feedback, seconds=time.monotonic() - t0)
        # the checked text alone for x86 with the header's policy side (for the audit), then in
        # the BPF template (clang) behind the declarations of the optional outputs it defines
        name = self.cc_name(workdir)
        obj = workdir / f"{name}.bpf.o"
        (workdir / "audit.c").write_text(AUDIT_PRELUDE + f'#include "{PREPROCESSED}"\n')
        try:
            checked = pipeline(source, GRAMMAR, workdir, [
                ("compile", ["gcc", "-O2", "-Wall", "-Werror", f"-I{self.bpf_dir}", "-c", "audit.c", "-o", "audit.o"])],
                audit=("audit.o", set(), {f.name for f in GRAMMAR.functions}), macros=self._macros(),
                ro=[self.bpf_dir])
        except StageFailed as e:
            return failed(e.stage, e.feedback)
        prefix = optional_prefix(checked.defined)
        (workdir / "cc.bpf.c").write_text(self.full_source(prefix + f'#include "{PREPROCESSED}"\n'))
        job = build([("compile", [*self._clang(name), "-c", "cc.bpf.c", "-o", obj.name])], workdir, ro=[self.bpf_dir])
        if job.failed:
            return failed("compile", compiler_feedback(job.stderr) or job.reason)
        checked_text = prefix + checked.text   # what both templates build: the module includes it as is
        ok, log = self.register(obj)
        self.unregister(name)
        if not ok:
            out = failed("verifier", summarize_verifier_log(log))
            out.info["log"] = log          # the raw log, kept with the attempt
            return out
        if self.opts["kmod"]:
            ko, kerr = self.build_module(checked_text, workdir, name)
            if ko is None:
                return failed("kmod", trim_kbuild_log(kerr, workdir))
        return CheckOutcome(True, "ok", "", obj, seconds=time.monotonic() - t0, checked_source=checked_text)

    # --- evaluate -----------------------------------------------------------------------
    def _score(self, r: dict) -> float:
        return testbed_score(r, self.opts["score"])

    def late_bound_ms(self) -> float:
        """The link emulator's largest acceptable p99 lateness: a run later than this measured
        a link that was not the one it claims (the machine starved linkem), so it is repeated."""
        return self.opts["late_bound_ms"] or max(0.5, 0.05 * 2 * self.opts["delay_ms"])

    METRICS = ("throughput_mbps", "utilization", "mean_delay_ms", "p95_delay_ms", "p95_queueing_ms", "loss",
               "retransmits", "jain")

    def _run(self, scheme: str, w: int, out_dir: Path | None = None) -> tuple[dict | None, list, str]:
        """One run of `scheme` on window w, measured over the same interval of link time as every
        other scheme's (LEAD_S to LEAD_S + duration_s). A run whose emulator was late beyond
        late_bound_ms() is never used: it is repeated up to late_repeats times. Returns the
        testbed's result (None when it failed), the lateness of the late runs, and why it failed."""
        from policyforge.testbed import Experiment, FlowSpec, HarnessError, run_experiment
        length = self.opts["duration_s"] + self.LEAD_S + self.TAIL_S
        exp = Experiment(self.windows[w], [FlowSpec(scheme, 0.0, length) for _ in range(max(1, self.opts["flows"]))],
                         name=scheme)
        interval = (self.LEAD_S, self.LEAD_S + self.opts["duration_s"])
        bound, lates = self.late_bound_ms(), []
        for _ in range(1 + self.opts["late_repeats"]):
            try:
                r = run_experiment(exp, out_dir, interval_s=interval, acks=self.opts["acks"] and w == 0)
            except HarnessError as e:
                return None, lates, str(e)
            late = r.get("emulator_late_ms") or {}
            if late.get("p99_ms", 0.0) <= bound:
                return r, lates, ""
            lates.append(late)
        return None, lates, (f"invalid: the link emulator was late in all {len(lates)} runs (p99 "
                             f"{lates[-1]['p99_ms']:.2f} ms > {bound:.2f} ms): the machine is too busy to emulate "
                             "this link")

    def _reference(self, w: int) -> float | None:
        """The reference scheme's throughput on window w, measured once per task (a baseline run
        of it records it first when baselines run before candidates)."""
        with self._reference_lock:
            if w not in self._references:
                r, _, _ = self._run(self.REFERENCE, w)
                if r is not None:
                    self._references[w] = r["throughput_mbps"]
            return self._references.get(w)

    def _experiment(self, scheme: str, out_dir: Path | None = None, best_so_far: float | None = None) -> Evaluation:
        """`scheme` on every window; the score is the mean of the windows' scores. In a search
        (best_so_far given), racing stops early a candidate that is far behind after a window,
        and a candidate within the noise of the best is measured on every window once more.
        Metrics: the mean of each metric, every run's throughput, p95 delay and score, the
        lateness of the link, and the late runs repeated."""
        t0 = time.monotonic()
        runs, lates = [], []
        n = len(self.windows)
        plan = list(range(n))
        k = 0
        while k < len(plan):
            w = plan[k]
            r, late, why = self._run(scheme, w, out_dir)
            lates += late
            if r is None:
                metrics = {"emulator_late_ms": lates[-1], "emulator_repeats": len(lates)} if lates else {}
                return Evaluation(False, None, metrics, reason=why, seconds=time.monotonic() - t0)
            if self.opts["score"] in NEEDS_REFERENCE:
                if scheme == self.REFERENCE:
                    with self._reference_lock:
                        self._references.setdefault(w, r["throughput_mbps"])
                r["reference_throughput_mbps"] = self._references[w] if scheme == self.REFERENCE else self._reference(w)
            r["window"], r["window_score"] = w, self._score(r)
            runs.append(r)
            k += 1
            mean = sum(x["window_score"] for x in runs) / len(runs)
            if best_so_far is not None and best_so_far > 0 and k < len(plan) and mean < self.opts["race"] * best_so_far:
                ev = self._aggregate(runs, lates, t0)
                ev.stage = "screen"
                ev.reason = (f"raced out: mean score {mean:.4g} after {len(runs)} of {len(plan)} runs is below "
                             f"{self.opts['race']:g} x the best so far ({best_so_far:.4g})")
                return ev
            if (k == n == len(plan) and n >= 2 and best_so_far is not None and self.opts["repeat_close"]
                    and abs(mean - best_so_far) <= 2 * _stderr([x["window_score"] for x in runs])):
                plan += list(range(n))          # too close to call: every window once more
        return self._aggregate(runs, lates, t0)

    def _aggregate(self, runs: list[dict], lates: list, t0: float) -> Evaluation:
        metrics: dict[str, Any] = {k: sum(r[k] or 0.0 for r in runs) / len(runs) for k in self.METRICS}
        metrics["cwnd_series"] = [s["cwnd_bytes"] for s in runs[0]["flows"][0]["series"]]
        if runs[0]["flows"][0].get("acks"):      # the first window's first flow, at every ACK (thinned)
            metrics["acks"] = runs[0]["flows"][0]["acks"]
        metrics["windows"] = [{"window": r["window"], "throughput_mbps": r["throughput_mbps"],
                               "p95_delay_ms": r["p95_delay_ms"], "loss": r["loss"],
                               "reference_throughput_mbps": r.get("reference_throughput_mbps"),
                               "score": r["window_score"]} for r in runs]
        metrics["emulator_late_ms"] = max((r.get("emulator_late_ms") or {} for r in runs),
                                          key=lambda x: x.get("p99_ms", 0.0))
        metrics["emulator_repeats"] = len(lates)
        return Evaluation(True, sum(r["window_score"] for r in runs) / len(runs), metrics,
                          seconds=time.monotonic() - t0)

    def evaluate(self, check: CheckOutcome, workdir: Path, best_so_far: float | None = None) -> Evaluation:
        self._need()
        name = check.artifact.name.split(".")[0]
        self.unregister(name)            # a leftover of a killed run would make the name "exist"
        ok, log = self.register(check.artifact)
        if not ok:
            return Evaluation(False, None, reason="register failed: " + summarize_verifier_log(log).splitlines()[0][:300])
        try:
            return self._experiment(name, best_so_far=best_so_far)
        finally:
            self.unregister(name)

    def verify(self, check: CheckOutcome, workdir: Path, evaluation: Evaluation) -> Evaluation:
        """Nothing to recount: the score is measured by the testbed (iperf3 and linkem, in
        namespaces of this process), and the policy runs inside the kernel, where the BPF
        verifier confines it to the template's state; it cannot print or touch a measurement.
        A second run would only add the link's noise (see bench/cc)."""
        return dataclasses.replace(evaluation, metrics={**evaluation.metrics,
                                                        "verified": "measured by the testbed, outside the policy"})

    def baselines(self, workdir: Path) -> list[Baseline]:
        self._need()
        # the reference first: its runs are the floor of everyone's score
        schemes = sorted((s for s in _available_schemes() if not s.startswith("pf_")), key=lambda s: s != self.REFERENCE)
        return [Baseline(s, self._experiment(s)) for s in schemes]

    # --- deploy -------------------------------------------------------------------------
    def export(self, source: str, check: CheckOutcome, out_dir: Path) -> dict[str, Any]:
        """The winner as a registrable .bpf.o and as a self-contained module source folder,
        both built from the checked policy (in a directory of ours, then copied)."""
        self._need()
        out_dir = out_dir.resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        name = "pf_winner"
        checked = check.checked_source
        (out_dir / "policy.c").write_text(source)
        with tempfile.TemporaryDirectory(prefix="pf-cc-export-") as tmp:
            built, err = self.compile_bpf(checked, Path(tmp), name)
            if built is None:
                raise TaskError(f"the winner no longer compiles: {err[:200]}")
            obj = out_dir / built.name
            shutil.copy(built, obj)
            shutil.copy(Path(tmp) / "cc.bpf.c", out_dir / "cc.bpf.c")
            try:
                ko, kerr = self.build_module(checked, Path(tmp) / "ko", name)
                if ko is not None:
                    shutil.copy(ko, out_dir / ko.name)
                    ko = out_dir / ko.name
                ko_note = (f"# built here against {self._kdir()}: {ko}\n" if ko is not None
                           else f"# the module did not build here:\n# {kerr.strip()[-300:]}\n")
            except TaskError as e:
                ko, ko_note = None, f"# module not built here: {e}\n"
        files = [str(obj), str(out_dir / "policy.c"), str(out_dir / "cc.bpf.c")] + ([str(ko)] if ko else [])
        kmod_dir = out_dir / "kmod"              # kmod/ of the checkout plus the policy and the header
        kmod_dir.mkdir(exist_ok=True)
        for f in ("pf_cc_mod.c", "Kbuild", "Makefile", "README.md"):
            shutil.copy(ROOT / "kmod" / f, kmod_dir / f)
        shutil.copy(ROOT / "bpf" / "pf_cc_policy.h", kmod_dir / "pf_cc_policy.h")
        (kmod_dir / "policy.c").write_text(checked)   # the text the checker passed
        files.append(str(kmod_dir))
        usage = (f"bpftool struct_ops register {obj}   # then: iperf3 -C {name} / "
                 f"sysctl net.ipv4.tcp_congestion_control={name}\n"
                 f"bpftool struct_ops unregister name {name}_ops\n"
                 f"# kernel module (load in the VM only): make -C {kmod_dir} KDIR=/lib/modules/$(uname -r)/build "
                 f"POLICY={kmod_dir / 'policy.c'} NAME={name} && insmod {kmod_dir}/build-{name}/{name}.ko\n" + ko_note)
        (out_dir / "USAGE.txt").write_text(usage)
        return {"files": files, "usage": usage}
