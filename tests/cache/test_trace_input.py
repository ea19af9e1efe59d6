"""Trace input: a file that is not a trace, a csv whose columns are wrong, a bad synthetic
parameter, a directory are refused before any search starts, in one line without a traceback
or a terminal escape; real traces pass; and `eval` reports the whole trace's hit ratio, the
same for a .bin and its .bin.zst, never a screened prefix's."""
import inspect
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zstandard

from pfhelpers import cli_env
from policyforge.native import native_dir, native_path
from policyforge.tasks.cache import traces

LRU = "double priority(const struct pf_obj *obj, const struct pf_ctx *ctx) { return obj->last_access; }\n"
# evicts the most frequently used object first: far below LRU on a Zipf trace, so a screen rejects it
ANTI_LFU = "double priority(const struct pf_obj *obj, const struct pf_ctx *ctx) { return -obj->count; }\n"


def _pf(tmp_path, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "policyforge", *args], capture_output=True, text=True,
                          env=cli_env(), cwd=tmp_path, timeout=timeout)


def _refused(tmp_path, *options, command="run") -> str:
    """Run (or eval) the cache task with these -o options; it must stop with exit status 2 and
    one line on stderr. Returns that line."""
    opts = [x for o in options for x in ("-o", o)]
    if command == "run":
        r = _pf(tmp_path, "run", "cache", *opts, "--out", str(tmp_path / "run"), "--rounds", "1",
                "--candidates-per-round", "2", "-q")
    else:
        (tmp_path / "p.c").write_text(LRU)
        r = _pf(tmp_path, "eval", "cache", str(tmp_path / "p.c"), *opts)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "\x1b" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("policyforge: error: "), r.stderr
    return lines[0]


def test_random_bytes_that_fit_the_record_size_are_not_an_oracle_general_trace(tmp_path):
    f = tmp_path / "noise.bin"
    f.write_bytes(np.random.default_rng(0).bytes(traces.RECORD.itemsize * 10_000))
    line = _refused(tmp_path, f"trace={f}")
    assert "not plausible" in line and "next_access_vtime" in line and "timestamps go backwards" in line


