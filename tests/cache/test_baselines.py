"""Every ranked baseline is libCacheSim's own algorithm: pf-cachesim's miss ratio equals the
stock libcachesim package's (the same pinned version, its own build) on cloudPhysicsIO at 1 %
and 10 % of the footprint, unit sizes. Parameters are libCacheSim's C defaults, as the stock
`cachesim` uses them (the Python binding's ClockPro defaults differ: given here). LHD, LeCaR
and Cacheus draw random numbers, whose seeds differ between the two builds: within 0.1 points."""
import subprocess
import sys

import pytest

from policyforge.tasks.cache import TASK_CLASS
from policyforge.tasks.cache.task import CORE14, RANKED

STOCK = {"LRU": ("LRU", {}), "LFU": ("LFU", {}), "FIFO": ("FIFO", {}), "LIRS": ("LIRS", {}),
         "CLOCK": ("Clock", {}), "GDSF": ("GDSF", {}), "SIEVE": ("Sieve", {}), "S3-FIFO": ("S3FIFO", {}),
         "LHD": ("LHD", {}), "LeCaR": ("LeCaR", {}), "Cacheus": ("Cacheus", {}), "ARC": ("ARC", {}),
         "TinyLFU": ("WTinyLFU", {}), "Clock2Q+": ("Clock2QPlus", {}), "ClockPro": ("ClockPro", {"init_ratio_cold": 1}),
         "2Q": ("TwoQ", {}), "MQ": ("MQ", {}), "SLRU": ("SLRU", {}), "LFUDA": ("LFUDA", {})}
RANDOMIZED = {"LHD", "LeCaR", "Cacheus"}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    t = TASK_CLASS(trace="cloudPhysicsIO", cache_size="0.01,0.1")
    t.prepare(tmp_path_factory.mktemp("shared"))
    return t


def _stock_miss(cls: str, params: dict, trace: str, size: int) -> float:
    """The stock package's miss ratio, in a fresh process: randomized algorithms draw from one
    process-wide generator, so each run must start from its seed as pf-cachesim's does."""
    code = ("import sys, libcachesim as lcs\n"
            "r = lcs.TraceReader(sys.argv[1], lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True))\n"
            f"print(repr(lcs.{cls}(int(sys.argv[2]), **{params!r}).process_trace(r)[0]))\n")
    out = subprocess.run([sys.executable, "-c", code, trace, str(size)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(STOCK))
def test_baseline_is_the_stock_libcachesim_algorithm(task, name):
    cls, params = STOCK[name]
    for size in task.sizes:     # one size per run, each in its own process
        [r] = task._simulate(task.trace, ["--algo", RANKED[name]], sizes=[size])["results"]
        miss = _stock_miss(cls, params, str(task.trace.path), size)
        if name in RANDOMIZED:
            assert abs(miss - r["n_miss"] / r["n_req"]) < 0.001, (name, size, miss, r["n_miss"] / r["n_req"])
        else:
            assert round(miss * r["n_req"]) == r["n_miss"], (name, size)


def test_every_ranked_baseline_runs_and_the_policysmith_fourteen_are_marked():
    assert set(CORE14) <= set(RANKED) and len(CORE14) == 14
    # those the Python package does not bind (QD-LP, CAR, FIFO-Reinsertion) still run in pf-cachesim
    assert set(RANKED) - set(STOCK) == {"MRU", "CR-LFU", "SR-LRU", "FIFO-Reinsertion", "QD-LP", "CAR"}
    assert RANKED["CLOCK"] == "clock" and RANKED["FIFO-Reinsertion"] == "fifo-reinsertion"
