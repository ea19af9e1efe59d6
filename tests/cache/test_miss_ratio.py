"""The cache task speaks the field's language: tables, reports and best.json give the miss
ratio (lower is better) beside the score the search maximizes (the hit ratio), and where the
winner sits between the best baseline and Belady."""
import json
import subprocess
import sys

from pfhelpers import cli_env

PF = [sys.executable, "-m", "policyforge"]
LRU = "double priority(const struct pf_obj *obj, const struct pf_ctx *ctx)\n{\n    return obj->last_access;\n}\n"


def test_eval_and_run_print_miss_ratio_and_the_gap_to_belady(tmp_path):
    (tmp_path / "lru.c").write_text(LRU)
    r = subprocess.run(PF + ["eval", "cache", str(tmp_path / "lru.c"), "-o", "trace=zipf:n_req=20000",
                             "-o", "baselines=LRU,FIFO"], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    head, *rows = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert "miss ratio (lower is better)" in head
    lru = next(ln.split() for ln in rows if ln.startswith("LRU "))
    assert abs(float(lru[1]) + float(lru[2]) - 1) < 1e-9          # miss = 1 - hit, side by side

    run = tmp_path / "run"
    r = subprocess.run(PF + ["run", "cache", "--rounds", "0", "-q", "--out", str(run), "-o", "trace=zipf:n_req=20000",
                             "-o", "seeds=lru,two-class"], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    best = json.loads((run / "best.json").read_text())
    assert best["shown_label"].startswith("miss ratio")
    assert best["winner"]["shown"] == 1 - best["winner"]["score"]
    gap = best["gap"]
    assert gap["bound"] == "Belady" and -1 < gap["closed"] < 1
    belady = best["baselines"]["Belady"]["score"]
    top = best["baselines"][gap["best_baseline"]]["score"]
    assert abs(gap["closed"] - (best["winner"]["score"] - top) / (belady - top)) < 1e-12
    assert ("closes" in r.stdout) == (gap["closed"] >= 0) and "Belady" in r.stdout
    assert "miss ratio (lower is better)" in (run / "report.html").read_text()
    assert (run / "curves.png").stat().st_size > 1000          # miss-ratio curves: winner and top baselines
    # the deploy line runs as pasted: the stock cachesim of this build, the winner's plugin
    deploy = next(ln[len("deploy: "):] for ln in r.stdout.splitlines() if ln.startswith("deploy: "))
    out = subprocess.run(["bash", "-c", deploy], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "miss ratio" in out.stdout, (deploy, out.stderr[-500:])
    assert "[DEBUG]" not in out.stdout + out.stderr            # cachesim's first-request dump is off
    assert f"{best['winner']['shown']:.4f}" in out.stdout                       # the miss ratio it reported
