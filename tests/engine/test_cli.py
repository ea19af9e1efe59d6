"""The CLI end to end on the engine's test task: run, runs list/show/best/export, check, eval."""
import json
import subprocess
import sys

from pfhelpers import cli_env


def pf(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "policyforge", *args], capture_output=True, text=True,
                          env=cli_env(), cwd=tmp_path, timeout=120)


def test_run_then_inspect_and_export(tmp_path):
    r = pf(tmp_path, "run", "toytask:ToyTask", "--rounds", "2", "--candidates-per-round", "4", "--out", "runs/t")
    assert r.returncode == 0, r.stderr
    assert "no OPENAI_API_KEY set: used the offline generator" in r.stderr
    assert "WINNER" in r.stdout and "report: runs/t/report.html" in r.stdout
    best = json.loads((tmp_path / "runs/t/best.json").read_text())
    assert best["winner"]["score"] >= max(b["score"] for b in best["baselines"].values() if b["ranked"])
    html = (tmp_path / "runs/t/report.html").read_text()
    assert "data:image/png;base64," in html and "Winner source" in html
    # the same --out again is refused, nothing is overwritten
    again = pf(tmp_path, "run", "toytask:ToyTask", "--out", "runs/t")
    assert again.returncode == 2 and "already holds a run" in again.stderr
    assert json.loads((tmp_path / "runs/t/best.json").read_text()) == best

    lst = pf(tmp_path, "runs", "list")
    assert "runs/t" in lst.stdout and "offline" in lst.stdout
    show = pf(tmp_path, "runs", "show", "runs/t")
    assert show.returncode == 0 and "evaluated" in show.stdout
    b = pf(tmp_path, "runs", "best", "runs/t")
    assert b.stdout.startswith(f"# candidate {best['winner']['id']}") and "double f(double x)" in b.stdout
    ex = pf(tmp_path, "runs", "export", "runs/t", "--out", "exported")
    assert ex.returncode == 0 and (tmp_path / "exported/toy_policy.c").exists()


def test_check_and_eval_a_file(tmp_path):
    good = tmp_path / "good.c"
    good.write_text("double f(double x) { return x * x + 3 * x; }\n")
    bad = tmp_path / "bad.c"
    bad.write_text("double f(double x) { return x * q; }\n")
    ok = pf(tmp_path, "check", "toytask:ToyTask", str(good))
    assert ok.returncode == 0 and ok.stdout.startswith("ok:")
    fail = pf(tmp_path, "check", "toytask:ToyTask", str(bad))
    assert fail.returncode == 1 and "FAILED at stage 'compile'" in fail.stdout and "undeclared" in fail.stdout
    ev = pf(tmp_path, "eval", "toytask:ToyTask", str(good))
    assert ev.returncode == 0 and "good.c beats 1 of 1 ranked baselines" in ev.stdout
