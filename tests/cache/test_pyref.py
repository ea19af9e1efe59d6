"""The Python template (pyref, bench/cache's Python PluginCache row) evicts exactly like the
C template for priorities that do not read percentiles (the two draw different samples)."""
import pytest

from policyforge.tasks.cache import pyref
from pfhelpers import ROOT

P = "double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{{\n    return {};\n}}\n"

CASES = {
    "obj->last_access": lambda o, c: o.last_access,
    "obj->count": lambda o, c: o.count,
    "-obj->last_access": lambda o, c: -o.last_access,
    "obj->count - pf_div(obj->ghost_gap, obj->ghost_count + 1.0) + ctx->ghost_hits":
        lambda o, c: o.count - pyref.pf_div(o.ghost_gap, o.ghost_count + 1.0) + c.ghost_hits,
    # the recency, decayed frequency and one-hit-share features: the same definitions in both
    "obj->last_access - obj->irr": lambda o, c: o.last_access - o.irr,
    "obj->last_access + ctx->cache_size * pf_log(obj->dfreq)":
        lambda o, c: o.last_access + c.cache_size * pyref.pf_log(o.dfreq),
    # the frequency over every residency the ghost history connects
    "obj->last_access + ctx->cache_size * pf_log(obj->total - obj->count)":
        lambda o, c: o.last_access + c.cache_size * pyref.pf_log(o.total - o.count),
    "obj->last_access + (obj->count > 1 ? ctx->cache_size * (1.0 - ctx->once) : 0.0)":
        lambda o, c: o.last_access + (c.cache_size * (1.0 - c.once) if o.count > 1 else 0.0),
    # the frequency sketch: its hash, saturation and halving (every 10 x the cache's records)
    "obj->last_access + (obj->sketch > 1.5 ? 4.0 * ctx->cache_size : 0.0) + obj->sketch":
        lambda o, c: o.last_access + (4.0 * c.cache_size if o.sketch > 1.5 else 0.0) + o.sketch,
}


@pytest.mark.parametrize("body", list(CASES))
def test_python_template_evicts_like_the_c_template(cloudphysics, tmp_path, body):
    import importlib.metadata
    import libcachesim as lcs

    pin = (ROOT / "native/cache/libcachesim.pin").read_text()
    assert f"LIBCACHESIM_VERSION={importlib.metadata.version('libcachesim')}\n" in pin, "reference is not the pinned libcachesim"
    task = cloudphysics
    c = task.check(P.format(body), tmp_path / "c")
    assert c.ok, c.feedback
    for size in task.sizes[:2]:  # 1 % and 10 % of the footprint, the whole trace
        native = task._simulate(task.trace, task.plugin_args(c), sizes=[size])
        reader = lcs.TraceReader(str(task.trace.path), lcs.TraceType.ORACLE_GENERAL_TRACE,
                                 lcs.ReaderInitParam(ignore_obj_size=True))
        cache = pyref.plugin_cache(CASES[body], size, hashpower=task._hashpower([size]), sketch="sketch" in body)
        miss_ratio, _ = cache.process_trace(reader)
        r = native["results"][0]
        assert round(miss_ratio * r["n_req"]) == r["n_miss"], size
