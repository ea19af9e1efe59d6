"""Traces for the cache task: libCacheSim's sample traces, user files, and deterministic
synthetic workloads written as oracleGeneral files.

oracleGeneral record (libCacheSim): packed little-endian
    {u32 timestamp; u64 obj_id; u32 obj_size; i64 next_access_vtime}
next_access_vtime is the 1-based index of the object's next request, -1 if none (Belady
reads it).
"""
from __future__ import annotations

import dataclasses
import hashlib
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


def _parse_synthetic(spec: str) -> tuple[str, dict]:
    name, _, rest = spec.partition(":")
    kw: dict = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        try:
            kw[k] = float(v) if "." in v else int(v)
        except ValueError:
            raise TaskError(f"bad synthetic trace parameter {item!r} in {spec!r}") from None
    return name, kw


def synthesize(spec: str, out_dir: Path) -> Path:
    name, kw = _parse_synthetic(spec)
    gen = SYNTHETIC[name]
    tag = hashlib.sha256(spec.encode()).hexdigest()[:10]
    path = out_dir / f"synthetic-{name}-{tag}.oracleGeneral.bin"
    if not path.exists():
        try:
            ids = gen(**kw)
        except TypeError as e:
            raise TaskError(f"synthetic trace {name}: {e}") from None
        out_dir.mkdir(parents=True, exist_ok=True)
        write_oracle_general(np.asarray(ids, dtype=np.uint64), path)
    return path


def validate(trace: Trace) -> None:
    """Cheap structural checks, so a malformed file fails with one clear line."""
    p = trace.path
    if not p.is_file():
        raise TaskError(f"trace {p} does not exist")
    size = p.stat().st_size
    if size == 0:
        raise TaskError(f"trace {p} is empty")
    with open(p, "rb") as f:
        head = f.read(4)
    if p.suffix == ".zst":
        if head != ZSTD_MAGIC:
            raise TaskError(f"trace {p} ends in .zst but is not zstd-compressed")
        return
    if trace.type == "oracleGeneral" and size % RECORD.itemsize != 0:
        raise TaskError(f"trace {p} is not an oracleGeneral trace: {size} bytes is not a multiple "
                        f"of the {RECORD.itemsize}-byte record")
    if trace.type == "csv" and not trace.csv_spec:
        raise TaskError("a csv trace needs -o csv=\"obj_id=COL[,time=COL,obj_size=COL,header=1,delimiter=comma]\"")


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
    name, _ = _parse_synthetic(spec)
    if spec in SAMPLES:
        fname, ttype, spec_csv = SAMPLES[spec]
        t = Trace(native_dir() / "share" / "traces" / fname, ttype, spec_csv, spec)
    elif name in SYNTHETIC:
        t = Trace(synthesize(spec, shared / "traces"), "oracleGeneral", None, spec)
    else:
        p = Path(spec).expanduser().resolve()
        ttype = trace_type or ("csv" if ".csv" in p.name else "oracleGeneral")
        t = Trace(p, ttype, csv_spec, p.name)
    validate(t)
    if t.type == "csv" and t.path.suffix == ".zst":
        t = decompressed_csv(t, shared)
    return t


def prefix(trace: Trace, n_req: int, shared: Path) -> Trace | None:
    """The first n_req requests as their own file (oracleGeneral only), for cheap screens."""
    if trace.type != "oracleGeneral" or trace.path.suffix == ".zst":
        return None
    n = trace.path.stat().st_size // RECORD.itemsize
    if n <= n_req:
        return None
    out = shared / "traces" / f"prefix-{n_req}-{trace.path.name}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        rec = np.fromfile(trace.path, dtype=RECORD, count=n_req)
        rec["next"][rec["next"] > n_req] = -1
        rec.tofile(out)
    return Trace(out, "oracleGeneral", None, f"{trace.name} (first {n_req})")
