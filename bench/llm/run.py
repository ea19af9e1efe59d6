"""bench/llm/run.py: the checker and the repair loop on a recorded corpus of model answers.

    .venv/bin/python bench/llm/run.py [--tasks cache,cc,eplb] [--limit N]

The corpus (bench/llm/corpus/TASK.jsonl) is answers written the way chat models answer
policyforge's prompts: natural first tries with the usual mistakes, adversarial ("stress")
ones, and for each failed attempt the repair a model writes from the checker's feedback.
Every attempt carries a label decided from the documented rules and C/C++ semantics, not
from the checker: "valid" or not, and why.

Each chain is replayed through the real checker (task.check: parser and allowlist, the
compilers, the object audit, the probes, for cc the kernel's BPF verifier), the way a run
goes: attempt 0 is checked; while the checker rejects, the next recorded repair is checked.
Reported per task: the checker's first-try pass rate, the pass rate within 1 and 3 repairs,
false rejections (labelled-valid attempts it rejects) and false acceptances (labelled-invalid
attempts it accepts) over every attempt, and seconds per check. PolicySmith's reported 63 %
first-try and 82 % after-feedback rates are the anchor. Writes bench/llm/results.md and
results.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))

from policyforge import tasks  # noqa: E402
from policyforge.search.prompt import extract_code  # noqa: E402
from policyforge.search.report import git_commit, machine  # noqa: E402

# small workloads: checking does not depend on them, preparing them should not take long
OPTIONS = {"cache": {"trace": "zipf:n_req=20000,n_objs=2000"}, "cc": {},
           "eplb": {"steps": "40", "window": "20", "layers": "2", "experts": "16", "replicas": "24",
                    "groups": "4", "nodes": "2", "gpus": "4"}}
ANCHOR = "PolicySmith (HotNets'25): 63 % of first tries compile, 82 % after feedback"


def load(task: str) -> list[dict]:
    path = ROOT / "bench" / "llm" / "corpus" / f"{task}.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def replay(task_name: str, items: list[dict], work: Path) -> dict:
    task = tasks.load(task_name, **OPTIONS[task_name])
    task.prepare(work / "shared")
    seconds, chains, attempts = [], [], []
    for item in items:
        passed_at = None
        for k, att in enumerate(item["attempts"]):
            t0 = time.monotonic()
            out = task.check(extract_code(att["response"]), work / item["id"] / f"a{k}")
            seconds.append(time.monotonic() - t0)
            first = next((ln.strip() for ln in out.feedback.splitlines() if ln.strip()), "")
            attempts.append({"id": item["id"], "attempt": k, "kind": item["kind"], "valid": att["valid"],
                             "why": att.get("why", ""), "ok": out.ok, "stage": out.stage, "feedback": first[:240]})
            if out.ok:
                passed_at = k
                break
        chains.append({"id": item["id"], "kind": item["kind"], "passed_at": passed_at,
                       "attempts": len(item["attempts"])})
    n = len(chains)

    def within(r: int, kind: str | None = None) -> float:
        sel = [c for c in chains if kind in (None, c["kind"])]
        return sum(c["passed_at"] is not None and c["passed_at"] <= r for c in sel) / max(1, len(sel))
    valid = [a for a in attempts if a["valid"]]
    invalid = [a for a in attempts if not a["valid"]]
    fr = [a for a in valid if not a["ok"]]
    fa = [a for a in invalid if a["ok"]]
    return {"task": task_name, "items": n, "natural": sum(c["kind"] == "natural" for c in chains),
            "attempts_checked": len(attempts),
            "first_try": within(0), "within_1_repair": within(1), "within_3_repairs": within(3),
            "first_try_natural": within(0, "natural"), "within_3_natural": within(3, "natural"),
            "valid_checked": len(valid), "false_rejections": len(fr),
            "invalid_checked": len(invalid), "false_acceptances": len(fa),
            "seconds_per_check": {"mean": statistics.mean(seconds), "p50": statistics.median(seconds),
                                  "p95": sorted(seconds)[int(0.95 * (len(seconds) - 1))]},
            "disagreements": fr + fa, "chains": chains}


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def markdown(results: list[dict], command: str, commit: str) -> str:
    rows = ["| task | items (natural) | first try | within 1 repair | within 3 repairs | false rejections "
            "| false acceptances | s per check (p50 / p95) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["seconds_per_check"]
        rows.append(f"| {r['task']} | {r['items']} ({r['natural']}) | {_pct(r['first_try'])} | "
                    f"{_pct(r['within_1_repair'])} | {_pct(r['within_3_repairs'])} | "
                    f"{r['false_rejections']} of {r['valid_checked']} valid | "
                    f"{r['false_acceptances']} of {r['invalid_checked']} invalid | {s['p50']:.2f} / {s['p95']:.2f} |")
    dis = []
    for r in results:
        for a in r["disagreements"]:
            kind = "false rejection" if a["valid"] else "false acceptance"
            label = "valid" if a["valid"] else f"invalid: {a['why']}"
            dis.append(f"- {a['id']} attempt {a['attempt']} ({kind}; labelled {label}): "
                       f"checker {'ok' if a['ok'] else a['stage'] + ': ' + a['feedback']}")
    return "\n".join([
        "# The checker and the repair loop on a recorded corpus (bench/llm)", "",
        f"Machine: {machine()}  ", f"Commit: {commit}  ", f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        "Chains of recorded answers (first try, then the repairs a model wrote from the feedback) replayed "
        "through the real checker; a chain stops at the first attempt the checker accepts. Labels come "
        "from the documented rules, not from the checker. Targets: >= 95 % within the repairs, 0 false "
        f"rejections, 0 false acceptances. Anchor: {ANCHOR}.", "",
        *rows, "", "## Where the checker and the labels disagree", "",
        *(dis or ["none"]), ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="cache,cc,eplb")
    ap.add_argument("--limit", type=int, default=0, help="first N items of each corpus (0: all)")
    a = ap.parse_args()
    commit = git_commit()          # before this run writes its results into the tree
    results = []
    for name in [t for t in a.tasks.split(",") if t]:
        items = load(name)[: a.limit or None]
        with tempfile.TemporaryDirectory(prefix=f"pf-bench-llm-{name}-") as tmp:
            work = Path(tmp)
            work.chmod(0o755)
            t0 = time.monotonic()
            r = replay(name, items, work)
        print(f"{name}: {r['items']} items, first try {_pct(r['first_try'])}, within 3 repairs "
              f"{_pct(r['within_3_repairs'])}, false rejections {r['false_rejections']}, false acceptances "
              f"{r['false_acceptances']} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
        results.append(r)
    command = "bench/llm/run.py " + " ".join(sys.argv[1:])
    out = ROOT / "bench" / "llm"
    (out / "results.json").write_text(json.dumps({"command": command, "commit": commit, "machine": machine(),
                                                  "results": results}, indent=1))
    (out / "results.md").write_text(markdown(results, command, commit))
    print(markdown(results, command, commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
