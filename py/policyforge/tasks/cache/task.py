"""The cache-eviction task: a priority() for libCacheSim's priority-queue template.

check:    preprocess + parse + allowlist (policyforge.checking) -> gcc -Wall -Werror -O2
          against pf_cache_policy.h, linked with the template's machinery into a pluginCache
          .so (in the sandbox) -> audit of the candidate's object -> semantic probe
evaluate: libCacheSim (pf-cachesim) in the sandbox on a copy of the trace without
          next-access times; in a search (never in `eval`), a prefix screen first on large
          traces. The parent checks the counts it prints (requests, compulsory misses,
          Belady's bound); verify() recounts a result that matters from the candidate's own
          evictions (pf-cache-replay). prepare() refuses a trace that is not one first
          (traces.check_original, traces.check_copy).
score:    hit ratio = 1 - miss ratio (object, or byte with -o byte_miss=1), mean over sizes
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ... import sandbox
from ...checking import (PREPROCESSED, Function, Grammar, HELPERS_DOUBLE, Param, SCALAR_C, StageFailed, build,
                         math_calls, pipeline, template_macros)
from ...native import native_dir, native_path
from ...template import Template
from ...task import Baseline, CheckOutcome, Evaluation, Hole, Option, Seed, Task, TaskError, boolean, number
from . import traces

def TEMPLATE() -> Template:
    """The priority-queue template (native/cache/pq_template.c)."""
    return Template.find("cache", "pq_template.c")


FEATURES_MARK = "/* PF_FEATURES */"
POLICY_HEADER = "pf_cache_policy.h"
OBJ_FIELDS = ("count", "last_access", "insert_time", "size", "ghost_count", "ghost_age", "ghost_gap", "irr",
              "dfreq", "sketch", "total")
CTX_FIELDS = ("now", "n_objs", "cache_size", "count_p50", "count_p90", "age_p50", "age_p90", "size_p50",
              "size_p90", "ghost_hits", "once")
PRIORITY_DOC = (
    "Called when an object is inserted (a miss) and on every hit of it, and only then: at that moment "
    "obj->last_access == ctx->now. The value it returns is the object's priority until its next "
    "access; when the cache is full, the cached object with the LOWEST priority is evicted (ties: the "
    "one whose priority was set earliest). So a priority cannot decay while an object sits unused: "
    "express recency through the time of the access itself (a larger last_access is more recent), "
    "e.g. last_access + k * count, not through now - last_access, which is 0 whenever this runs.")
# meaning and units of every readable field: the prompt's only description of them
CACHE_FIELDS = {
    "pf_obj.count": "accesses since it was inserted, this one included (1 on insertion)",
    "pf_obj.last_access": "virtual time (request index) of this access: equal to ctx->now here",
    "pf_obj.insert_time": "virtual time it was inserted; ctx->now - insert_time is its residency so far",
    "pf_obj.size": "its size in bytes (1 for every object when sizes are ignored)",
    "pf_obj.ghost_count": "its count when it was last evicted, if it is back from the ghost history "
                          "(recently evicted objects, as many as the cache holds); 0 otherwise",
    "pf_obj.ghost_age": "how long it stayed cached before that eviction (virtual time); 0 if not a ghost",
    "pf_obj.ghost_gap": "virtual time between that eviction and this insertion; 0 if not a ghost",
    "pf_obj.irr": "virtual time since the access before this one (LIRS's inter-reference recency: small "
                  "for objects reused quickly); for an object back from the ghost history, since its last "
                  "access before that eviction; 0 on a first insertion",
    "pf_obj.dfreq": "accesses with exponential decay, computed at this access: 1 + its previous value "
                    "halved every n_objs requests since the previous access (kept through the ghost "
                    "history); 1 on a first insertion. Frequency that forgets old popularity",
    "pf_obj.sketch": "estimated accesses over about the last 10 x cache_size requests, this one included, from "
                     "a count-min sketch over every object seen (TinyLFU's): unlike count and dfreq it remembers "
                     "objects long after the ghost history forgot them; 1 to 255, may overestimate",
    "pf_obj.total": "accesses over every residency that the ghost history connects: count plus the total it had "
                    "when it was last evicted, if it is back from the ghost history; count otherwise",
    "pf_ctx.now": "the current virtual time (requests so far)",
    "pf_ctx.n_objs": "objects in the cache, not counting this one (0 at the first insertion)",
    "pf_ctx.cache_size": "capacity, in objects (or bytes when sizes count)",
    "pf_ctx.count_p50": "median count over cached objects (from a sample, refreshed every few thousand "
                        "requests; this and the other percentiles and ghost_hits are 0 before the first refresh)",
    "pf_ctx.count_p90": "90th percentile of count over cached objects",
    "pf_ctx.age_p50": "median idle time over cached objects, idle time = now - last_access",
    "pf_ctx.age_p90": "90th percentile of that idle time",
    "pf_ctx.size_p50": "median size over cached objects",
    "pf_ctx.size_p90": "90th percentile of size over cached objects",
    "pf_ctx.ghost_hits": "share of recent misses that were ghost hits (0..1): high when the cache evicts too early",
    "pf_ctx.once": "share of cached objects accessed only once so far (count == 1), 0..1: high under "
                   "scans and one-hit wonders",
}
PRIORITY2_DOC = (
    "With two orders (-o orders=2): a second priority, computed at the same moments from the same "
    "inputs. The cache then keeps two orders, and each eviction draws which order's lowest object "
    "goes, by weights the template learns as LeCaR and Cacheus do: a miss on an object in the ghost "
    "history lowers the weight of the order that evicted it. Two different views (say recency in "
    "priority(), frequency in priority2()) let the cache switch between them as the workload changes, "
    "which one static order cannot.")
PARAMS = (Param("obj", "const struct pf_obj *", "pf_obj"), Param("ctx", "const struct pf_ctx *", "pf_ctx"))


def _grammar(orders: int) -> Grammar:
    functions = (Function("priority", "double", PARAMS, doc=PRIORITY_DOC),)
    if orders == 2:
        functions += (Function("priority2", "double", PARAMS, doc=PRIORITY2_DOC),)
    return Grammar(language="c", file="policy.c", functions=functions,
                   calls=HELPERS_DOUBLE + math_calls(cxx=False),
                   structs={"pf_obj": OBJ_FIELDS, "pf_ctx": CTX_FIELDS}, types=SCALAR_C,
                   purpose="priority() runs on every access and must take constant time", fields=CACHE_FIELDS)


GRAMMAR = _grammar(1)
GRAMMAR2 = _grammar(2)
# what the compiled priority() may call: the math functions of the allowlist, as libm names
LIBM = {c.name for c in math_calls(cxx=False)} | {"log1p", "fabs"}
CFLAGS = ["-O2", "-Wall", "-Werror", "-fPIC"]


def feature_flags(reads: dict[str, set[str]], orders: int = 1) -> int:
    """PF_FEATURES for the template from the fields priority() reads (the checker's list):
    1 = ghost history (irr, dfreq and total carry through it), 2 = percentile statistics, 4 = decayed
    frequency, 8 = the frequency sketch; 16 = two orders (which learn from the ghost history)."""
    fields = reads.get("pf_obj", set()) | reads.get("pf_ctx", set())
    flags = 17 if orders == 2 else 0
    if fields & {"ghost_count", "ghost_age", "ghost_gap", "ghost_hits", "irr", "dfreq", "total"}:
        flags |= 1
    if "dfreq" in fields:
        flags |= 4
    if "sketch" in fields:
        flags |= 8
    if any(f.endswith(("_p50", "_p90")) for f in fields):
        flags |= 2
    return flags


# name in reports -> pf-cachesim algorithm: every eviction algorithm of the bundled libCacheSim
# that needs no extra library (3L-Cache, LRB and GLCache need LightGBM or XGBoost), each checked
# against the stock libcachesim package in tests/cache/test_baselines.py. CLOCK is libCacheSim's
# clock; FIFO-Reinsertion (CLOCK with one bit, as libCacheSim names it) is listed apart.
RANKED = {"LRU": "lru", "LFU": "lfu", "FIFO": "fifo", "MRU": "mru", "LIRS": "lirs",
          "CLOCK": "clock", "CR-LFU": "cr-lfu", "SR-LRU": "sr-lru", "GDSF": "gdsf",
          "SIEVE": "sieve", "S3-FIFO": "s3-fifo", "LHD": "lhd", "LeCaR": "lecar", "Cacheus": "cacheus",
          "ARC": "arc", "TinyLFU": "tinylfu", "FIFO-Reinsertion": "fifo-reinsertion",
          "Clock2Q+": "clock2qplus", "ClockPro": "clockpro", "2Q": "twoq", "QD-LP": "qdlp", "CAR": "car",
          "MQ": "mq", "SLRU": "slru", "LFUDA": "lfuda"}
CORE14 = ["LRU", "LFU", "FIFO", "MRU", "LIRS", "CLOCK", "CR-LFU", "SR-LRU", "GDSF", "SIEVE", "S3-FIFO",
          "LHD", "LeCaR", "Cacheus"]
FEATURES = {
    "count": "obj->count", "last_access": "obj->last_access", "insert_time": "obj->insert_time",
    "size": "obj->size", "ghost_count": "obj->ghost_count", "ghost_age": "obj->ghost_age",
    "ghost_gap": "obj->ghost_gap", "freq": "obj->count + obj->ghost_count", "now": "ctx->now", "age": "ctx->now - obj->insert_time",
    "n_objs": "ctx->n_objs", "cache_size": "ctx->cache_size",
    "count_p50": "ctx->count_p50", "count_p90": "ctx->count_p90",
    "age_p50": "ctx->age_p50", "age_p90": "ctx->age_p90",
    "size_p50": "ctx->size_p50", "size_p90": "ctx->size_p90", "ghost_hits": "ctx->ghost_hits",
    "irr": "obj->irr", "dfreq": "obj->dfreq", "once": "ctx->once", "sketch": "obj->sketch", "total": "obj->total",
}
NEW_FEATURES = ("irr", "dfreq", "once", "sketch", "total")   # -o vocabulary=classic leaves them out (ablations)



def cachesim_csv_params(spec: str) -> str:
    """Our csv column spec (pf-cachesim --csv) in the words of cachesim's -t option."""
    keys = {"time": "time-col", "obj_id": "obj-id-col", "obj_size": "obj-size-col",
            "header": "has-header", "obj_id_is_num": "obj-id-is-num"}
    delimiters = {"comma": ",", "tab": "\\t", "space": " "}
    out = []
    for item in spec.split(","):
        key, _, value = item.partition("=")
        if key == "delimiter":
            out.append(f"delimiter={delimiters.get(value, value)}")
        else:
            out.append(f"{keys.get(key, key)}={value}")
    return ", ".join(out)


_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
# libCacheSim's log lines: "[ERROR] 12-05-2026 00:15:17 reader.c:155  (tid=1403...): message"
_LOG_PREFIX = re.compile(r"^\[(ERROR|WARN|INFO|DEBUG|VERBOSE)\]\s+\S+\s+\S+\s+\S+\s+\(tid=\d+\):\s*")


def tool_message(stderr: str, fallback: str) -> str:
    """One line for the user from a native tool's stderr: libCacheSim colours its log lines
    with ANSI escapes (the colour's reset lands on the next line, so the last line alone is
    often just an escape) and prefixes them with a date, file and thread. The last line that
    says something, an ERROR line first, without any of that."""
    lines = []
    for raw in _ANSI.sub("", stderr).splitlines():
        line = "".join(c for c in raw if c == "\t" or c >= " ").strip()
        if line:
            lines.append((line.startswith("[ERROR]"), _LOG_PREFIX.sub("", line)))
    errors = [text for is_error, text in lines if is_error]
    last = errors[-1] if errors else (lines[-1][1] if lines else "")
    return last or fallback


def _csv_list(text: str) -> list[float]:
    return [float(x) for x in str(text).split(",") if x.strip()]




class CacheTask(Task):
    name = "cache"
    title = "cache eviction policies for libCacheSim"
    language = "c"
    score_label = "hit ratio (1 - miss ratio)"
    grammar = GRAMMAR
    supports_transfer = True
    options = [
        Option("trace", "demo", "sample (cloudPhysicsIO, twitter_cluster52), synthetic "
               "(demo, zipf, scan-loop, shifting, one-hit; params as zipf:alpha=1.0) or a path"),
        Option("trace_type", "", "oracleGeneral | csv | lcs | txt | vscsi (default from the name)"),
        Option("csv", "", "csv columns, e.g. obj_id=2,time=1,obj_size=3,header=1,delimiter=comma"),
        Option("cache_size", "0.1", "cache sizes as fractions of the footprint (comma list)"),
        Option("byte_miss", False, "score byte miss ratio and use object sizes", boolean),
        Option("screen", 1_000_000, "traces longer than this many requests are screened on a "
               "prefix of that length first (0: never)", number(int, min=0)),
        Option("screen_slack", 0.005, "in a screen, a candidate whose hit ratio on the prefix is more than this "
                                      "below the best so far's (moved onto the prefix by the best baseline's "
                                      "prefix-to-whole difference) stops there; 1: only the floor at 97 % of LRU",
               number(min=0, max=1)),
        Option("timeout_s", 60.0, "wall-clock limit of one simulation", number(above=0)),
        Option("baselines", "", "comma list of baselines (default: all)"),
        Option("seeds", "", "comma list of seed policies to start from (default all: lru, lfu, fifo, two-class, "
                            "lirs-like, lrfu-like, tinylfu-like; with -o orders=2 also lecar-like)"),
        Option("vocabulary", "all", "features the offline generator builds from: all, or classic (without "
                                    "irr, dfreq, once, sketch and total; for ablations)"),
        Option("orders", 1, "priority orders: 1, or 2 (the candidate writes priority2() too, and each eviction "
                            "draws which order's lowest object goes, by weights learned from ghost hits: LeCaR's "
                            "and Cacheus's idea)", number(int, min=1, max=2)),
        Option("check_trace", True, "refuse a trace that does not look like one (timestamps mostly "
               "going back, sizes mostly 0, wrong next-access times)", boolean),
    ]

    def __init__(self, **values: Any):
        super().__init__(**values)
        try:
            self.sizes_frac = _csv_list(self.opts["cache_size"])
        except ValueError:
            raise TaskError(f"bad cache_size {self.opts['cache_size']!r}: expected fractions like 0.01,0.1") from None
        if not self.sizes_frac or any(not 0 < f < 1 for f in self.sizes_frac):
            raise TaskError(f"cache_size fractions must lie in (0, 1): {self.opts['cache_size']}")
        if self.opts["vocabulary"] not in ("all", "classic"):
            raise TaskError(f"bad vocabulary {self.opts['vocabulary']!r}: all or classic")
        self.grammar = GRAMMAR2 if self.opts["orders"] == 2 else GRAMMAR
        self.seeds()                                    # an unknown seed name: refused now
        self.trace: traces.Trace | None = None          # what candidates run on (no oracle data)
        self.original_trace: traces.Trace | None = None
        self.oracle_trace: traces.Trace | None = None   # for Belady only
        self._screen: tuple[traces.Trace, float, float | None] | None = None   # prefix, floor, LRU offset
        self._screen_lock = threading.Lock()
        self._screen_ready = False
        self._best_baseline: str | None = None    # the libCacheSim algorithm of the best ranked baseline
        self.belady: dict | None = None                  # Belady's result, when it applies
        self.shared: Path | None = None   # the run's shared directory, once prepared
        self._template: str | None = None
        self._objects: dict[int, Path] = {}  # PF_FEATURES -> the template's machinery, compiled
        self._macro_names: frozenset[str] | None = None

    # --- generator-facing ---------------------------------------------------------------
    @property
    def shown_label(self) -> str:     # the field's language: miss ratio, lower is better
        return ("byte miss ratio" if self.opts["byte_miss"] else "miss ratio") + " (lower is better)"

    def shown(self, score: float) -> float:
        return 1.0 - score

    def holes(self) -> list[Hole]:
        features = dict(FEATURES)
        if self.opts["vocabulary"] == "classic":
            for k in NEW_FEATURES:
                features.pop(k)
        if not self.opts["byte_miss"]:  # every size is 1: size features carry nothing
            for k in ("size", "size_p50", "size_p90"):
                features.pop(k)
        constants = (0.5, 1.0, 2.0, 10.0, 100.0, 1000.0, 1e4, 1e5)
        return [Hole(f.name, f.signature, features, doc=f.doc, constants=constants) for f in self.grammar.functions]

    # the behaviour cells of the offline search's archive: which kinds of knowledge a priority uses
    FEATURE_GROUPS = {"recency": ("last_access", "now", "age", "insert_time"),
                      "frequency": ("count", "freq", "dfreq", "sketch", "total"),
                      "ghost": ("ghost_count", "ghost_age", "ghost_gap", "ghost_hits"),
                      "reuse": ("irr",),
                      "statistics": ("n_objs", "count_p50", "count_p90", "age_p50", "age_p90", "size_p50",
                                     "size_p90", "once", "size")}

    def behaviour(self, genome: dict[str, str]) -> str:
        used = set(super().behaviour(genome).split("+"))
        return "+".join(g for g, names in self.FEATURE_GROUPS.items() if used & set(names)) or "constant"

    def describe(self) -> str:
        sizes = "bytes" if self.opts["byte_miss"] else "objects (sizes are ignored: every object counts 1)"
        return ("A cache holds a fixed number of " + sizes + ". The template (inside libCacheSim) keeps the "
                "cached objects ordered by a priority that you compute, and evicts the object of lowest "
                "priority. It also keeps a ghost history of recently evicted objects and cache-wide "
                "statistics, which priority() can read. " +
                ("It keeps a second order too, by priority2(), and each eviction draws which order's lowest "
                 "object goes, by weights learned from ghost hits. " if self.opts["orders"] == 2 else "") +
                f"The score is the hit ratio (1 - miss ratio) on the trace '{self.opts['trace']}' at "
                f"{self.opts['cache_size']} of its footprint (distinct objects); higher is better. Times are "
                "virtual: the index of the request.\n\n")

    def seeds(self) -> list[Seed]:
        # the classic policies, inside the template: LRU, LFU, FIFO; a two-class LRU whose
        # protected class is what was used twice or came back from the ghost history (the idea
        # of S3-FIFO, 2Q, ARC); LIRS's ordering by the last inter-reference gap; recency plus a
        # decayed frequency (LRFU-like); the two classes again, split by the long-memory frequency
        # sketch instead of the ghost history (TinyLFU's admission test, expressed as a priority)
        seeds = [Seed("lru", {"priority": "last_access"}),
                 Seed("lfu", {"priority": "count"}),
                 Seed("fifo", {"priority": "insert_time"}),
                 Seed("two-class", {"priority": "(add last_access (ifgt freq 1.5 (mul 4.0 cache_size) 0.0))"}),
                 Seed("lirs-like", {"priority": "(sub last_access (ifgt irr 0.0 irr (mul 2.0 cache_size)))"}),
                 Seed("lrfu-like", {"priority": "(add last_access (mul (mul 4.0 cache_size) (log dfreq)))"}),
                 Seed("tinylfu-like", {"priority": "(add last_access (ifgt sketch 1.5 (mul 4.0 cache_size) 0.0))"})]
        if self.opts["orders"] == 2:
            # two orders: each one-order seed with itself as its second order (it evicts as alone, with
            # the two orders' longer ghost history where it reads one), and LeCaR's pair as Cacheus uses it: recency, and the fewest accesses over the
            # residencies the ghost history connects, the newest of those first (CR-LFU's
            # churn resistance)
            seeds = [Seed(x.name, {"priority": x.genome["priority"], "priority2": x.genome["priority"]})
                     for x in seeds]
            seeds.append(Seed("lecar-like", {"priority": "last_access",
                                             "priority2": "(sub (mul total 1e9) last_access)"}))
        chosen = [s.strip() for s in self.opts["seeds"].split(",") if s.strip()]
        if not chosen:
            return seeds
        unknown = [n for n in chosen if n not in {s.name for s in seeds}]
        if unknown:
            raise TaskError(f"unknown seed(s) {', '.join(unknown)}; known: {', '.join(s.name for s in seeds)}")
        return [s for s in seeds if s.name in chosen]

    # --- workload -----------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.shared = Path(workdir).resolve()
        original = traces.resolve(self.opts["trace"], self.opts["trace_type"] or None,
                                  self.opts["csv"] or None, workdir)
        # candidates (and, to be compared alike, the ranked baselines) run on a copy without
        # next-access times: the oracle's data never reaches a candidate's process
        self.original_trace = original
        # before libCacheSim reads the whole file: a trace that is not one (random bytes, a csv
        # column that does not exist) would score every policy anyway, on noise
        label = self.opts["trace"]
        plausible = traces.check_original(original)
        self._refuse_implausible(label, original, plausible.problems)
        # Belady reads the next-access times: only when they are there and right
        self.oracle_trace = original if original.type == "oracleGeneral" and plausible.next_access else None
        self.trace = self._stripped(original, workdir)
        fp = self._footprint(self.trace, workdir)
        # an uncompressed oracleGeneral original's timestamps were checked above (a sample over
        # the whole file, as here): they are the copy's
        problems = traces.check_copy(self.trace.path, fp["n_obj"], label,
                                     timestamps=original.type != "oracleGeneral" or original.path.suffix == ".zst")
        self._refuse_implausible(label, original, problems)
        self.n_req = fp["n_req"]
        self.n_obj = fp["n_obj"]
        self.first_bytes, self.req_bytes = fp["bytes"], fp["req_bytes"]
        self.footprint = fp["bytes"] if self.opts["byte_miss"] else fp["n_obj"]
        self.sizes = [max(1, int(f * self.footprint)) for f in self.sizes_frac]
        self._screen, self._screen_ready = None, False
        self.belady = self._belady(workdir)

    def _refuse_implausible(self, label: str, trace: traces.Trace, problems: list[str]) -> None:
        if problems and self.opts["check_trace"]:
            raise TaskError(f"trace {label} is not plausible as {trace.type}: {'; '.join(problems)}; "
                            "-o check_trace=0 uses it anyway")

    def _screen_prefix(self) -> tuple[traces.Trace, float, float | None] | None:
        """The screen (traces longer than -o screen requests): the first `screen` requests of
        the candidates' copy, the fixed floor a candidate must reach on them (97 % of LRU's hit
        ratio there, at the first cache size: the size a candidate is screened at), and the
        best ranked baseline's hit ratio on the prefix minus that on the whole trace. That
        difference moves a whole-trace score onto the prefix: a prefix starts cold, and by how
        much depends on the policy (on demo's first 10 %: LRU -0.023, CAR -0.037, the search's
        top 50 -0.038), so it is taken from the strongest known policy. None (no raised floor)
        with several sizes (the score is then a mean the prefix does not measure) or before
        this process ran the baselines. Made when a search first screens, not in prepare():
        `eval` and `transfer` never screen."""
        with self._screen_lock:
            if not self._screen_ready:
                self._screen_ready = True
                n = self.opts["screen"]
                prefix = traces.prefix(self.trace, n, self.shared) if self.n_req > n > 0 else None
                if prefix is not None:
                    lru = self._simulate(prefix, ["--algo", "lru"], self.sizes[:1], trusted=True)
                    if "error" not in lru:       # no floor, no screen: candidates run in full
                        self._screen = (prefix, 0.97 * self._hit_ratio(lru), self._prefix_offset(prefix))
            return self._screen

    def _prefix_offset(self, prefix: traces.Trace) -> float | None:
        if len(self.sizes) != 1 or self._best_baseline is None:
            return None
        algo = ["--algo", self._best_baseline]
        on_prefix = self._simulate(prefix, algo, self.sizes, trusted=True)
        whole = self._simulate(self.trace, algo, self.sizes, trusted=True)
        if "error" in on_prefix or "error" in whole:
            return None
        return self._hit_ratio(on_prefix) - self._hit_ratio(whole)

    def screen_floor(self, best_so_far: float | None) -> float | None:
        """The hit ratio a candidate must reach on the prefix: the fixed floor, raised to the
        best so far's whole-trace score moved onto the prefix (plus the best baseline's
        prefix-to-whole difference) less -o screen_slack. A multi-fidelity screen: the prefix costs
        screen / n_req of a whole run, and a candidate far behind the best there is not run
        in full. Deterministic: the best so far is the best of the earlier rounds."""
        screen = self._screen_prefix() if best_so_far is not None else None
        if screen is None:
            return None
        _, floor, offset = screen
        if offset is not None and self.opts["screen_slack"] < 1:
            floor = max(floor, best_so_far + offset - self.opts["screen_slack"])
        return floor

    def _cached_json(self, trace: traces.Trace, workdir: Path, what: str, compute) -> dict:
        """A trusted result about a trace, kept in the run's directory (never beside the user's
        trace), keyed by the file's identity."""
        st = trace.path.stat()
        cache = workdir / "traces" / f"{trace.path.name}.{st.st_size}.{st.st_mtime_ns}.{what}.json"
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
        result = compute()
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(result))
        except OSError:
            pass  # cannot write the cache: recompute next time
        return result

    def _stripped(self, trace: traces.Trace, workdir: Path) -> traces.Trace:
        """The trace as oracleGeneral records with next_access_vtime = -1 (pf-cachesim --convert,
        libCacheSim's own reader): the copy every candidate runs on."""
        st = trace.path.stat()
        out = workdir / "traces" / f"{trace.path.name}.{st.st_size}.{st.st_mtime_ns}.candidate.oracleGeneral.bin"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            # trusted: libCacheSim's reader on the user's own file, no candidate code
            r = self._trusted([str(native_path("bin", "pf-cachesim")), *trace.args(), "--convert", str(tmp)], 1800)
            if not r.ok:
                tmp.unlink(missing_ok=True)
                raise TaskError(f"cannot read trace {trace.path}: {tool_message(r.stderr, r.reason)}")
            if tmp.stat().st_size == 0:     # the reader skips requests of size 0
                tmp.unlink()
                raise TaskError(f"trace {trace.path} holds no request libCacheSim reads (it skips requests of size 0)")
            tmp.replace(out)
        return traces.Trace(out, "oracleGeneral", None, trace.name)

    def _footprint(self, trace: traces.Trace, workdir: Path) -> dict:
        def compute() -> dict:
            args = [str(native_path("bin", "pf-cachesim")), *trace.args(), "--footprint"]
            if not self.opts["byte_miss"]:
                args.append("--unit")
            r = sandbox.run(args, ro=[trace.path.parent], timeout_s=600, mem_mb=8192)
            if not r.ok:
                raise TaskError(f"cannot read trace {trace.path}: {tool_message(r.stderr, r.reason)}")
            fp = json.loads(r.stdout)
            if fp["n_req"] == 0:
                raise TaskError(f"trace {trace.path} holds no request")
            return fp
        return self._cached_json(trace, workdir, f"footprint{'-bytes' if self.opts['byte_miss'] else ''}", compute)

    def _belady(self, workdir: Path) -> dict | None:
        """Belady's result on the original trace (the oracle reads next-access times) at the
        task's sizes, once per trace, sizes and size mode: the bound the reports show, and for
        object miss ratios a floor no policy's count may go below. None without next-access times."""
        if self.oracle_trace is None:
            return None

        def compute() -> dict:
            r = self._simulate(self.oracle_trace, ["--algo", "belady"], trusted=True)
            if "error" in r:
                raise TaskError(f"Belady's bound on {self.oracle_trace.path}: {r['error']}")
            return r
        key = hashlib.sha256(f"{self.sizes} {self.opts['byte_miss']}".encode()).hexdigest()[:8]
        return self._cached_json(self.oracle_trace, workdir, f"belady-{key}", compute)

    def _simulate_command(self, trace: traces.Trace, algo_args: list[str],
                          sizes: list[int] | None = None) -> list[str]:
        """pf-cachesim on `trace` with `algo_args` (--algo NAME or --plugin SO) at `sizes`"""
        sizes = sizes or self.sizes
        args = [str(native_path("bin", "pf-cachesim")), *trace.args(), *algo_args,
                "--sizes", ",".join(map(str, sizes)), "--hashpower", str(self._hashpower(sizes))]
        if not self.opts["byte_miss"]:
            args.append("--unit")
        return args

    @staticmethod
    def _trusted(args: list[str], timeout_s: float) -> sandbox.SandboxResult:
        """libCacheSim's own code on the user's own trace (converting it, Belady on it): no
        candidate runs here, and the user's file may sit where a sandbox uid cannot read it."""
        t0 = time.monotonic()
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return sandbox.SandboxResult(None, "", "", timeout_s, True, f"timeout after {timeout_s:g} s")
        reason = "" if r.returncode == 0 else f"exit status {r.returncode}"
        return sandbox.SandboxResult(r.returncode, r.stdout, r.stderr, time.monotonic() - t0, False, reason)

    def _simulate(self, trace: traces.Trace, algo_args: list[str], sizes: list[int] | None = None,
                  rw: list[Path] = (), trusted: bool = False) -> dict:
        args = self._simulate_command(trace, algo_args, sizes)
        ro = [trace.path.parent] + list({Path(a).parent for a in algo_args if a.endswith(".so")})
        if trusted:
            r = self._trusted(args, self.opts["timeout_s"])
        else:
            r = sandbox.run(args, timeout_s=self.opts["timeout_s"], mem_mb=4096, max_procs=16, ro=ro, rw=rw)
        if not r.ok:
            tail = tool_message(r.stderr, "")
            return {"error": r.reason + (f": {tail}" if tail else "")}
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"error": "invalid: the simulator printed no result"}

    def _hashpower(self, sizes: list[int]) -> int:
        """libCacheSim's hash table sized to the cache (it grows by itself when needed): a
        table far larger than the cache costs page faults and cache misses, not accuracy."""
        objects = max(sizes) if not self.opts["byte_miss"] else max(self.sizes_frac) * self.n_obj
        return min(24, max(12, math.ceil(math.log2(max(objects, 1))) + 1))

    def _hit_ratio(self, result: dict) -> float:
        key = "byte_miss_ratio" if self.opts["byte_miss"] else "miss_ratio"
        rs = result["results"]
        return 1.0 - sum(x[key] for x in rs) / len(rs)

    def _implausible(self, result: dict, sizes: list[int], n_req: int, full: bool) -> str:
        """Why the counts a simulation printed cannot be true ('' when they can). The process
        that printed them ran the candidate, so they are a claim until checked here."""
        rs = result.get("results")
        if not isinstance(rs, list) or len(rs) != len(sizes):
            return "the simulator's result does not list every cache size"
        for x, size in zip(rs, sizes):
            try:
                c = {k: int(x[k]) for k in ("cache_size", "n_req", "n_miss", "n_req_byte", "n_miss_byte")}
            except (KeyError, TypeError, ValueError):
                return "the simulator's result lacks its counts"
            if any(x[k] != c[k] for k in c):
                return "the simulator's counts are not integers"
            if c["cache_size"] != size:
                return f"a result for cache size {c['cache_size']} where {size} was simulated"
            if c["n_req"] != n_req:
                return f"{c['n_req']} requests counted at size {size}; the trace holds {n_req}"
            if not 0 <= c["n_miss"] <= c["n_req"] or not 0 <= c["n_miss_byte"] <= c["n_req_byte"]:
                return f"more misses than requests, or fewer than none, at size {size}"
            if full:
                want_bytes = n_req if not self.opts["byte_miss"] else self.req_bytes
                if c["n_req_byte"] != want_bytes:
                    return f"{c['n_req_byte']} requested bytes counted at size {size}; the trace holds {want_bytes}"
                if c["n_miss"] < self.n_obj or (self.opts["byte_miss"] and c["n_miss_byte"] < self.first_bytes):
                    return (f"{c['n_miss']} misses at size {size}, fewer than the {self.n_obj} first requests "
                            "that no cache can hit")
                bound = (self.belady["results"][self.sizes.index(size)]["n_miss"]
                         if self.belady and not self.opts["byte_miss"] and size in self.sizes else None)
                if bound is not None and c["n_miss"] < bound:
                    return (f"{c['n_miss']} misses at size {size}, fewer than Belady's optimum ({bound}), "
                            "which no online policy can beat")
        return ""

    def _evaluation(self, result: dict, stage: str = "full", trusted: bool = False) -> Evaluation:
        """Metrics from a simulation's counts; a candidate's counts are checked first."""
        if "error" in result:
            return Evaluation(False, None, reason=result["error"], stage=stage)
        screen = stage == "screen"
        sizes = self.sizes[:1] if screen else self.sizes
        if not trusted:
            n_req = self.opts["screen"] if screen else self.n_req
            problem = self._implausible(result, sizes, n_req, full=not screen)
            if problem:
                return Evaluation(False, None, reason=f"invalid: {problem}", stage=stage)
        rs = result["results"]
        if self.opts["byte_miss"]:
            ratios = [x["n_miss_byte"] / x["n_req_byte"] if x["n_req_byte"] else 0.0 for x in rs]
        else:
            ratios = [x["n_miss"] / x["n_req"] if x["n_req"] else 0.0 for x in rs]
        miss = sum(ratios) / len(ratios)
        metrics = {"miss_ratio": miss, "req_per_s": result.get("req_per_s"), "sim_seconds": result.get("seconds"),
                   "n_miss": [int(x["n_miss"]) for x in rs], "n_miss_byte": [int(x["n_miss_byte"]) for x in rs]}
        for frac, r in zip(self.sizes_frac, ratios):
            metrics[f"miss_ratio@{frac:g}"] = r
        return Evaluation(True, 1.0 - miss, metrics, stage=stage, seconds=result.get("seconds") or 0.0)

    # --- check --------------------------------------------------------------------------
    def _policy_header(self) -> Path:
        return TEMPLATE().dir / POLICY_HEADER

    def _single_file(self, flags: int) -> str:
        """The template with its own headers (the policy ABI and the machinery's parts)
        inlined: one self-contained file for a stock libCacheSim."""
        text = self._template_text(flags)
        for name in re.findall(r'^#include "(pf_cache_\w+\.h)"$', text, re.M):
            text = text.replace(f'#include "{name}"\n', (TEMPLATE().dir / name).read_text(), 1)
        return text

    def full_source(self, checked: str, flags: int = 3, name: str = "policyforge_cache.c") -> str:
        """The exported plugin: the single file with the checked priority() in the hole (its
        #line markers name policy.c; the file's own numbering resumes after it)."""
        return TEMPLATE().splice(checked, self._single_file(flags), name)

    def _template_text(self, flags: int) -> str:
        """The template for a priority() that reads the features in `flags`: it compiles in
        the ghost history and the percentile statistics only when priority() can read them
        (the checker allows no other way in than the field names)."""
        if self._template is None:
            self._template = TEMPLATE().text()
        return self._template.replace(FEATURES_MARK, f"#define PF_FEATURES {flags}", 1)

    def _include_dirs(self) -> list[Path]:
        return [native_dir() / "include", self._policy_header().parent]

    def _macros(self, workdir: Path) -> frozenset[str]:
        """Macros where priority() compiles: in the export that is below the whole template's
        head (libCacheSim's headers), so a local may not take any of their names."""
        if self._macro_names is None:
            head = self._single_file(3)
            self._macro_names = template_macros(TEMPLATE().head(head), "c", self._include_dirs(),
                                                (self.shared or workdir) / "template")
        return self._macro_names

    def machinery(self, flags: int, workdir: Path) -> Path:
        """The template's machinery as a shared library (the pluginCache hooks, with priority()
        left undefined), built once per feature set (PF_FEATURES) in the run's shared directory.
        A candidate is compiled into a library of its own, preloaded where the machinery runs
        (pf-cachesim --preload): it never needs to know the features read to be built. The
        name carries a hash of the template, so an updated template is never used stale."""
        if flags in self._objects and self._objects[flags].exists():
            return self._objects[flags]
        text = self._template_text(flags)
        # keyed by the whole machinery (its headers included), so an edited part is never used stale
        key = hashlib.sha256(f"{self._single_file(flags)}\0{native_dir()}".encode()).hexdigest()[:16]
        home = (self.shared or workdir) / "template"
        lib = home / f"pq_template-{key}.so"
        if lib.exists():
            self._objects[flags] = lib
            return lib
        home.mkdir(parents=True, exist_ok=True)
        # workers (threads here, processes elsewhere) may build it at once: each in its own
        # temporary directory, then an atomic rename
        with tempfile.TemporaryDirectory(prefix=".pq_template-", dir=home) as tmp:
            (Path(tmp) / "pq_template.c").write_text(text)
            r = build([("compile", ["gcc", *CFLAGS, *self._includes(), "-shared", "pq_template.c", "-o",
                                    "pq_template.so", "-lm"])], Path(tmp), ro=self._include_dirs())
            if r.failed:
                raise TaskError(f"the cache template does not compile: {(r.stderr or r.reason).strip()[:300]}")
            (Path(tmp) / "pq_template.so").replace(lib)
        self._objects[flags] = lib
        return lib

    def plugin_args(self, check: CheckOutcome) -> list[str]:
        """pf-cachesim's arguments for a checked candidate: the machinery its features need, and
        its own library preloaded (or, for a whole plugin such as an export, the plugin)."""
        if "machinery" not in check.info:
            return ["--plugin", str(check.artifact)]
        return ["--plugin", str(check.info["machinery"]), "--preload", str(check.artifact)]

    def _includes(self) -> list[str]:
        return [f"-I{d}" for d in self._include_dirs()]

    def check(self, source: str, workdir: Path) -> CheckOutcome:
        t0 = time.monotonic()
        workdir = Path(workdir).resolve()  # tools below run with cwd=workdir
        workdir.mkdir(parents=True, exist_ok=True)

        def failed(stage: str, feedback: str) -> CheckOutcome:
            return CheckOutcome(False, stage, feedback, seconds=time.monotonic() - t0)
        # the candidate's unit: the policy header and exactly the checked text, compiled into a
        # library of its own (linked by ld itself: its libm calls resolve in the process that
        # loads it, which has libm; the gcc driver would add ~8 ms a candidate)
        (workdir / "unit.c").write_text(f'#include "{POLICY_HEADER}"\n#include "{PREPROCESSED}"\n')
        try:
            checked = pipeline(source, self.grammar, workdir, [
                ("compile", ["gcc", "-pipe", *CFLAGS, *self._includes(), "-c", "unit.c", "-o", "unit.o"]),
                ("link", ["ld", "-shared", "unit.o", "-o", "priority.so"])],
                audit=("unit.o", LIBM, {f.name for f in self.grammar.functions}), macros=self._macros(workdir),
                ro=self._include_dirs())
        except StageFailed as e:
            if self.opts["orders"] == 1 and "defining 'priority2' is not allowed" in e.feedback:
                return failed(e.stage, e.feedback + "\n(priority2() is the second order of -o orders=2)")
            return failed(e.stage, e.feedback)
        flags = feature_flags(checked.reads, self.opts["orders"])
        check = CheckOutcome(True, "ok", "", workdir / "priority.so", checked_source=checked.text,
                             info={"features": flags, "machinery": self.machinery(flags, workdir)})
        probe = sandbox.run([str(native_path("bin", "pf-cache-probe")), str(check.info["machinery"]),
                             str(check.artifact)], timeout_s=10, mem_mb=1024, max_procs=4, cwd=workdir,
                            ro=[workdir, check.info["machinery"].parent])
        if not probe.ok:
            return failed("probe", probe.stdout.strip() or f"probe: {probe.reason}")
        check.seconds = time.monotonic() - t0
        return check

    # --- evaluate -----------------------------------------------------------------------
    def _need_prepared(self) -> None:
        if self.trace is None:
            raise TaskError("the cache task was not prepared (internal error)")

    def evaluate(self, check: CheckOutcome, workdir: Path, best_so_far: float | None = None) -> Evaluation:
        """The hit ratio on the whole trace. Only a search screens (its controller passes the
        best score so far; None in its first round, and from `eval` and `transfer`, which
        always report the whole trace): on a trace longer than -o screen, a candidate below
        the floor on the prefix returns with stage "screen" and the prefix's score."""
        self._need_prepared()
        t0 = time.monotonic()
        plugin = self.plugin_args(check)
        floor = self.screen_floor(best_so_far)
        if floor is not None:
            prefix = self._screen[0]
            screen = self._evaluation(self._simulate(prefix, plugin, self.sizes[:1]), "screen")
            if not screen.ok:
                return screen
            if screen.score < floor:
                screen.reason = (f"screened out: hit ratio {screen.score:.4f} on the first {self.opts['screen']} "
                                 f"requests is below the screen {floor:.4f}")
                screen.seconds = time.monotonic() - t0
                return screen
        ev = self._evaluation(self._simulate(self.trace, plugin))
        ev.seconds = time.monotonic() - t0
        return ev

    def verify(self, check: CheckOutcome, workdir: Path, evaluation: Evaluation) -> Evaluation:
        """Recount a result from the candidate's own decisions, in code it did not run in: the
        simulation runs again (a second process: a different count means it is not
        deterministic) and logs every victim; pf-cache-replay replays the trace against those
        victims and counts hits and misses itself."""
        self._need_prepared()
        t0 = time.monotonic()
        vdir = Path(tempfile.mkdtemp(prefix="verify-", dir=Path(workdir).resolve()))
        try:
            log = vdir / "evictions"
            again = self._simulate(self.trace, [*self.plugin_args(check), "--eviction-log", str(log)], rw=[vdir])
            second = self._evaluation(again)
            if not second.ok:
                return self._invalid(evaluation, f"the second run failed: {second.reason}", t0)
            for key in ("n_miss", "n_miss_byte"):
                if second.metrics[key] != evaluation.metrics.get(key):
                    return self._invalid(evaluation, f"not deterministic: {evaluation.metrics.get(key)} then "
                                                     f"{second.metrics[key]} {key.replace('n_', '')}es", t0)
            args = [str(native_path("bin", "pf-cache-replay")), "--trace", str(self.trace.path), "--type",
                    "oracleGeneral", "--sizes", ",".join(map(str, self.sizes)),
                    "--logs", ",".join(f"{log}.{i}" for i in range(len(self.sizes)))]
            if not self.opts["byte_miss"]:
                args.append("--unit")
            r = sandbox.run(args, ro=[self.trace.path.parent, vdir], timeout_s=max(60.0, 4 * self.opts["timeout_s"]),
                            mem_mb=4096)
            try:
                replay = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                replay = {"error": r.reason or "the replay printed no result"}
            if "error" in replay:
                return self._invalid(evaluation, f"its evictions do not replay: {replay['error']}", t0)
            recount = self._evaluation(replay, trusted=True)
            for key in ("n_miss", "n_miss_byte"):
                if recount.metrics[key] != evaluation.metrics[key]:
                    return self._invalid(evaluation, f"forged result: the simulator claimed {evaluation.metrics[key]} "
                                                     f"{key.replace('n_', '')}es, its own evictions give "
                                                     f"{recount.metrics[key]}", t0)
            return Evaluation(True, recount.score, {**evaluation.metrics, "verified": "replay of its evictions"},
                              stage=evaluation.stage, seconds=evaluation.seconds + time.monotonic() - t0)
        finally:
            shutil.rmtree(vdir, ignore_errors=True)

    @staticmethod
    def _invalid(evaluation: Evaluation, why: str, t0: float) -> Evaluation:
        return Evaluation(False, None, evaluation.metrics, reason=f"invalid: {why}", stage=evaluation.stage,
                          seconds=evaluation.seconds + time.monotonic() - t0)

    def baselines(self, workdir: Path) -> list[Baseline]:
        self._need_prepared()
        names = [n.strip() for n in self.opts["baselines"].split(",") if n.strip()] or list(RANKED)
        unknown = [n for n in names if n not in RANKED and n != "Belady"]
        if unknown:
            raise TaskError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(RANKED)}, Belady")
        jobs = [(n, RANKED[n], True) for n in names if n in RANKED]

        def run(job):
            name, algo, ranked = job
            return Baseline(name, self._evaluation(self._simulate(self.trace, ["--algo", algo]), trusted=True), ranked)

        with ThreadPoolExecutor(2) as pool:
            out = list(pool.map(run, jobs))
        scored = [b for b in out if b.evaluation.ok]
        if scored:              # the screen's reference (_prefix_offset)
            self._best_baseline = RANKED[max(scored, key=lambda b: b.evaluation.score).name]
        if self.belady is not None:   # computed once in prepare(), on the original trace
            out.append(Baseline("Belady", self._evaluation(self.belady, trusted=True), ranked=False))
        return out

    CURVE_FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)

    def curves(self, check: CheckOutcome, baselines: list[str]) -> dict[str, Any] | None:
        """Miss-ratio curves: the winner and `baselines` at several cache sizes, each one
        simulation with every size (libCacheSim runs the sizes in one pass over the trace)."""
        self._need_prepared()
        fracs = [f for f in self.CURVE_FRACTIONS]
        sizes = [max(1, int(f * self.footprint)) for f in fracs]
        key = "byte_miss_ratio" if self.opts["byte_miss"] else "miss_ratio"
        series: dict[str, list[float | None]] = {}
        runs = [("winner", self.plugin_args(check))] + [(n, ["--algo", RANKED[n]]) for n in baselines if n in RANKED]
        for name, args in runs:
            out = self._simulate(self.trace, args, sizes=sizes)
            if "error" in out:
                continue
            by_size = {r["cache_size"]: r for r in out["results"]}
            series[name] = [by_size[s][key] if s in by_size else None for s in sizes]
        return {"x_label": "cache size (fraction of the footprint)", "x": fracs, "log_x": True,
                "y_label": ("byte " if self.opts["byte_miss"] else "") + "miss ratio", "series": series}

    # --- deploy -------------------------------------------------------------------------
    def export(self, source: str, check: CheckOutcome, out_dir: Path) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        so = out_dir / "policyforge_cache.so"
        c = out_dir / "policyforge_cache.c"
        c.write_text(self.full_source(check.checked_source, check.info.get("features", 7)))
        with tempfile.TemporaryDirectory(prefix="pf-cache-export-") as tmp:   # one plugin, built from that file
            shutil.copy(c, Path(tmp) / c.name)
            r = build([("compile", ["gcc", *CFLAGS, *self._includes(), "-shared", c.name, "-o", so.name, "-lm"])],
                      Path(tmp), ro=self._include_dirs())
            if r.failed:
                raise TaskError(f"the exported plugin does not compile: {(r.stderr or r.reason).strip()[:300]}")
            shutil.copy(Path(tmp) / so.name, so)
        (out_dir / "priority.c").write_text(source)
        trace = self.original_trace if self.trace else None
        size = self.sizes[0] if self.trace else "SIZE"
        ttype = trace.type if trace else "oracleGeneral"
        ignore = "" if self.opts["byte_miss"] else " --ignore-obj-size 1"
        csv = f' -t "{cachesim_csv_params(trace.csv_spec)}"' if trace and trace.csv_spec else ""
        try:        # the stock cachesim this build of policyforge carries: the line runs as pasted
            cachesim = shlex.quote(str(native_path("bin", "cachesim")))
        except TaskError:
            cachesim = "cachesim"
        usage = (
            f"{cachesim} {shlex.quote(str(trace.path)) if trace else 'TRACE'} {ttype} pluginCache {size}"
            f" -e plugin_path={shlex.quote(str(so.resolve()))}{ignore}{csv} --print-head-req false\n"
            f"# the same in any libCacheSim build (libCacheSim/bin/cachesim); rebuild the plugin with:\n"
            f"#   gcc -O2 -shared -fPIC -I<libCacheSim>/libCacheSim/include {c.name} -o {so.name} -lm\n"
            f"# policyforge's driver: pf-cachesim --trace ... --plugin {so.resolve()} --sizes {size}"
            + (" --unit" if not self.opts["byte_miss"] else ""))
        (out_dir / "USAGE.txt").write_text(usage + "\n")
        return {"files": [str(so), str(c), str(out_dir / "priority.c")], "usage": usage}

    # --- transfer -----------------------------------------------------------------------
    def transfer(self, source: str, traces_dir: Path, workdir: Path) -> dict[str, Any]:
        """One policy on every trace in a directory: on how many it beats every ranked
        baseline, and its mean gap to Belady."""
        files = sorted(p for p in traces_dir.iterdir() if p.is_file() and not p.name.endswith(".json"))
        if not files:
            raise TaskError(f"no trace files in {traces_dir}")
        check = self.check(source, workdir / "check")
        if not check.ok:
            raise TaskError(f"the policy fails the {check.stage} check: {check.feedback.splitlines()[0]}")
        rows, skipped = [], []
        for f in files:
            sub = CacheTask(**{**self.opts, "trace": str(f)})
            try:
                sub.prepare(workdir / "shared")
            except TaskError as e:      # not a trace (a README, a corrupt file): say so, go on
                skipped.append({"trace": f.name, "error": str(e)})
                continue
            ev = sub.evaluate(check, workdir)   # no best score: the whole trace, never a screen
            base = sub.baselines(workdir)
            ranked = [b for b in base if b.ranked and b.evaluation.ok and b.name in CORE14]
            best_base = max(ranked, key=lambda b: b.evaluation.score)
            belady = next((b for b in base if b.name == "Belady" and b.evaluation.ok), None)
            rows.append({"trace": f.name, "hit_ratio": ev.score, "best_baseline": best_base.name,
                         "best_baseline_hit_ratio": best_base.evaluation.score,
                         "beats_all": ev.ok and ev.score > best_base.evaluation.score,
                         "gap_to_belady": (belady.evaluation.score - ev.score) if belady and ev.ok else None})
            if not ev.ok:
                rows[-1]["error"] = ev.reason
        if not rows:
            raise TaskError(f"no usable trace in {traces_dir} ({skipped[0]['error']})")
        wins = sum(r["beats_all"] for r in rows)
        gaps = [r["gap_to_belady"] for r in rows if r["gap_to_belady"] is not None]
        lines = [f"{'trace':<40} {'policy':>8} {'best baseline':>22} {'beats all':>9}"]
        for r in rows:
            score = "failed" if r["hit_ratio"] is None else format(r["hit_ratio"], ".4f")
            lines.append(f"{r['trace']:<40} {score:>8} {r['best_baseline'] + ' ' + format(r['best_baseline_hit_ratio'], '.4f'):>22} "
                         f"{'yes' if r['beats_all'] else 'no':>9}")
        for r in skipped:
            lines.append(f"{r['trace']:<40} skipped: {r['error']}")
        lines.append(f"\nbeats all 14 baselines on {wins} of {len(rows)} traces ({100 * wins / len(rows):.0f} %)"
                     + (f"; mean gap to Belady {sum(gaps) / len(gaps):.4f}" if gaps else "")
                     + (f"; {len(skipped)} file(s) skipped" if skipped else ""))
        return {"traces": rows, "skipped": skipped, "wins": wins, "n": len(rows), "text": "\n".join(lines)}