def test_csv_columns_that_do_not_exist_are_named(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("# time, object, size\n" + "".join(f"{i}, {i % 97}, 1\n" for i in range(3000)))
    line = _refused(tmp_path, f"trace={f}", "csv=time=7,obj_id=8,obj_size=9,header=1", command="eval")
    assert "column obj_id=8 does not exist" in line and "3 fields" in line


def test_a_csv_of_words_is_not_read_as_numbers(tmp_path):
    f = tmp_path / "words.csv"
    f.write_text("".join(f"foo,bar{i % 50},baz\n" for i in range(3000)))
    line = _refused(tmp_path, f"trace={f}", "csv=time=1,obj_id=2,obj_size=3")
    assert "column time=1 is not a number" in line and "'foo'" in line
    line = _refused(tmp_path, f"trace={f}", "csv=obj_id=2,obj_size=3")
    assert "column obj_size=3 is not a size" in line
    line = _refused(tmp_path, f"trace={f}", "csv=obj_id=2,obj_id_is_num=1")
    assert "column obj_id=2 is not a number" in line


def test_random_bytes_named_csv_say_so_without_libcachesim_colours(tmp_path):
    f = tmp_path / "noise.csv"
    f.write_bytes(np.random.default_rng(1).bytes(100_000))
    line = _refused(tmp_path, f"trace={f}", "csv=time=1,obj_id=2,obj_size=3", command="eval")
    assert "not a text file" in line


def test_a_directory_is_not_said_to_be_missing(tmp_path):
    d = tmp_path / "traces"
    d.mkdir()
    line = _refused(tmp_path, f"trace={d}")
    assert "is a directory" in line and "does not exist" not in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_trace_says_so(tmp_path):
    f = tmp_path / "secret.bin"
    shutil.copy(native_dir() / "share" / "traces" / "cloudPhysicsIO.oracleGeneral.bin", f)
    f.chmod(0)
    assert "cannot be read" in _refused(tmp_path, f"trace={f}")


def test_a_negative_request_count_for_a_synthetic_trace_is_one_line(tmp_path):
    line = _refused(tmp_path, "trace=zipf:n_req=-5")
    assert "n_req=-5" in line and "between 1 and" in line


@pytest.mark.parametrize("spec,words", [
    ("zipf:alpha=-1", "alpha=-1 must be at least 0"),
    ("zipf:n_objs=0", "n_objs=0 must be between 1"),
    ("zipf:foo=1", "unknown parameter 'foo' for synthetic trace zipf"),
    ("zipf:n_req=many", "n_req='many' is not a number"),
    ("zipf:n_req=1.5", "n_req='1.5' must be an integer"),
    ("one-hit:frac=2", "frac=2 must be between 0 and 1"),
    ("shifting:n_req=3", "fewer than its 6 phases"),
    ("zipf:n_objs=1,n_req=500", "all its 500 requests are to one object"),
    ("zipff:alpha=1", "neither a file, a sample"),
])
def test_bad_synthetic_parameters_are_one_line(tmp_path, spec, words):
    assert words in _refused(tmp_path, f"trace={spec}", command="eval")


def test_libcachesim_log_lines_lose_their_colours_and_prefix():
    from policyforge.tasks.cache.task import tool_message
    err = ("\x1b[33m[WARN]  12-05-2026 00:15:15    csv.c:238  (tid=1404): csvReader obj_size is not a number\n"
           "\x1b[0m\x1b[31m[ERROR] 12-05-2026 00:15:15 reader.c:155  (tid=1402): The trace does not use delimiter ','\n"
           "\x1b[0m")
    assert tool_message(err, "exit status 134") == "The trace does not use delimiter ','"
    assert tool_message("\x1b[0m\n", "exit status 134") == "exit status 134"


def test_bundled_samples_synthetic_generators_and_test_csvs_are_plausible(tmp_path):
    def copy_ok(path, label):
        rec = np.fromfile(path, dtype=traces.RECORD)
        assert traces.check_copy(path, np.unique(rec["id"]).size, label) == [], label

    # cloudPhysicsIO, plain and compressed: its next-access times are right (Belady reads them)
    cp = native_dir() / "share" / "traces" / "cloudPhysicsIO.oracleGeneral.bin"
    assert traces.check_original(traces.Trace(cp, "oracleGeneral")) == traces.Plausibility([], next_access=True)
    packed = tmp_path / "cp.oracleGeneral.bin.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(cp.read_bytes()))
    assert traces.check_original(traces.Trace(packed, "oracleGeneral")) == traces.Plausibility([], True)
    copy_ok(cp, "cloudPhysicsIO")
    # twitter_cluster52: its first ~200k lines, read by libCacheSim as the task reads it
    fname, ttype, spec = traces.SAMPLES["twitter_cluster52"]
    with open(native_dir() / "share" / "traces" / fname, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read(8_000_000)
    head = tmp_path / "twitter.csv"
    head.write_bytes(data[: data.rindex(b"\n") + 1])
    tw = traces.Trace(head, ttype, spec)
    assert traces.check_original(tw).problems == []
    out = tmp_path / "twitter.bin"
    subprocess.run([str(native_path("bin", "pf-cachesim")), *tw.args(), "--convert", str(out)], check=True,
                   capture_output=True, timeout=120)
    copy_ok(out, "twitter")
    # every synthetic generator, with its defaults, and each of its parameters bounded
    for name, gen in traces.SYNTHETIC.items():
        assert set(inspect.signature(gen).parameters) <= set(traces._SYNTHETIC_BOUNDS), name
        p = traces.synthesize(name, tmp_path / "synthetic")
        assert traces.check_original(traces.Trace(p, "oracleGeneral")) == traces.Plausibility([], True), name
        copy_ok(p, name)
    # the csv traces of the other tests (header and spaces; no header, numeric ids)
    a = tmp_path / "a.csv"
    a.write_text("# time, object, size\n" + "".join(f"{i}, {(i * 7919) % 97}, 1\n" for i in range(4000)))
    assert traces.check_original(traces.Trace(a, "csv", "time=1,obj_id=2,obj_size=3,header=1,delimiter=comma,"
                                                        "obj_id_is_num=1")).problems == []
    b = tmp_path / "b.csv"
    b.write_text("".join(f"{i},{i % 3 if i % 4 else i % 50},100\n" for i in range(3000)))
    assert traces.check_original(traces.Trace(b, "csv", "time=1,obj_id=2,obj_size=3,header=0,delimiter=comma,"
                                                        "obj_id_is_num=1")).problems == []


def test_real_trace_quirks_pass(tmp_path):
    """What real traces have and garbage has not: timestamps in seconds (many equal), a few
    requests out of order, a 64-bit clock cut to 32 bits (it wraps), some requests of size 0."""
    rng = np.random.default_rng(5)
    n = 100_000
    ids = rng.zipf(1.2, n).astype(np.uint64)
    f = tmp_path / "quirky.oracleGeneral.bin"
    traces.write_oracle_general(ids, f)
    rec = np.fromfile(f, dtype=traces.RECORD)
    ts = (np.arange(n, dtype=np.int64) * 50_000 + 4_000_000_000) % (1 << 32)   # wraps every ~86k requests
    swap = rng.choice(n - 1, size=n // 20, replace=False)                    # 5 % adjacent swaps
    ts[swap], ts[swap + 1] = ts[swap + 1], ts[swap].copy()
    rec["ts"] = ts
    rec["size"][rng.random(n) < 0.1] = 0
    rec.tofile(f)
    assert traces.check_original(traces.Trace(f, "oracleGeneral")) == traces.Plausibility([], True)
    seconds = tmp_path / "seconds.oracleGeneral.bin"
    rec["ts"] = np.arange(n) // 1000
    rec.tofile(seconds)
    assert traces.check_copy(seconds, np.unique(rec["id"]).size, "seconds") == []


def _eval_score(tmp_path, trace, screen):
    r = _pf(tmp_path, "eval", "cache", str(tmp_path / "p.c"), "--json", "--no-baselines",
            "-o", f"trace={trace}", "-o", f"screen={screen}", timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["policy"]["score"]


def test_eval_reports_the_whole_trace_for_bin_and_zst_whatever_the_screen(tmp_path):
    (tmp_path / "p.c").write_text(ANTI_LFU)
    made = traces.synthesize("zipf:n_req=30000,n_objs=3000", tmp_path / "made")
    plain = tmp_path / "z.oracleGeneral.bin"
    shutil.copy(made, plain)
    packed = tmp_path / "z.oracleGeneral.bin.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    full = _eval_score(tmp_path, plain, 0)
    assert _eval_score(tmp_path, plain, 20_000) == full
    assert _eval_score(tmp_path, packed, 20_000) == full


def test_a_search_still_screens_once_it_has_a_best_score(tmp_path):
    """The controller passes the best score so far (None in round 0): only then the screen."""
    from policyforge.tasks.cache import TASK_CLASS
    task = TASK_CLASS(trace="zipf:n_req=30000,n_objs=3000", screen="20000")
    task.prepare(tmp_path / "shared")
    check = task.check(ANTI_LFU, tmp_path / "c")
    assert check.ok, check.feedback
    screened = task.evaluate(check, tmp_path, best_so_far=0.3)
    assert screened.ok and screened.stage == "screen" and "first 20000 requests" in screened.reason
    full = task.evaluate(check, tmp_path, None)
    assert full.ok and full.stage == "full" and full.score != screened.score


def test_the_screen_rises_to_the_best_so_far_less_the_slack(tmp_path):
    """Multi-fidelity: the floor on the prefix is the best so far moved onto the prefix (by the
    best baseline's own prefix-to-whole difference; here the only baseline is LRU) less -o
    screen_slack (0.02 here). The LRU policy passes when the best is 0.01 above LRU and stops
    after the prefix when the best is 0.05 above. Before the baselines ran, and with a slack of
    1, only the fixed floor (97 % of LRU) applies."""
    from policyforge.tasks.cache import TASK_CLASS

    def task(where, **opts):
        t = TASK_CLASS(trace="zipf:n_req=30000,n_objs=3000", screen="10000", baselines="LRU", **opts)
        t.prepare(tmp_path / where)
        return t, t.check(LRU, tmp_path / where / "c")
    t, check = task("a", screen_slack="0.02")
    assert check.ok, check.feedback
    whole = t.evaluate(check, tmp_path, None)
    assert whole.ok and whole.stage == "full"
    t.baselines(tmp_path / "a")
    near = t.evaluate(check, tmp_path, best_so_far=whole.score + 0.01)
    assert near.ok and near.stage == "full" and near.score == whole.score
    far = t.evaluate(check, tmp_path, best_so_far=whole.score + 0.05)
    assert far.ok and far.stage == "screen" and "first 10000 requests" in far.reason
    loose, check = task("b", screen_slack="1")
    loose.baselines(tmp_path / "b")
    assert loose.evaluate(check, tmp_path, best_so_far=whole.score + 0.05).stage == "full"
    unknown, check = task("c", screen_slack="0.02")      # no baselines run in this process
    assert unknown.evaluate(check, tmp_path, best_so_far=whole.score + 0.05).stage == "full"
