"""Traces for the cache task: libCacheSim's sample traces, user files, and deterministic
synthetic workloads written as oracleGeneral files.

oracleGeneral record (libCacheSim): packed little-endian
    {u32 timestamp; u64 obj_id; u32 obj_size; i64 next_access_vtime}
next_access_vtime is the 1-based index of the object's next request, -1 if none (Belady
reads it).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import inspect
import io
import math
import os
import re
from pathlib import Path

import numpy as np

from ...native import native_dir
from ...task import TaskError

RECORD = np.dtype([("ts", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])
SAMPLES = {
    "cloudPhysicsIO": ("cloudPhysicsIO.oracleGeneral.bin", "oracleGeneral", None),
    # "# time, object, size, next_access_vtime"; ids are 64-bit numbers
    "twitter_cluster52": ("twitter_cluster52_10m.csv.zst", "csv",
                          "time=1,obj_id=2,obj_size=3,header=1,delimiter=comma,obj_id_is_num=1"),
}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclasses.dataclass
class Trace:
    path: Path
    type: str                   # oracleGeneral | csv | lcs | txt | vscsi
    csv_spec: str | None = None
    name: str = ""

    def args(self) -> list[str]:
        a = ["--trace", str(self.path), "--type", self.type]
        if self.csv_spec:
            a += ["--csv", self.csv_spec]
        return a


# --- synthetic workloads ------------------------------------------------------------------
def _zipf_ids(rng: np.random.Generator, n_objs: int, alpha: float, n: int, base: int) -> np.ndarray:
    ranks = np.arange(1, n_objs + 1, dtype=np.float64)
    p = ranks ** -alpha
    p /= p.sum()
    perm = rng.permutation(n_objs)          # popularity is not correlated with id
    return base + perm[rng.choice(n_objs, size=n, p=p)]


def zipf(n_req=200_000, n_objs=50_000, alpha=0.9, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _zipf_ids(rng, n_objs, alpha, n_req, 1)


def scan_loop_mix(n_req=300_000, n_objs=40_000, alpha=0.8, loop_objs=8_000, scan_every=20_000,
                  scan_len=6_000, seed=2) -> np.ndarray:
    """Zipf background, a loop over `loop_objs` objects mixed in, and periodic scans of
    objects never seen again."""
    rng = np.random.default_rng(seed)
    ids = _zipf_ids(rng, n_objs, alpha, n_req, 1)
    loop_mask = rng.random(n_req) < 0.15
    loop_pos = np.cumsum(loop_mask) % loop_objs
    ids[loop_mask] = 10_000_000 + loop_pos[loop_mask]
    next_scan_id = 20_000_000
    for start in range(scan_every, n_req, scan_every):
        end = min(n_req, start + scan_len)
        ids[start:end] = np.arange(next_scan_id, next_scan_id + end - start)
        next_scan_id += end - start
    return ids


def shifting_hotset(n_req=300_000, n_objs=30_000, alpha=0.9, phases=6, shift=0.5, seed=3) -> np.ndarray:
    """Zipf over a hot set of which a fraction `shift` is replaced at each phase."""
    rng = np.random.default_rng(seed)
    hot = np.arange(1, n_objs + 1)
    next_id = n_objs + 1
    out = []
    per = n_req // phases
    for _ in range(phases):
        out.append(hot[_zipf_ids(rng, n_objs, alpha, per, 0)])
        k = int(shift * n_objs)
        idx = rng.choice(n_objs, size=k, replace=False)
        hot = hot.copy()
        hot[idx] = np.arange(next_id, next_id + k)
        next_id += k
    return np.concatenate(out)


def one_hit_wonders(n_req=200_000, n_objs=20_000, alpha=1.0, frac=0.5, seed=4) -> np.ndarray:
    """Zipf traffic with a fraction `frac` of requests to objects requested only once."""
    rng = np.random.default_rng(seed)
    ids = _zipf_ids(rng, n_objs, alpha, n_req, 1)
    mask = rng.random(n_req) < frac
    ids[mask] = 50_000_000 + np.arange(mask.sum())
    return ids


def demo(n_objs=40_000, alpha=0.9, onehit=0.2, drift=0.05, loop=0.0, loop_objs=7_000,
         phases=8, per_phase=50_000, seed=7) -> np.ndarray:
    """The `make demo` workload, web-like: Zipf popularity over a hot set that drifts slowly
    (a fraction `drift` of it is replaced each phase), a share `onehit` of requests to
    objects never seen again, and optionally a share `loop` cycling over `loop_objs`
    objects. Stale frequencies hurt LFU, one-hit wonders hurt LRU; knowing how often an
    object was used before its last eviction (the template's ghost history) pays."""
    rng = np.random.default_rng(seed)
    parts = []
    hot = np.arange(1, n_objs + 1)
    next_id = 10_000_000
    loop_ids = np.arange(5_000_000, 5_000_000 + loop_objs)
    loop_pos = 0
    for _ in range(phases):
        ids = hot[_zipf_ids(rng, hot.size, alpha, per_phase, 0)]
        oh = rng.random(per_phase) < onehit
        ids[oh] = next_id + np.arange(oh.sum())
        next_id += int(oh.sum())
        if loop > 0:
            lp = rng.random(per_phase) < loop
            k = int(lp.sum())
            ids[lp] = loop_ids[(loop_pos + np.arange(k)) % loop_objs]
            loop_pos += k
        parts.append(ids)
        idx = rng.choice(hot.size, size=int(drift * hot.size), replace=False)
        hot = hot.copy()
        hot[idx] = next_id + np.arange(idx.size)
        next_id += idx.size
    return np.concatenate(parts)


SYNTHETIC = {"demo": demo, "zipf": zipf, "scan-loop": scan_loop_mix, "shifting": shifting_hotset,
             "one-hit": one_hit_wonders}


def write_oracle_general(ids: np.ndarray, path: Path, sizes: np.ndarray | None = None) -> None:
    n = ids.size
    rec = np.zeros(n, dtype=RECORD)
    rec["ts"] = np.arange(n) // 100
    rec["id"] = ids
    rec["size"] = sizes if sizes is not None else 4096
    # next access (1-based index of the next request to the same id), -1 when none
    nxt = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((np.arange(n), ids))
    same = ids[order][1:] == ids[order][:-1]
    nxt[order[:-1][same]] = order[1:][same] + 1
    rec["next"] = nxt
    tmp = path.with_suffix(".tmp")
    rec.tofile(tmp)
    tmp.replace(path)


# Bounds of the generators' parameters, so a bad value is refused in one line instead of
# failing deep inside numpy (a traceback) or yielding an empty or meaningless trace. Sizes are
# capped at 10^8 requests or objects: the generators hold the whole trace in memory (~40 bytes
# a request while it is written).
_BIG = 100_000_000
_SYNTHETIC_BOUNDS: dict[str, tuple[type, float, float]] = {
    "n_req": (int, 1, _BIG), "n_objs": (int, 1, _BIG), "loop_objs": (int, 1, _BIG),
    "scan_every": (int, 1, _BIG), "scan_len": (int, 0, _BIG), "per_phase": (int, 1, _BIG),
    "phases": (int, 1, 10_000), "seed": (int, 0, 2**32 - 1),
    "alpha": (float, 0.0, math.inf),          # 0: uniform popularity; negative is not Zipf
    "shift": (float, 0.0, 1.0), "frac": (float, 0.0, 1.0), "onehit": (float, 0.0, 1.0),
    "drift": (float, 0.0, 1.0), "loop": (float, 0.0, 1.0),
}


def _synthetic_value(name: str, key: str, text: str, spec: str) -> int | float:
    kind, lo, hi = _SYNTHETIC_BOUNDS[key]
    try:
        v = float(text)
    except ValueError:
        raise TaskError(f"synthetic trace {name}: {key}={text!r} is not a number (in {spec!r})") from None
    if not math.isfinite(v):
        raise TaskError(f"synthetic trace {name}: {key}={text!r} must be a finite number")
    if kind is int:
        if not v.is_integer():
            raise TaskError(f"synthetic trace {name}: {key}={text!r} must be an integer")
        v = int(v)
    if not lo <= v <= hi:
        show = lambda x: f"{x:,}" if kind is int else f"{x:g}"     # noqa: E731
        bound = f"at least {show(lo)}" if hi == math.inf else f"between {show(lo)} and {show(hi)}"
        raise TaskError(f"synthetic trace {name}: {key}={text} must be {bound}")
    return v


def _parse_synthetic(spec: str) -> tuple[str, dict]:
    """`name:key=value,...` -> (name, checked keyword arguments of the generator)."""
    name, _, rest = spec.partition(":")
    sig = inspect.signature(SYNTHETIC[name]).parameters
    kw: dict = {}
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        k = k.strip()
        if not eq or not k:
            raise TaskError(f"bad synthetic trace parameter {item!r} in {spec!r}: expected key=value")
        if k not in sig:
            raise TaskError(f"unknown parameter {k!r} for synthetic trace {name}; its parameters: {', '.join(sig)}")
        kw[k] = _synthetic_value(name, k, v.strip(), spec)
    value = lambda k: kw.get(k, sig[k].default)     # noqa: E731
    # shifting splits n_req into phases: each needs a request, or the trace comes out empty
    if name == "shifting" and value("n_req") < value("phases"):
        raise TaskError(f"synthetic trace {name}: n_req={value('n_req')} is fewer than its {value('phases')} phases")
    if name == "demo" and value("phases") * value("per_phase") > _BIG:
        raise TaskError(f"synthetic trace {name}: phases x per_phase is {value('phases') * value('per_phase')} "
                        f"requests, more than {_BIG}")
    return name, kw


def synthesize(spec: str, out_dir: Path) -> Path:
    name, kw = _parse_synthetic(spec)
    gen = SYNTHETIC[name]
    tag = hashlib.sha256(spec.encode()).hexdigest()[:10]
    path = out_dir / f"synthetic-{name}-{tag}.oracleGeneral.bin"
    if not path.exists():
        try:
            ids = np.asarray(gen(**kw), dtype=np.uint64)
        except (TypeError, ValueError, MemoryError) as e:   # the bounds above should leave none
            raise TaskError(f"synthetic trace {spec}: {e}") from None
        if ids.size == 0:
            raise TaskError(f"synthetic trace {spec} has no request")
        out_dir.mkdir(parents=True, exist_ok=True)
        write_oracle_general(ids, path)
    return path


def validate(trace: Trace) -> None:
    """Cheap structural checks, so a malformed file fails with one clear line."""
    p = trace.path
    if p.is_dir():
        raise TaskError(f"trace {p} is a directory, not a trace file")
    if not p.exists():
        raise TaskError(f"trace {p} does not exist")
    if not p.is_file():
        raise TaskError(f"trace {p} is not a regular file")
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise TaskError(f"trace {p} cannot be read: {e.strerror or e}") from None
    size = p.stat().st_size
    if size == 0:
        raise TaskError(f"trace {p} is empty")
    if trace.type == "csv" and not trace.csv_spec:
        raise TaskError("a csv trace needs -o csv=\"obj_id=COL[,time=COL,obj_size=COL,header=1,delimiter=comma]\"")
    if trace.type == "csv":
        parse_csv_spec(trace.csv_spec)
    if p.suffix == ".zst":
        if head != ZSTD_MAGIC:
            raise TaskError(f"trace {p} ends in .zst but is not zstd-compressed")
        return
    if trace.type == "oracleGeneral" and size % RECORD.itemsize != 0:
        raise TaskError(f"trace {p} is not an oracleGeneral trace: {size} bytes is not a multiple "
                        f"of the {RECORD.itemsize}-byte record")


def decompressed_csv(trace: Trace, shared: Path) -> Trace:
    """libCacheSim reads zstd-compressed binary traces but only plain CSV: decompress a .csv.zst
    once into the run's shared directory."""
    out = shared / "traces" / trace.path.name[: -len(".zst")]
    if not out.exists():
        import zstandard
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        try:
            with open(trace.path, "rb") as src, open(tmp, "wb") as dst:
                zstandard.ZstdDecompressor().copy_stream(src, dst)
        except zstandard.ZstdError as e:
            tmp.unlink(missing_ok=True)
            raise TaskError(f"trace {trace.path}: cannot decompress: {e}") from None
        tmp.replace(out)
    return dataclasses.replace(trace, path=out)


def resolve(spec: str, trace_type: str | None, csv_spec: str | None, shared: Path) -> Trace:
    """`spec` is a sample name, a synthetic spec (`demo`, `zipf:alpha=1.0,n_req=100000`) or a path."""
    name = spec.partition(":")[0]
    if spec in SAMPLES:
        fname, ttype, spec_csv = SAMPLES[spec]
        t = Trace(native_dir() / "share" / "traces" / fname, ttype, spec_csv, spec)
    elif name in SYNTHETIC:
        t = Trace(synthesize(spec, shared / "traces"), "oracleGeneral", None, spec)
    else:
        p = Path(spec).expanduser().resolve()
        ttype = trace_type or ("csv" if ".csv" in p.name else "oracleGeneral")
        t = Trace(p, ttype, csv_spec, p.name)
        if not p.exists() and ":" in spec and "/" not in name:   # a mistyped synthetic name
            raise TaskError(f"trace {spec} is neither a file, a sample ({', '.join(SAMPLES)}) nor a "
                            f"synthetic trace ({', '.join(SYNTHETIC)})")
    validate(t)
    if t.type == "csv" and t.path.suffix == ".zst":
        t = decompressed_csv(t, shared)
    return t


def prefix(trace: Trace, n_req: int, shared: Path) -> Trace | None:
    """The first n_req requests as their own file, for cheap screens. `trace` is the candidates'
    copy (an uncompressed oracleGeneral file whatever the original's format or compression), so
    a .bin trace and its .bin.zst screen alike. None when the trace is not longer than that."""
    if trace.type != "oracleGeneral" or trace.path.suffix == ".zst":
        raise ValueError(f"prefix() needs an uncompressed oracleGeneral file, not {trace.path}")
    n = trace.path.stat().st_size // RECORD.itemsize
    if n <= n_req:
        return None
    out = shared / "traces" / f"prefix-{n_req}-{trace.path.name}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        rec = np.fromfile(trace.path, dtype=RECORD, count=n_req)
        rec["next"][rec["next"] > n_req] = -1
        tmp = out.with_name(out.name + ".tmp")
        rec.tofile(tmp)
        tmp.replace(out)
    return Trace(out, "oracleGeneral", None, f"{trace.name} (first {n_req})")


# --- plausibility -------------------------------------------------------------------------
# libCacheSim reads nearly any bytes as some trace: random bytes whose size is a multiple of 24
# are "oracleGeneral" records, a csv column that does not exist reads as the same value on
# every line, a column of words as zeros. Every policy then scores some number, and a search
# runs on noise. The checks below look at a bounded sample of a trace (a head of HEAD records
# and BLOCKS blocks of BLOCK records spread over the file, about 2 MB whatever its size) for
# what every real trace has. Tolerances, chosen to pass any real trace and fail garbage:
#   timestamps:  a step back between consecutive requests is counted on the 32-bit clock
#       modulo 2^32 (a 64-bit clock cut to oracleGeneral's 32 bits wraps, and still goes
#       forward). Random values go back on half the steps; a trace sorted by time, even with
#       requests reordered by logging or merged from several clocks, on far fewer. Timestamps
#       never enter a score (policies see virtual time), so the check only has to catch garbage:
#       more than a third of the steps going back fails it. Equal timestamps (a clock in
#       seconds) are not steps back.
#   sizes:  libCacheSim skips requests of size 0 (metadata, 304s in a web log): a few are
#       normal, but when more than half of the requests have size 0 the column is not a size
#       (or the file is mostly zeros), and most of the trace would be skipped unseen.
#   next_access_vtime (oracleGeneral):  libCacheSim's writers compute it exactly (the 1-based
#       index of the object's next request, -1 when none), so it is checked exactly, in the
#       head against the head's own requests and on a strided sample against the record it
#       points at; more than 5 % wrong fails (random bytes: ~100 %). A trace whose next-access
#       times are all -1 is plausible without them: it only has no Belady bound.
#   csv columns:  a column is missing, or not a number, on more than 1 % of the sampled lines
#       (and more than one line: an undeclared header reads as one odd request) -> an error.
# Timestamp, size and next-access problems are only implausible, so -o check_trace=0 skips
# them; a missing or non-numeric csv column and a trace with no repeated object (every policy
# scores 0: nothing can be ranked) are errors.
HEAD = 1 << 16
BLOCKS, BLOCK = 15, 1 << 12
SAMPLE = 4096                   # strided records whose next access is looked up
CSV_LINES = 2000
NO_NEXT = (-1, np.iinfo(np.int64).max)      # libCacheSim reads both as "no next access"
BACKWARD_MAX = 1 / 3
ZERO_SIZE_MAX = 1 / 2
NEXT_WRONG_MAX = 0.05
CSV_BAD_MAX = 0.01


@dataclasses.dataclass
class Plausibility:
    problems: list[str]             # what looks wrong (phrases for one line); empty: plausible
    next_access: bool = False       # oracleGeneral: next-access times present and consistent


def _sample(rec: np.ndarray) -> list[np.ndarray]:
    """The head and BLOCKS blocks spread over the rest, as arrays (a memmap reads only these)."""
    out = [np.asarray(rec[:HEAD])]
    n = rec.size
    if n > HEAD:
        for s in np.unique(np.linspace(HEAD, max(HEAD, n - BLOCK), BLOCKS).astype(np.int64)):
            out.append(np.asarray(rec[s:s + BLOCK]))
    return out


def _backward_share(blocks: list[np.ndarray]) -> float:
    back = steps = 0
    for b in blocks:
        d = np.diff(b["ts"].astype(np.int64))
        d = (d + (1 << 31)) % (1 << 32) - (1 << 31)    # steps of a 32-bit clock, modulo 2^32
        back += int((d < 0).sum())
        steps += d.size
    return back / steps if steps else 0.0


def _record_problems(blocks: list[np.ndarray], zero_sizes: bool) -> list[str]:
    problems = []
    back = _backward_share(blocks)
    if back > BACKWARD_MAX:
        problems.append(f"{back:.0%} of its timestamps go backwards")
    if zero_sizes:
        zero = sum(int((b["size"] == 0).sum()) for b in blocks) / sum(b.size for b in blocks)
        if zero > ZERO_SIZE_MAX:
            problems.append(f"{zero:.0%} of its requests have size 0 (libCacheSim skips them)")
    return problems


def _next_access_wrong(head: np.ndarray, n: int | None, rec: np.ndarray | None) -> float | None:
    """The share of sampled next_access_vtime fields that do not give the object's next request;
    None when the trace has none at all (every one -1). `rec`: the whole file (a memmap) when
    records beyond the head can be looked up, with `n` its length."""
    k = head.size
    ids, nxt = head["id"], head["next"]
    none = np.isin(nxt, NO_NEXT)
    pos = np.arange(1, k + 1)                   # 1-based, as next_access_vtime counts
    true = np.zeros(k, dtype=np.int64)          # the object's next request within the head; 0: none there
    order = np.lexsort((pos, ids))
    same = ids[order][1:] == ids[order][:-1]
    true[order[:-1][same]] = pos[order[1:][same]]
    wrong = np.where(none, true != 0,           # "never again", yet the head holds its next request
                     (nxt <= pos) | ((nxt <= k) & (nxt != true)) | ((nxt > k) & (true != 0)))
    if n is not None:
        wrong |= ~none & (nxt > n)
    present = not none.all()
    n_wrong, n_checked = int(wrong.sum()), k
    if rec is not None and n is not None:
        # a next access beyond the head must be a request to the same object
        far = np.nonzero(~wrong & ~none & (nxt > k))[0][:SAMPLE]
        n_wrong += int((rec["id"][nxt[far] - 1] != ids[far]).sum())
        # and a strided sample over the rest of the file, checked the same way
        if n > k:
            idx = np.unique(np.linspace(k, n - 1, SAMPLE).astype(np.int64))
            s = np.asarray(rec[idx])
            s_none = np.isin(s["next"], NO_NEXT)
            in_range = ~s_none & (s["next"] > idx + 1) & (s["next"] <= n)
            bad = ~s_none & ~in_range
            bad[in_range] |= rec["id"][s["next"][in_range] - 1] != s["id"][in_range]
            n_wrong += int(bad.sum())
            n_checked += idx.size
            present = present or not s_none.all()
    return n_wrong / n_checked if present else None


def _zst_head(path: Path, n_rec: int) -> tuple[np.ndarray, bool]:
    """The first n_rec records of a zstd-compressed oracleGeneral file, and whether that is all."""
    import zstandard
    want = n_rec * RECORD.itemsize
    buf = bytearray()
    try:
        with open(path, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as r:
            while len(buf) < want:
                chunk = r.read(want - len(buf))
                if not chunk:
                    break
                buf += chunk
    except zstandard.ZstdError as e:
        raise TaskError(f"trace {path}: cannot decompress: {e}") from None
    whole = len(buf) < want
    if whole and len(buf) % RECORD.itemsize:
        raise TaskError(f"trace {path} is not an oracleGeneral trace: {len(buf)} bytes decompressed is not a "
                        f"multiple of the {RECORD.itemsize}-byte record")
    return np.frombuffer(bytes(buf[: len(buf) - len(buf) % RECORD.itemsize]), dtype=RECORD), whole


def _check_oracle_general(trace: Trace) -> Plausibility:
    if trace.path.suffix == ".zst":     # libCacheSim reads it compressed: check its head only
        head, whole = _zst_head(trace.path, HEAD)
        blocks, n, rec = [head], (head.size if whole else None), None
    else:
        rec = np.memmap(trace.path, dtype=RECORD, mode="r")
        blocks, n = _sample(rec), rec.size
        head = blocks[0]
    problems = _record_problems(blocks, zero_sizes=True)
    wrong = _next_access_wrong(head, n, rec)
    if wrong is not None and wrong > NEXT_WRONG_MAX:
        problems.append(f"{wrong:.0%} of the sampled next_access_vtime fields do not give the object's next "
                        "request (not an oracleGeneral file?)")
    return Plausibility(problems, next_access=wrong is not None and wrong <= NEXT_WRONG_MAX)


# --- csv ----------------------------------------------------------------------------------
CSV_KEYS = ("time", "obj_id", "obj_size", "header", "obj_id_is_num", "delimiter")
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)\s*")


def parse_csv_spec(spec: str) -> dict:
    """-o csv=... as pf-cachesim reads it (its parse_csv_spec): 1-based columns, 0 = not given."""
    out: dict = {"time": 0, "obj_id": 0, "obj_size": 0, "header": False, "obj_id_is_num": False, "delimiter": ","}
    for item in filter(None, spec.split(",")):
        key, eq, value = (x.strip() for x in item.partition("="))
        if key not in CSV_KEYS or not eq:
            raise TaskError(f"bad item {item!r} in -o csv={spec}: expected KEY=VALUE, KEY one of {', '.join(CSV_KEYS)}")
        if key == "delimiter":
            if not value:
                raise TaskError(f"-o csv={spec}: delimiter needs a value (comma, tab, space or one character)")
            out[key] = {"tab": "\t", "space": " ", "comma": ","}.get(value, value[0])
            continue
        try:
            v = int(value)
        except ValueError:
            raise TaskError(f"-o csv={spec}: {key}={value!r} is not an integer") from None
        if key in ("header", "obj_id_is_num"):
            out[key] = v != 0
        elif v < 1:
            raise TaskError(f"-o csv={spec}: {key}={value} is not a column (columns count from 1)")
        else:
            out[key] = v
    if not out["obj_id"]:
        raise TaskError(f"-o csv={spec} names no obj_id column: add obj_id=COLUMN")
    return out


def _check_csv(trace: Trace) -> Plausibility:
    """The columns named in -o csv against the file's first lines: libCacheSim reads a column
    that does not exist, or a word where it expects a number, as 0 without a word of warning
    (or a WARN per line), and stops with abort() on a delimiter it does not find."""
    p, spec = trace.path, parse_csv_spec(trace.csv_spec or "")
    with open(p, "rb") as f:
        raw = f.read(1 << 20)
    control = sum(raw[:65536].count(bytes([c])) for c in range(32) if c not in (9, 10, 13))
    if b"\0" in raw[:65536] or control > 0.01 * min(len(raw), 65536):
        raise TaskError(f"trace {p} is not a text file, so not a csv (a binary trace? set -o trace_type)")
    lines = raw.decode("utf-8", errors="replace").split("\n")
    complete = len(raw) < (1 << 20)
    if not complete:
        lines = lines[:-1]                  # cut by the read
    delim = spec["delimiter"]
    shown = {"\t": "tab", " ": "space", ",": "comma"}.get(delim, repr(delim))
    if delim not in lines[0]:               # libCacheSim checks the first line only, then aborts
        raise TaskError(f"trace {p}: its first line has no {shown}, the csv delimiter "
                        f"(set delimiter=comma|tab|space|CHAR in -o csv)")
    numbered = [(i + 1, line.rstrip("\r")) for i, line in enumerate(lines)][1 if spec["header"] else 0:]
    numbered = [(i, line) for i, line in numbered if line.strip()][:CSV_LINES]
    if not numbered:
        raise TaskError(f"trace {p} has no data line")
    rows = list(csv.reader((line for _, line in numbered), delimiter=delim))
    tolerated = max(1, int(CSV_BAD_MAX * len(rows)))
    sizes = []
    for key in ("obj_id", "time", "obj_size"):
        col = spec[key]
        if not col:
            continue
        missing = [(n, len(r)) for (n, _), r in zip(numbered, rows) if len(r) < col]
        if len(missing) > tolerated:
            n, have = missing[0]
            raise TaskError(f"trace {p}: csv column {key}={col} does not exist (line {n} has {have} field"
                            f"{'s' if have != 1 else ''} separated by {shown})")
        if key == "obj_id" and not spec["obj_id_is_num"]:
            numeric = sum(1 for r in rows if len(r) >= col and _NUMBER.fullmatch(r[col - 1]))
            # libCacheSim stops (abort) after 20000 requests whose ids are >99 % numbers read as text
            est_lines = len(lines) if complete else p.stat().st_size * len(lines) / len(raw)
            if numeric > 0.99 * len(rows) and est_lines > 20_000:
                raise TaskError(f"trace {p}: csv column obj_id={col} holds numbers: add obj_id_is_num=1 to -o csv")
            continue
        bad = []
        for (n, _), r in zip(numbered, rows):
            if len(r) < col:
                continue
            field = r[col - 1]
            ok = _NUMBER.fullmatch(field) is not None
            if ok and key == "obj_size":
                v = float(int(field, 16)) if "x" in field.lower() else float(field)
                ok = v >= 0
                sizes.append(v)
            if not ok:
                bad.append((n, field))
        if len(bad) > tolerated:
            n, field = bad[0]
            what = "a size" if key == "obj_size" else "a number"
            raise TaskError(f"trace {p}: csv column {key}={col} is not {what} ({field.strip()[:40]!r} on line {n})")
    problems = []
    if sizes:
        zero = sum(1 for v in sizes if v < 1) / len(sizes)   # libCacheSim truncates: 0.5 -> 0
        if zero > ZERO_SIZE_MAX:
            problems.append(f"{zero:.0%} of its requests have size 0 (libCacheSim skips them)")
    return Plausibility(problems)


def check_original(trace: Trace) -> Plausibility:
    """Checks on the user's file itself, before libCacheSim converts it: an oracleGeneral
    trace's own fields, a csv's columns. What is certainly wrong (a csv column that does not
    exist) raises TaskError; what only looks wrong comes back in `problems`."""
    if trace.type == "oracleGeneral":
        return _check_oracle_general(trace)
    if trace.type == "csv":
        return _check_csv(trace)
    return Plausibility([])


def check_copy(copy: Path, n_obj: int, label: str, timestamps: bool = True) -> list[str]:
    """Checks on the candidates' copy (oracleGeneral, any original format) with the footprint's
    count of objects. A trace in which no object is requested twice, or only one object is,
    ranks no policy: TaskError. Returns what only looks wrong (timestamps)."""
    rec = np.memmap(copy, dtype=RECORD, mode="r")
    n = rec.size
    if n_obj >= n:
        raise TaskError(f"trace {label} cannot rank policies: none of its {n} requests is to an object "
                        "requested before, so every policy's hit ratio is 0")
    if n_obj == 1:
        raise TaskError(f"trace {label} cannot rank policies: all its {n} requests are to one object")
    return _record_problems(_sample(rec), zero_sizes=False) if timestamps else []
