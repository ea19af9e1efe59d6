"""The cache-eviction task: a priority() for libCacheSim's priority-queue template.

check:    static rules -> gcc -Wall -Werror -O2 into a pluginCache .so -> semantic probe
evaluate: libCacheSim (pf-cachesim) on the trace, at the cache sizes, in the sandbox;
          a prefix screen first on large traces
score:    hit ratio = 1 - miss ratio (object, or byte with -o byte_miss=1), mean over sizes
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ... import sandbox
from ...native import native_dir, native_path
from ...search.expr import ExprHole
from ...checks import check_source
from ...task import Baseline, CheckOutcome, Evaluation, Option, Seed, Task, TaskError
from . import traces

HOLE_MARK = "/* PF_POLICY_HOLE */"
FEATURES_MARK = "/* PF_FEATURES */"


def feature_flags(source: str) -> int:
    """PF_FEATURES for the template: 1 = ghost history, 2 = percentile statistics."""
    flags = 0
    if re.search(r"ghost_(count|age|gap|hits)", source):
        flags |= 1
    if re.search(r"_p(50|90)", source):
        flags |= 2
    return flags


# name in reports -> pf-cachesim algorithm
RANKED = {"LRU": "lru", "LFU": "lfu", "FIFO": "fifo", "MRU": "mru", "LIRS": "lirs",
          "CLOCK": "fifo-reinsertion", "CR-LFU": "cr-lfu", "SR-LRU": "sr-lru", "GDSF": "gdsf",
          "SIEVE": "sieve", "S3-FIFO": "s3-fifo", "LHD": "lhd", "LeCaR": "lecar", "Cacheus": "cacheus",
          "ARC": "arc", "TinyLFU": "tinylfu"}
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
}
FEATURE_DOC = (
    "priority() runs on insertion and on every hit of an object; the object with the LOWEST "
    "priority is evicted (ties: the one whose priority was set earliest). Times are virtual "
    "(request counts). obj: count (accesses while cached, this one included), last_access, "
    "insert_time, size, ghost_count/ghost_age/ghost_gap (count and residency time at its last "
    "eviction and the time since, 0 when it was not recently evicted). ctx: now, n_objs, "
    "cache_size, p50/p90 percentiles of count, age (now - last_access) and size over cached "
    "objects, ghost_hits (fraction of recent misses that were ghost hits).")


PRIORITY_SIGNATURE = (r"\bdouble\s+priority\s*\(\s*const\s+struct\s+pf_obj\s*\*\s*\w+\s*,"
                      r"\s*const\s+struct\s+pf_ctx\s*\*\s*\w+\s*\)\s*\{")


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


def _csv_list(text: str) -> list[float]:
    return [float(x) for x in str(text).split(",") if x.strip()]


def _bool(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


class CacheTask(Task):
    name = "cache"
    title = "cache eviction policies for libCacheSim"
    language = "c"
    score_label = "hit ratio (1 - miss ratio)"
    options = [
        Option("trace", "demo", "sample (cloudPhysicsIO, twitter_cluster52), synthetic "
               "(demo, zipf, scan-loop, shifting, one-hit; params as zipf:alpha=1.0) or a path"),
        Option("trace_type", "", "oracleGeneral | csv | lcs | txt | vscsi (default from the name)"),
        Option("csv", "", "csv columns, e.g. obj_id=2,time=1,obj_size=3,header=1,delimiter=comma"),
        Option("cache_size", "0.1", "cache sizes as fractions of the footprint (comma list)"),
        Option("byte_miss", False, "score byte miss ratio and use object sizes", _bool),
        Option("screen", 1_000_000, "traces longer than this many requests are screened on a "
               "prefix of that length first", int),
        Option("timeout_s", 60.0, "wall-clock limit of one simulation", float),
        Option("baselines", "", "comma list of baselines (default: all)"),
    ]

    def __init__(self, **values: Any):
        super().__init__(**values)
        try:
            self.sizes_frac = _csv_list(self.opts["cache_size"])
        except ValueError:
            raise TaskError(f"bad cache_size {self.opts['cache_size']!r}: expected fractions like 0.01,0.1") from None
        if not self.sizes_frac or any(not 0 < f < 1 for f in self.sizes_frac):
            raise TaskError(f"cache_size fractions must lie in (0, 1): {self.opts['cache_size']}")
        self.trace: traces.Trace | None = None
        self.screen_trace: traces.Trace | None = None
        self.shared: Path | None = None   # the run's shared directory, once prepared
        self._template: str | None = None
        self._objects: dict[int, Path] = {}  # PF_FEATURES -> the template's machinery, compiled

    # --- generator-facing ---------------------------------------------------------------
    def holes(self) -> list[ExprHole]:
        features = dict(FEATURES)
        if not self.opts["byte_miss"]:  # every size is 1: size features carry nothing
            for k in ("size", "size_p50", "size_p90"):
                features.pop(k)
        return [ExprHole("priority", "double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)",
                         features, doc=FEATURE_DOC,
                         constants=(0.5, 1.0, 2.0, 10.0, 100.0, 1000.0, 1e4, 1e5))]

    def describe(self) -> str:
        return ("A cache holds a fixed number of objects (or bytes). The template keeps cached objects "
                "in a min-heap by priority and evicts the minimum. You write the priority. "
                + FEATURE_DOC + " Rules: one function, double arithmetic, no loops, no state, no "
                "includes; allowed calls: pf_div(a,b) (0 when b==0), pf_min, pf_max, pf_log(x)=log(1+|x|), "
                "and <math.h> functions (log, sqrt, exp, fabs, pow, fmin, fmax, floor, ceil). "
                f"The score is the hit ratio on the trace '{self.opts['trace']}' at "
                f"{self.opts['cache_size']} of its footprint.")

    def seeds(self) -> list[Seed]:
        return [Seed("lru", {"priority": "last_access"}),
                Seed("lfu", {"priority": "count"}),
                Seed("fifo", {"priority": "insert_time"})]

    # --- workload -----------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.shared = Path(workdir).resolve()
        self.trace = traces.resolve(self.opts["trace"], self.opts["trace_type"] or None,
                                    self.opts["csv"] or None, workdir)
        fp = self._footprint(self.trace, workdir)
        self.n_req = fp["n_req"]
        self.n_obj = fp["n_obj"]
        self.footprint = fp["bytes"] if self.opts["byte_miss"] else fp["n_obj"]
        self.sizes = [max(1, int(f * self.footprint)) for f in self.sizes_frac]
        self.screen_trace = None
        if self.n_req > self.opts["screen"] > 0:
            self.screen_trace = traces.prefix(self.trace, self.opts["screen"], workdir)
        if self.screen_trace is not None:
            lru = self._simulate(self.screen_trace, ["--algo", "lru"])
            self.screen_floor = 0.97 * self._hit_ratio(lru)

    def _footprint(self, trace: traces.Trace, workdir: Path) -> dict:
        # cached in the run's directory, never beside the user's trace; keyed by the file's identity
        st = trace.path.stat()
        cache = workdir / "traces" / (f"{trace.path.name}.{st.st_size}.{st.st_mtime_ns}"
                                      f".footprint{'-bytes' if self.opts['byte_miss'] else ''}.json")
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
        args = [str(native_path("bin", "pf-cachesim")), *trace.args(), "--footprint"]
        if not self.opts["byte_miss"]:
            args.append("--unit")
        r = sandbox.run(args, timeout_s=600, mem_mb=8192)
        if not r.ok:
            raise TaskError(f"cannot read trace {trace.path}: {(r.stderr.strip().splitlines() or [r.reason])[-1]}")
        fp = json.loads(r.stdout)
        if fp["n_req"] == 0:
            raise TaskError(f"trace {trace.path} holds no request")
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(fp))
        except OSError:
            pass  # cannot write the cache: recompute next time
        return fp

    def _simulate_command(self, trace: traces.Trace, algo_args: list[str],
                          sizes: list[int] | None = None) -> list[str]:
        """pf-cachesim on `trace` with `algo_args` (--algo NAME or --plugin SO) at `sizes`"""
        sizes = sizes or self.sizes
        args = [str(native_path("bin", "pf-cachesim")), *trace.args(), *algo_args,
                "--sizes", ",".join(map(str, sizes)), "--hashpower", str(self._hashpower(sizes))]
        if not self.opts["byte_miss"]:
            args.append("--unit")
        return args

    def _simulate(self, trace: traces.Trace, algo_args: list[str], sizes: list[int] | None = None) -> dict:
        args = self._simulate_command(trace, algo_args, sizes)
        r = sandbox.run(args, timeout_s=self.opts["timeout_s"], mem_mb=4096, max_procs=16)
        if not r.ok:
            tail = (r.stderr.strip().splitlines() or [""])[-1]
            return {"error": r.reason + (f": {tail}" if tail else "")}
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"error": "the simulator printed no result"}

    def _hashpower(self, sizes: list[int]) -> int:
        """libCacheSim's hash table sized to the cache (it grows by itself when needed): a
        table far larger than the cache costs page faults and cache misses, not accuracy."""
        objects = max(sizes) if not self.opts["byte_miss"] else max(self.sizes_frac) * self.n_obj
        return min(24, max(12, math.ceil(math.log2(max(objects, 1))) + 1))

    def _hit_ratio(self, result: dict) -> float:
        key = "byte_miss_ratio" if self.opts["byte_miss"] else "miss_ratio"
        rs = result["results"]
        return 1.0 - sum(x[key] for x in rs) / len(rs)

    def _evaluation(self, result: dict, stage: str = "full") -> Evaluation:
        if "error" in result:
            return Evaluation(False, None, reason=result["error"], stage=stage)
        key = "byte_miss_ratio" if self.opts["byte_miss"] else "miss_ratio"
        metrics = {"miss_ratio": sum(x[key] for x in result["results"]) / len(result["results"]),
                   "req_per_s": result["req_per_s"], "sim_seconds": result["seconds"]}
        for frac, x in zip(self.sizes_frac, result["results"]):
            metrics[f"miss_ratio@{frac:g}"] = x[key]
        return Evaluation(True, self._hit_ratio(result), metrics, stage=stage, seconds=result["seconds"])

    # --- check --------------------------------------------------------------------------
    def full_source(self, source: str) -> str:
        template = self._template_text(feature_flags(source))
        n = template[: template.index(HOLE_MARK)].count("\n") + 1
        # #line keeps compiler messages in the candidate's own line numbers
        return template.replace(HOLE_MARK, f'#line 1 "policy.c"\n{source}\n#line {n + 1} "pq_template.c"')

    def _template_text(self, flags: int) -> str:
        """The template for a priority() that reads the features in `flags`: it compiles in
        the ghost history and the percentile statistics only when priority() can read them
        (the checker allows no other way in than the field names)."""
        if self._template is None:
            template = (native_dir() / "share" / "cache" / "pq_template.c").read_text()
            if HOLE_MARK not in template:
                raise TaskError("the installed cache template has no policy hole: rebuild with `make build`")
            self._template = template
        return self._template.replace(FEATURES_MARK, f"#define PF_FEATURES {flags}", 1)

    def _template_object(self, flags: int, workdir: Path) -> Path:
        """The template's machinery compiled once per feature set (PF_FEATURES) and kept in
        the run's shared directory: a candidate then compiles only its own priority() and
        links (~0.1 s instead of ~0.35 s for the whole template). The name carries a hash of
        the template, so an updated template is never linked against an old object."""
        if flags in self._objects and self._objects[flags].exists():
            return self._objects[flags]
        text = self._template_text(flags)
        key = hashlib.sha256(f"{text}\0{native_dir()}".encode()).hexdigest()[:16]
        home = (self.shared or workdir) / "template"
        obj = home / f"pq_template-{key}.o"
        if obj.exists():
            self._objects[flags] = obj
            return obj
        home.mkdir(parents=True, exist_ok=True)
        # workers (threads here, processes elsewhere) may build it at once: each in its own
        # temporary directory, then an atomic rename
        with tempfile.TemporaryDirectory(prefix=".pq_template-", dir=home) as tmp:
            src = Path(tmp) / "pq_template.c"
            src.write_text(text)
            r = self._gcc(["-c", str(src), "-o", "pq_template.o"], Path(tmp))
            if r.returncode != 0:
                raise TaskError(f"the cache template does not compile: {r.stderr.strip()[:300]}")
            (Path(tmp) / "pq_template.o").replace(obj)
        self._objects[flags] = obj
        return obj

    @staticmethod
    def _gcc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        cmd = ["gcc", "-O2", "-Wall", "-Werror", "-fPIC", f"-I{native_dir() / 'include'}", *args]
        try:
            return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120,
                                  env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
        except FileNotFoundError:
            raise TaskError("gcc is not installed (make deps)") from None
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", "gcc took longer than 120 s")

    def check(self, source: str, workdir: Path) -> CheckOutcome:
        t0 = time.monotonic()
        workdir = Path(workdir).resolve()  # tools below run with cwd=workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "policy.c").write_text(source)
        errs = check_source(source, "priority", signature=PRIORITY_SIGNATURE)
        if errs:
            return CheckOutcome(False, "static", "\n".join(errs), seconds=time.monotonic() - t0)
        # the candidate's unit: the template's part above the hole (what priority() may use),
        # then the candidate; linked with the prebuilt machinery into one plugin .so.
        # export() writes the same code as one C file (full_source) for a stock build.
        flags = feature_flags(source)
        template = self._template_text(flags)
        head = template[: template.index(HOLE_MARK)]
        (workdir / "cache_policy.c").write_text(f'{head}\n#line 1 "policy.c"\n{source}\n')
        r = self._gcc(["-shared", "cache_policy.c", str(self._template_object(flags, workdir)),
                       "-o", "policy.so", "-lm"], workdir)
        if r.returncode != 0:
            return CheckOutcome(False, "compile", r.stderr, seconds=time.monotonic() - t0)
        probe = sandbox.run([str(native_path("bin", "pf-cache-probe")), str(workdir / "policy.so")],
                            timeout_s=10, mem_mb=1024, max_procs=4, cwd=workdir)
        if not probe.ok:
            text = probe.stdout.strip() or f"probe: {probe.reason}"
            return CheckOutcome(False, "probe", text, seconds=time.monotonic() - t0)
        return CheckOutcome(True, "ok", "", workdir / "policy.so", seconds=time.monotonic() - t0)

    # --- evaluate -----------------------------------------------------------------------
    def _need_prepared(self) -> None:
        if self.trace is None:
            raise TaskError("the cache task was not prepared (internal error)")

    def evaluate(self, check: CheckOutcome, workdir: Path, best_so_far: float | None = None) -> Evaluation:
        self._need_prepared()
        t0 = time.monotonic()
        plugin = ["--plugin", str(check.artifact)]
        if self.screen_trace is not None:
            screen = self._evaluation(self._simulate(self.screen_trace, plugin, self.sizes[:1]), "screen")
            if not screen.ok:
                return screen
            if screen.score < self.screen_floor:
                screen.reason = f"hit ratio {screen.score:.4f} on the prefix is below the screen {self.screen_floor:.4f}"
                screen.seconds = time.monotonic() - t0
                return screen
        ev = self._evaluation(self._simulate(self.trace, plugin))
        ev.seconds = time.monotonic() - t0
        return ev

    def baselines(self, workdir: Path) -> list[Baseline]:
        self._need_prepared()
        names = [n.strip() for n in self.opts["baselines"].split(",") if n.strip()] or list(RANKED)
        unknown = [n for n in names if n not in RANKED and n != "Belady"]
        if unknown:
            raise TaskError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(RANKED)}, Belady")
        jobs = [(n, RANKED[n], True) for n in names if n in RANKED]
        if self.trace.type == "oracleGeneral":  # Belady needs next-access times
            jobs.append(("Belady", "belady", False))

        def run(job):
            name, algo, ranked = job
            return Baseline(name, self._evaluation(self._simulate(self.trace, ["--algo", algo])), ranked)

        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(run, jobs))

    # --- deploy -------------------------------------------------------------------------
    def export(self, source: str, check: CheckOutcome, out_dir: Path) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        so = out_dir / "policyforge_cache.so"
        c = out_dir / "policyforge_cache.c"
        shutil.copy(check.artifact, so)
        c.write_text(self.full_source(source))
        (out_dir / "priority.c").write_text(source)
        trace = self.trace
        size = self.sizes[0] if self.trace else "SIZE"
        ttype = {"oracleGeneral": "oracleGeneral"}.get(trace.type, trace.type) if trace else "oracleGeneral"
        ignore = "" if self.opts["byte_miss"] else " --ignore-obj-size 1"
        csv = f' -t "{cachesim_csv_params(trace.csv_spec)}"' if trace and trace.csv_spec else ""
        usage = (
            f"cachesim {trace.path if trace else 'TRACE'} {ttype} pluginCache {size}"
            f" -e plugin_path={so.resolve()}{ignore}{csv}\n"
            f"# in any libCacheSim build (libCacheSim/bin/cachesim); rebuild the plugin with:\n"
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
        rows = []
        for f in files:
            sub = CacheTask(**{**self.opts, "trace": str(f)})
            sub.prepare(workdir / "shared")
            ev = sub.evaluate(check, workdir)
            base = sub.baselines(workdir)
            ranked = [b for b in base if b.ranked and b.evaluation.ok and b.name in CORE14]
            best_base = max(ranked, key=lambda b: b.evaluation.score)
            belady = next((b for b in base if b.name == "Belady" and b.evaluation.ok), None)
            rows.append({"trace": f.name, "hit_ratio": ev.score, "best_baseline": best_base.name,
                         "best_baseline_hit_ratio": best_base.evaluation.score,
                         "beats_all": ev.ok and ev.score > best_base.evaluation.score,
                         "gap_to_belady": (belady.evaluation.score - ev.score) if belady and ev.ok else None})
        wins = sum(r["beats_all"] for r in rows)
        gaps = [r["gap_to_belady"] for r in rows if r["gap_to_belady"] is not None]
        lines = [f"{'trace':<40} {'policy':>8} {'best baseline':>22} {'beats all':>9}"]
        for r in rows:
            lines.append(f"{r['trace']:<40} {r['hit_ratio']:>8.4f} {r['best_baseline'] + ' ' + format(r['best_baseline_hit_ratio'], '.4f'):>22} "
                         f"{'yes' if r['beats_all'] else 'no':>9}")
        lines.append(f"\nbeats all 14 baselines on {wins} of {len(rows)} traces ({100 * wins / len(rows):.0f} %)"
                     + (f"; mean gap to Belady {sum(gaps) / len(gaps):.4f}" if gaps else ""))
        return {"traces": rows, "wins": wins, "n": len(rows), "text": "\n".join(lines)}
