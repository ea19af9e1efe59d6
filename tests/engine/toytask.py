"""A small real task for engine tests: fit f(x) to a target curve.

The candidate's `double f(double x)` is compiled by gcc into a program that prints the
squared error against x*x + 3*x + 1 on 64 points; the compiler and the program run in the
sandbox. It has no checker on purpose, so hostile candidates (loops, fork, malloc, NULL
writes) reach the sandbox. `delay_ms` slows evaluation so tests can kill a run mid-round.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from policyforge import sandbox
from policyforge.task import Baseline, Hole, CheckOutcome, Evaluation, Option, Seed, Task, number

TEMPLATE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <math.h>
static inline double pf_div(double a, double b) { return b == 0 ? 0 : a / b; }
static inline double pf_min(double a, double b) { return a < b ? a : b; }
static inline double pf_max(double a, double b) { return a > b ? a : b; }
static inline double pf_log(double a) { return log1p(fabs(a)); }
/* POLICY */
int main(void) {
    double err = 0;
    if (DELAY_MS > 0) usleep(DELAY_MS * 1000);
    for (int i = 0; i < 64; i++) {
        double x = i / 8.0, want = x * x + 3 * x + 1, d = f(x) - want;
        err += d * d;
    }
    printf("%.9f\n", err);
    return 0;
}
"""


class ToyTask(Task):
    name = "toy"
    title = "curve fitting (engine test task)"
    score_label = "-squared error"
    options = [Option("delay_ms", 0, "sleep before evaluating", number(int, min=0)),
               Option("timeout_s", 3.0, "evaluation timeout", number(above=0))]

    def holes(self):
        return [Hole("f", "double f(double x)", {"x": "x"}, doc="f(x) should equal a hidden curve.")]

    def describe(self):
        return "Write f(x), a function of one double, as close as possible to a hidden target curve on [0, 8)."

    def seeds(self):
        return [Seed("linear", {"f": "x"}), Seed("const", {"f": "1.0"})]

    def check(self, source: str, workdir: Path) -> CheckOutcome:
        t0 = time.monotonic()
        workdir.mkdir(parents=True, exist_ok=True)
        code = TEMPLATE.replace("DELAY_MS", str(int(self.opts["delay_ms"]))).replace("/* POLICY */", source)
        (workdir / "prog.c").write_text(code)
        r = sandbox.run(["gcc", "-O1", "-Wall", "-Werror", "-o", "prog", "prog.c", "-lm"], cwd=workdir,
                        rw=[workdir], timeout_s=60, profile="build")
        if not r.ok:
            return CheckOutcome(False, "compile", r.stderr or r.reason, seconds=time.monotonic() - t0)
        return CheckOutcome(True, "ok", "", workdir / "prog", seconds=time.monotonic() - t0)

    def evaluate(self, check, workdir, best_so_far=None) -> Evaluation:
        r = sandbox.run([str(check.artifact)], timeout_s=self.opts["timeout_s"], mem_mb=256, max_procs=16,
                        cwd=workdir)
        if not r.ok:
            return Evaluation(False, None, reason=r.reason, seconds=r.wall_s)
        try:
            err = float(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return Evaluation(False, None, reason="no result printed", seconds=r.wall_s)
        return Evaluation(True, -err, {"squared_error": err}, seconds=r.wall_s)

    def baselines(self, workdir):
        out = []
        for name, src in (("zero", "double f(double x) { return 0 * x; }"),
                          ("exact", "double f(double x) { return x * x + 3 * x + 1; }")):
            c = self.check(src, workdir / name)
            out.append(Baseline(name, self.evaluate(c, workdir / name), ranked=(name != "exact")))
        return out

    def export(self, source, check, out_dir):
        dst = out_dir / "toy_policy.c"
        dst.write_text(source)
        shutil.copy(check.artifact, out_dir / "prog")
        return {"files": [str(dst), str(out_dir / "prog")], "usage": f"{out_dir / 'prog'}"}
