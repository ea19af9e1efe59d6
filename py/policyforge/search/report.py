"""The run report: RUN/report.html (self-contained, PNGs inlined), RUN/best.json and the
winner's deployable artifacts in RUN/winner/."""
from __future__ import annotations

import base64
import html
import io
import json
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ..task import CheckOutcome, Task
from .database import Store


def git_commit() -> str:
    """The checkout's commit, marked when the tree has uncommitted changes."""
    try:
        here = Path(__file__).parent
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=here, timeout=5).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here, timeout=5).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        cpu = ""
    import os
    return f"{platform.node()} {platform.system()} {platform.release()}, {os.cpu_count()} cores {cpu}".strip()


def beaten(score: float | None, baselines: list[tuple[str, float | None, bool]]) -> tuple[list[str], list[str]]:
    """The one definition of "beats N of M": (the ranked baselines that ran and that `score`
    is strictly above, the ranked baselines that ran). Bounds (ranked False) never count."""
    ranked = [(n, sc) for n, sc, rk in baselines if rk and sc is not None]
    return [n for n, sc in ranked if score is not None and score > sc], [n for n, _ in ranked]


def gap_to_bound(score: float | None, baselines: list[dict]) -> dict[str, Any] | None:
    """Where the winner sits between the best ranked baseline and the bound (an unranked
    baseline such as Belady): `closed` is the fraction of that gap it closes (negative when it
    is behind the best baseline). None without a bound or a winner."""
    ranked = [b for b in baselines if b["ranked"] and b["ok"] and b["score"] is not None]
    bounds = [b for b in baselines if not b["ranked"] and b["ok"] and b["score"] is not None]
    if score is None or not ranked or not bounds:
        return None
    best = max(ranked, key=lambda b: b["score"])
    bound = max(bounds, key=lambda b: b["score"])
    if bound["score"] <= best["score"]:
        return None
    return {"best_baseline": best["name"], "bound": bound["name"], "margin": score - best["score"],
            "closed": (score - best["score"]) / (bound["score"] - best["score"])}


def comparison(store: Store) -> dict[str, Any]:
    """The winner against every baseline: which it beats, by how much."""
    best = store.best()
    rows = []
    for b in store.baselines():
        rows.append({"name": b["name"], "score": b["score"], "ranked": bool(b["ranked"]),
                     "metrics": json.loads(b["metrics"]), "ok": bool(b["ok"]), "reason": b["reason"]})
    beats, ranked = beaten(best["score"] if best is not None else None,
                           [(r["name"], r["score"] if r["ok"] else None, r["ranked"]) for r in rows])
    return {"baselines": rows, "beats": beats, "ranked": ranked,
            "beats_all": best is not None and len(beats) == len(ranked) and bool(ranked)}


def attempt_stats(store: Store) -> dict[str, Any]:
    """What the checker and the repairs did: per round, how many candidates passed on their
    first try, after repairs, or never, and the failed attempts by stage; per model, its calls,
    tokens and spend. Seeds are left out (they are not generated)."""
    cands = [c for c in store.candidates() if c["generator"] != "seed" and c["status"] != "pending"]
    rounds: dict[int, dict[str, Any]] = {}
    stages: set[str] = set()
    for c in cands:
        r = rounds.setdefault(c["round"], {"candidates": 0, "first_try": 0, "after_repair": 0, "never": 0,
                                           "repairs": 0, "failed_by_stage": {}})
        atts = store.attempts(c["id"])
        r["candidates"] += 1
        r["repairs"] += max(0, len(atts) - 1)
        if atts and atts[0]["ok"] == 1:
            r["first_try"] += 1
        elif any(a["ok"] == 1 for a in atts):
            r["after_repair"] += 1
        elif c["status"] == "check_failed":
            r["never"] += 1
        for a in atts:
            if a["ok"] == 0:
                r["failed_by_stage"][a["stage"]] = r["failed_by_stage"].get(a["stage"], 0) + 1
                stages.add(a["stage"])
    n = sum(r["candidates"] for r in rounds.values())
    first = sum(r["first_try"] for r in rounds.values())
    after = sum(r["after_repair"] for r in rounds.values())
    models: dict[str, dict[str, Any]] = {}
    for c in cands:
        m = models.setdefault(c["model"] or c["generator"], {"candidates": 0, "calls": 0, "tokens_in": 0,
                                                             "tokens_out": 0, "cost_usd": 0.0, "scored": 0})
        m["candidates"] += 1
        m["calls"] += 1 + (c["repairs"] or 0)
        m["tokens_in"] += c["tokens_in"]
        m["tokens_out"] += c["tokens_out"]
        m["cost_usd"] += c["cost_usd"]
        m["scored"] += c["status"] == "evaluated"
    return {"rounds": {str(k): v for k, v in sorted(rounds.items())}, "stages": sorted(stages),
            "candidates": n, "first_try_pass_rate": first / n if n else None,
            "pass_rate_after_repairs": (first + after) / n if n else None, "models": models}


def lineage(store: Store, cand: int, depth: int = 3) -> list[dict[str, Any]]:
    """The winner's ancestry to `depth` generations: each candidate's operation, score,
    parents, and the feedback of its failed attempts (what led to the code that won)."""
    out, frontier, seen = [], [cand], set()
    for _ in range(depth + 1):
        nxt = []
        for cid in frontier:
            if cid in seen:
                continue
            seen.add(cid)
            row = store.candidate(cid)
            if row is None:
                continue
            parents = json.loads(row["parents"] or "[]")
            failed = [{"attempt": a["attempt"], "stage": a["stage"],
                       "feedback": (a["feedback"].strip().splitlines() or [""])[0][:200]}
                      for a in store.attempts(cid) if a["ok"] == 0]
            out.append({"id": cid, "round": row["round"], "operation": row["operation"] or row["generator"],
                        "model": row["model"], "score": row["score"], "parents": parents, "failed_attempts": failed})
            nxt += parents
        frontier = nxt
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def plots(store: Store, out_dir: Path, score_label: str, shown=None) -> dict[str, str]:
    """The report's plots; `shown` maps a score to what people read (cache: miss ratio)."""
    f = shown or (lambda x: x)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cands = store.candidates()
    rounds = sorted({c["round"] for c in cands})
    images: dict[str, str] = {}
    base = [b for b in store.baselines() if b["ok"] and b["score"] is not None]

    # best score per round
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    best, ys = None, []
    for r in rounds:
        sc = [c["score"] for c in cands if c["round"] == r and c["score"] is not None]
        if sc:
            best = max(sc) if best is None else max(best, max(sc))
        ys.append(None if best is None else f(best))
    ax.plot(rounds, ys, marker="o", label="best candidate so far")
    for b in sorted(base, key=lambda b: -b["score"])[:3]:
        ax.axhline(f(b["score"]), ls="--", lw=0.8, color="gray")
        ax.text(rounds[-1] if rounds else 0, f(b["score"]), f" {b['name']}", fontsize=7, va="bottom", ha="right")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round (0 = seeds)")
    ax.set_ylabel(score_label)
    ax.set_title("Best score per round")
    ax.legend(fontsize=8)
    images["best_per_round"] = _png(fig)
    fig.savefig(out_dir / "best_per_round.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    # distribution per round
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    data = [[f(c["score"]) for c in cands if c["round"] == r and c["score"] is not None] for r in rounds]
    keep = [(r, d) for r, d in zip(rounds, data) if d]
    if keep:
        ax.boxplot([d for _, d in keep], positions=[r for r, _ in keep], widths=0.6)
        for r, d in keep:
            ax.scatter([r] * len(d), d, s=6, alpha=0.5)
    fails = [sum(1 for c in cands if c["round"] == r and c["score"] is None) for r in rounds]
    ax.set_xlabel("round")
    ax.set_ylabel(score_label)
    ax.set_title("Scores per round (unscored per round: " + ", ".join(map(str, fails)) + ")", fontsize=9)
    images["scores_per_round"] = _png(fig)
    fig.savefig(out_dir / "scores_per_round.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    # failed check attempts by stage, per round (generated candidates only)
    st = attempt_stats(store)
    if st["stages"]:
        rs = sorted(int(r) for r in st["rounds"])
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        bottom = [0] * len(rs)
        for stage in st["stages"]:
            vals = [st["rounds"][str(r)]["failed_by_stage"].get(stage, 0) for r in rs]
            ax.bar(rs, vals, bottom=bottom, label=stage)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("round")
        ax.set_ylabel("failed check attempts")
        ax.set_title("Failed attempts by checker stage")
        ax.legend(fontsize=8)
        images["failures_by_stage"] = _png(fig)
        fig.savefig(out_dir / "failures_by_stage.png", dpi=110, bbox_inches="tight")
        plt.close(fig)

    # winner vs baselines
    w = store.best()
    if w is not None and base:
        # zoom to where the policies are: the winner, the 12 best ranked baselines, and a bound
        # only when it is not far off their range (the table has every baseline)
        ranked = sorted((b for b in base if b["ranked"]), key=lambda b: -b["score"])[:12]
        scores = [b["score"] for b in ranked] + [w["score"]]
        spread = (max(scores) - min(scores)) or abs(max(scores)) or 1.0
        bounds = [b for b in base if not b["ranked"] and abs(b["score"] - max(scores)) <= 3 * spread]
        left_out = len(base) - len(ranked) - len(bounds)
        items = [(n, f(s), rk) for n, s, rk in sorted(
            [(b["name"], b["score"], bool(b["ranked"])) for b in ranked + bounds] + [("WINNER", w["score"], True)],
            key=lambda t: t[1])]
        fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(items) + 1))
        colors = ["tab:red" if n == "WINNER" else ("tab:blue" if rk else "lightgray") for n, _, rk in items]
        ax.barh([n for n, _, _ in items], [s for _, s, _ in items], color=colors)
        lo = min(s for _, s, _ in items)
        hi = max(s for _, s, _ in items)
        ax.set_xlim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
        ax.set_xlabel(score_label)
        ax.set_title("Winner against the baselines (gray: bound, not ranked)"
                     + (f"; {left_out} more in the table" if left_out else ""), fontsize=9)
        images["winner_vs_baselines"] = _png(fig)
        fig.savefig(out_dir / "winner_vs_baselines.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    return images


def _points(metrics: dict, x: str, y: str) -> dict[str, tuple[float, float]]:
    """workload -> (x, y) from a candidate's or a baseline's metrics ('' for one workload)."""
    if "workloads" in metrics:
        out = {}
        for w, m in metrics["workloads"].items():
            mm = m.get("metrics") or {}
            if mm.get(x) is not None and mm.get(y) is not None:
                out[w] = (mm[x], mm[y])
        return out
    return {"": (metrics[x], metrics[y])} if metrics.get(x) is not None and metrics.get(y) is not None else {}


def tradeoff_png(task: Task, store: Store, cmp: dict[str, Any], out_dir: Path) -> str | None:
    """Every scheme in the task's trade-off plane (cc: throughput against p95 delay), one panel
    per workload: the baselines labelled, every evaluated candidate faint, the winner red.
    Better is up and to the left."""
    if not task.tradeoff:
        return None
    x, y, xl, yl = task.tradeoff
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    best = store.best()
    cands = [json.loads(c["metrics"] or "{}") for c in store.scored()]
    base = {b["name"]: _points(b["metrics"], x, y) for b in cmp["baselines"] if b["ok"]}
    win = _points(json.loads(best["metrics"] or "{}"), x, y) if best is not None else {}
    workloads = sorted({w for pts in base.values() for w in pts} | set(win))
    if not workloads:
        return None
    cols = min(3, len(workloads))
    rows_n = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 3.6 * rows_n), squeeze=False)
    for ax, w in zip(axes.flat, workloads):
        pts = [p[w] for p in (_points(m, x, y) for m in cands) if w in p]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=8, color="0.75", label="candidates")
        for name, p in base.items():
            if w in p:
                ax.scatter(*p[w], s=30, color="tab:blue")
                ax.annotate(name, p[w], fontsize=8, xytext=(3, 3), textcoords="offset points")
        if w in win:
            ax.scatter(*win[w], s=90, marker="*", color="tab:red", label="winner", zorder=3)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(w or "throughput against delay", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    png = _png(fig)
    fig.savefig(out_dir / "tradeoff.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png


def _acks(metrics: dict) -> tuple[str, dict] | None:
    """(workload, per-ACK series) of a candidate's or a baseline's metrics: the first workload's."""
    if "workloads" in metrics:
        for w, m in metrics["workloads"].items():
            a = (m.get("metrics") or {}).get("acks")
            if a and a.get("t_s"):
                return w, a
        return None
    a = metrics.get("acks")
    return ("", a) if a and a.get("t_s") else None


def acks_png(store: Store, cmp: dict[str, Any], out_dir: Path) -> str | None:
    """cwnd and smoothed RTT at every ACK (thinned), the winner against every baseline on the same
    link (cc: traced by testbed/acktrace.py); None when the metrics carry no traces."""
    best = store.best()
    if best is None:
        return None
    mine = _acks(json.loads(best["metrics"] or "{}"))
    if mine is None:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    series = [("winner", mine[1])] + [(b["name"], a[1]) for b in cmp["baselines"] if b["ok"]
                                      and (a := _acks(b["metrics"])) is not None and a[0] == mine[0]]
    for name, a in series:
        style = dict(color="tab:red", lw=1.6, zorder=3) if name == "winner" else dict(lw=0.9, alpha=0.8)
        top.plot(a["t_s"], a["cwnd"], label=f"{name} ({a.get('ca', '')})" if name == "winner" else name, **style)
        bottom.plot(a["t_s"], a["srtt_ms"], **style)
    top.set_ylabel("cwnd (packets)")
    bottom.set_ylabel("smoothed RTT (ms)")
    bottom.set_xlabel("time since the first ACK (s)")
    top.set_title(f"at every ACK{': ' + mine[0] if mine[0] else ''}", fontsize=9)
    top.legend(fontsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    png = _png(fig)
    fig.savefig(out_dir / "acks.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png


def paired_margin(winner: dict, baselines: list[dict]) -> dict[str, Any] | None:
    """The winner's margin over the best ranked baseline, from per-run scores on the same
    windows (metrics["windows"], cc): the mean paired difference and a 90 % confidence interval
    (Student's t). None when the metrics carry no windows."""
    import statistics
    mine = {w["window"]: [] for w in winner.get("windows", []) if "window" in w}
    for r in winner.get("windows", []):
        if "window" in r:
            mine[r["window"]].append(r["score"])
    ranked = [b for b in baselines if b["ranked"] and b["ok"] and b["score"] is not None
              and b["metrics"].get("windows")]
    if not mine or not ranked:
        return None
    best = max(ranked, key=lambda b: b["score"])
    theirs: dict[int, list[float]] = {}
    for r in best["metrics"]["windows"]:
        theirs.setdefault(r.get("window", 0), []).append(r["score"])
    diffs = [statistics.fmean(mine[w]) - statistics.fmean(theirs[w]) for w in mine if w in theirs]
    if not diffs:
        return None
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return {"baseline": best["name"], "margin": mean, "n": 1, "low": None, "high": None}
    # two-sided 90 %: t quantiles for 1..10 degrees of freedom, then the normal's
    t = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833, 10: 1.812}
    half = t.get(len(diffs) - 1, 1.645) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return {"baseline": best["name"], "margin": mean, "n": len(diffs), "low": mean - half, "high": mean + half}


def _curve_png(curve: dict[str, Any], out_dir: Path) -> str:
    """The task's curves (cache: miss ratio against cache size), the winner in red."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    others = iter(["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:gray", "tab:olive"])
    for name, ys in curve["series"].items():
        pts = [(x, y) for x, y in zip(curve["x"], ys) if y is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                color="tab:red" if name == "winner" else next(others, None), lw=2 if name == "winner" else 1, label=name)
    if curve.get("log_x"):
        ax.set_xscale("log")
    ax.set_xlabel(curve["x_label"])
    ax.set_ylabel(curve["y_label"])
    ax.set_title("The winner and the best baselines across sizes")
    ax.legend(fontsize=8)
    png = _png(fig)
    fig.savefig(out_dir / "curves.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png


def suite_tables(store: Store) -> dict[str, Any] | None:
    """A suite run's per-workload results: the train table (the winner and the best baseline
    per train workload) and the held-out table (every finalist against every baseline of each
    held-out workload), with "beats every baseline on N of M held-out workloads"."""
    from .suite import Suite, per_workload_table
    cfg = store.meta("config") or {}
    if not cfg.get("suite"):
        return None
    suite = Suite.from_json(cfg["suite"])
    best = store.best()
    train_base: dict[str, dict[str, tuple]] = {}
    for b in store.baselines():
        for w, e in json.loads(b["metrics"]).get("workloads", {}).items():
            train_base.setdefault(w, {})[b["name"]] = (e["score"] if e["ok"] else None, bool(b["ranked"]))
    winner = {}
    if best is not None:
        winner = {w: e["score"] if e["ok"] else None
                  for w, e in json.loads(best["metrics"] or "{}").get("workloads", {}).items()}
    out: dict[str, Any] = {"aggregate": suite.aggregate, "train": per_workload_table({"winner": winner}, train_base)}
    held = store.meta("heldout")
    if held:
        labels = {cid: (f"winner ({cid})" if best is not None and int(cid) == best["id"] else f"candidate {cid}")
                  for cid in held["candidates"]}
        cands = {labels[cid]: {w: v["score"] for w, v in row.items()} for cid, row in held["candidates"].items()}
        base = {w: {n: (v["score"], v["ranked"]) for n, v in bs.items()} for w, bs in held["baselines"].items()}
        rows = per_workload_table(cands, base)
        wl = labels.get(str(best["id"])) if best is not None else None
        out["heldout"] = rows
        out["winner_label"] = wl
        out["heldout_wins"] = sum(r["candidates"].get(wl, {}).get("beats_all", False) for r in rows) if wl else 0
        out["heldout_n"] = len(rows)
        # the finalist that would have been picked by peeking: shown, never chosen
        mean = {lab: sum((r["candidates"][lab]["beaten"] / max(1, r["candidates"][lab]["ranked"])) for r in rows) / max(1, len(rows))
                for lab in cands}
        out["best_on_heldout"] = max(mean, key=mean.get) if mean else None
    return out


def _suite_html(t: dict[str, Any] | None) -> str:
    if not t:
        return ""

    def table(rows, labels):
        head = "<tr><th>workload</th><th>best baseline</th>" + "".join(f"<th>{html.escape(l)}</th>" for l in labels) + "</tr>"
        body = []
        for r in rows:
            bb = "-" if r["best_baseline"] is None else f"{html.escape(r['best_baseline'])} {r['best_baseline_score']:.6g}"
            cells = []
            for l in labels:
                c = r["candidates"].get(l, {})
                s = c.get("score")
                mark = " ✓" if c.get("beats_all") else ""
                cells.append("<td>failed</td>" if s is None else f"<td>{s:.6g}{mark} ({c['beaten']}/{c['ranked']})</td>")
            body.append(f"<tr><td>{html.escape(r['workload'])}</td><td>{bb}</td>{''.join(cells)}</tr>")
        return f"<table>{head}{''.join(body)}</table>"
    parts = [f"<h2>Workloads</h2><p>Selection used the train workloads only (aggregate: {html.escape(t['aggregate'])}). "
             "Each cell: the score, the ranked baselines it beats on that workload, ✓ when it beats all of them.</p>",
             "<h3>Train</h3>", table(t["train"], ["winner"])]
    if "heldout" in t:
        labels = list(t["heldout"][0]["candidates"]) if t["heldout"] else []
        parts += [f"<h3>Held out</h3><p>The winner (chosen by train score) beats every ranked baseline on "
                  f"{t['heldout_wins']} of {t['heldout_n']} held-out workloads. Best finalist on held-out: "
                  f"{html.escape(str(t['best_on_heldout']))} (shown, not chosen).</p>", table(t["heldout"], labels)]
    return "".join(parts)


def _metrics_table(rows: list[tuple[str, dict, Any]], shown_label: str = "", shown=None) -> str:
    keys: list[str] = []
    for _, m, _ in rows:
        for k, v in m.items():
            if isinstance(v, (int, float)) and k not in keys:
                keys.append(k)
    keys = keys[:8]
    extra = f"<th>{html.escape(shown_label)}</th>" if shown_label else ""
    head = f"<tr><th>policy</th>{extra}<th>score</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>"
    body = []
    for name, m, score in rows:
        cells = "".join(f"<td>{m[k]:.6g}</td>" if isinstance(m.get(k), (int, float)) else "<td></td>" for k in keys)
        sc = "" if score is None else f"{score:.6f}"
        shown_cell = (f"<td>{'' if score is None else format(shown(score), '.6f')}</td>" if shown_label else "")
        style = ' style="font-weight:bold;background:#fee"' if name.startswith("winner") else ""
        body.append(f"<tr{style}><td>{html.escape(name)}</td>{shown_cell}<td>{sc}</td>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def write_report(out_dir: Path, store: Store, task: Task, command: str = "") -> dict[str, Any]:
    """Writes report.html, best.json, the plots and winner/; returns the summary."""
    out_dir = Path(out_dir)
    best = store.best()
    cmp = comparison(store)
    suite = suite_tables(store)
    cfg = store.meta("config") or {}
    score_label = task.score_label
    if cfg.get("suite"):
        from .suite import Suite
        score_label = Suite.from_json(cfg["suite"]).label(task.score_label)
    shown_label = "" if cfg.get("suite") else task.shown_label
    images = plots(store, out_dir, shown_label or score_label, task.shown if shown_label else None)
    cands = store.candidates()
    status_counts: dict[str, int] = {}
    for c in cands:
        status_counts[c["status"]] = status_counts.get(c["status"], 0) + 1
    exported: dict[str, Any] = {}
    if best is not None:
        winner_dir = out_dir / "winner"
        winner_dir.mkdir(exist_ok=True)
        check_dir = out_dir / "shared" / "winner-check"
        if check_dir.exists():                # the report's own, from an earlier report of this run
            shutil.rmtree(check_dir)
        check_dir.mkdir(parents=True)
        check = task.check(best["source"], check_dir)
        if check.ok:
            exported = task.export(best["source"], check, winner_dir)
            if not cfg.get("suite"):          # the winner and the best 4 baselines along the task's curve
                top = [b["name"] for b in sorted((b for b in cmp["baselines"] if b["ranked"] and b["ok"]
                                                  and b["score"] is not None), key=lambda b: -b["score"])[:4]]
                curve = task.curves(check, top)
                if curve and curve.get("series"):
                    images["curves"] = _curve_png(curve, out_dir)
        else:
            exported = {"error": f"winner no longer passes the check: {check.feedback[:300]}"}
    plane = tradeoff_png(task, store, cmp, out_dir)
    if plane:
        images["tradeoff"] = plane
    per_ack = acks_png(store, cmp, out_dir)
    if per_ack:
        images["cwnd_and_rtt_at_every_ack"] = per_ack
    margin = paired_margin(json.loads(best["metrics"] or "{}"), cmp["baselines"]) if best is not None else None
    summary = {
        "run": str(out_dir), "task": task.name, "score_label": score_label, "suite": suite,
        "command": command, "commit": git_commit(), "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "candidates": len(cands), "status": status_counts,
        "cost_usd": store.total_cost(),
        "winner": None if best is None else {
            "id": best["id"], "round": best["round"], "score": best["score"],
            "shown": task.shown(best["score"]) if shown_label else None,
            "generator": best["generator"], "model": best["model"],
            "metrics": json.loads(best["metrics"] or "{}"), "source": best["source"],
            "genome": json.loads(best["genome"]) if best["genome"] else None},
        "beats": cmp["beats"], "ranked_baselines": cmp["ranked"], "beats_all": cmp["beats_all"],
        "baselines": {b["name"]: {"score": b["score"], "ranked": b["ranked"], "metrics": b["metrics"],
                                  "shown": task.shown(b["score"]) if shown_label and b["score"] is not None else None}
                      for b in cmp["baselines"]},
        "shown_label": shown_label,
        # runs repeated because a testbed's own timing was off (cc: the link emulator was late)
        "emulator_repeats": sum(json.loads(c["metrics"] or "{}").get("emulator_repeats", 0) or 0 for c in cands)
        + sum(b["metrics"].get("emulator_repeats", 0) or 0 for b in cmp["baselines"]),
        "gap": gap_to_bound(best["score"] if best is not None else None, cmp["baselines"]),
        "margin": margin,
        "task_options": task.describe_run(),
        "export": exported,
        "attempts": attempt_stats(store),
        "winner_lineage": lineage(store, best["id"]) if best is not None else [],
    }
    (out_dir / "best.json").write_text(json.dumps(summary, indent=2, default=str))

    rows = []
    if best is not None:
        rows.append((f"winner (candidate {best['id']})", json.loads(best["metrics"] or "{}"), best["score"]))
    for b in cmp["baselines"]:
        rows.append((b["name"] + ("" if b["ranked"] else " (bound)"), b["metrics"], b["score"]))
    imgs = "".join(f'<h3>{html.escape(k.replace("_", " "))}</h3><img src="data:image/png;base64,{v}">'
                   for k, v in images.items())
    src = html.escape(best["source"]) if best is not None else "(no candidate was scored)"
    usage = html.escape(str(exported.get("usage", ""))) if exported else ""
    verdict = (f"beats {len(cmp['beats'])} of {len(cmp['ranked'])} ranked baselines"
               + (" — all of them" if cmp["beats_all"] else ""))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>policyforge {task.name} report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse;font-size:0.85em}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>
<h1>policyforge: {html.escape(task.title)}</h1>
<p>Run <code>{html.escape(str(out_dir))}</code>, {summary['date']}, commit {summary['commit']}, on {html.escape(summary['machine'])}.<br>
Command: <code>{html.escape(command)}</code><br>
Candidates: {len(cands)} ({html.escape(', '.join(f'{k} {v}' for k, v in sorted(status_counts.items())))}); LLM cost ${summary['cost_usd']:.4f}.
{f"<br>Runs repeated because the testbed's timing was off (never scored): {summary['emulator_repeats']}." if summary['emulator_repeats'] else ""}</p>
<h2>Winner: {verdict}</h2>
<p>Score = {html.escape(score_label)} (higher is better){html.escape('; shown as ' + shown_label if shown_label else '')}.</p>
{_gap_html(summary["gap"])}
{_margin_html(margin)}
{_metrics_table(rows, shown_label, task.shown)}
{_suite_html(suite)}
<h2>Winner source</h2><pre>{src}</pre>
{_attempts_html(summary["attempts"], summary["winner_lineage"])}
<h2>Deploy</h2><pre>{usage}</pre>
<h2>Plots</h2>{imgs}
<h2>Task options</h2><pre>{html.escape(json.dumps(task.describe_run(), indent=2, default=str))}</pre>
</body></html>"""
    (out_dir / "report.html").write_text(page)
    return summary


def gap_text(gap: dict[str, Any] | None) -> str:
    if not gap:
        return ""
    c = gap["closed"]
    if c >= 0:
        return (f"closes {100 * c:.1f} % of the gap from the best baseline ({gap['best_baseline']}) "
                f"to {gap['bound']}")
    return (f"is behind the best baseline ({gap['best_baseline']}) by {-gap['margin']:.4g} in score, "
            f"{-100 * c:.1f} % of the distance from it to {gap['bound']}")


def margin_text(m: dict[str, Any] | None) -> str:
    if not m:
        return ""
    if m["low"] is None:
        return f"margin over {m['baseline']}: {m['margin']:+.4g} (one window: no confidence interval)"
    verdict = ("ahead" if m["low"] > 0 else "behind" if m["high"] < 0 else "not distinguishable from it")
    return (f"margin over {m['baseline']}: {m['margin']:+.4g}, 90 % interval [{m['low']:+.4g}, {m['high']:+.4g}] "
            f"over {m['n']} windows: {verdict}")


def _margin_html(m: dict[str, Any] | None) -> str:
    return f"<p>Paired by window, {html.escape(margin_text(m))}.</p>" if m else ""


def _gap_html(gap: dict[str, Any] | None) -> str:
    return f"<p>The winner {html.escape(gap_text(gap))}.</p>" if gap else ""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def _attempts_html(st: dict[str, Any], lin: list[dict[str, Any]]) -> str:
    """Checks and repairs: pass rates per round, failures by stage, spend per model, and the
    winner's lineage with the feedback that led to it."""
    if not st["candidates"]:
        return ""
    stages = st["stages"]
    head = ("<tr><th>round</th><th>generated</th><th>first try ok</th><th>ok after repair</th><th>never ok</th>"
            "<th>repairs</th>" + "".join(f"<th>failed: {html.escape(s)}</th>" for s in stages) + "</tr>")
    body = "".join(
        f"<tr><td>{r}</td><td>{v['candidates']}</td><td>{v['first_try']}</td><td>{v['after_repair']}</td>"
        f"<td>{v['never']}</td><td>{v['repairs']}</td>"
        + "".join(f"<td>{v['failed_by_stage'].get(s, 0)}</td>" for s in stages) + "</tr>"
        for r, v in st["rounds"].items())
    mhead = "<tr><th>model</th><th>candidates</th><th>calls</th><th>scored</th><th>tokens in</th><th>tokens out</th><th>USD</th></tr>"
    mbody = "".join(f"<tr><td>{html.escape(m)}</td><td>{v['candidates']}</td><td>{v['calls']}</td><td>{v['scored']}</td>"
                    f"<td>{v['tokens_in']}</td><td>{v['tokens_out']}</td><td>{v['cost_usd']:.4f}</td></tr>"
                    for m, v in st["models"].items())
    lrows = []
    for c in lin:
        sc = "" if c["score"] is None else f"{c['score']:.6f}"
        fb = "<br>".join(f"attempt {f['attempt']} ({html.escape(f['stage'])}): {html.escape(f['feedback'])}"
                         for f in c["failed_attempts"])
        lrows.append(f"<tr><td>{c['id']}</td><td>{c['round']}</td><td>{html.escape(c['operation'])}</td>"
                     f"<td>{sc}</td><td>{', '.join(map(str, c['parents'])) or '-'}</td><td style='text-align:left'>{fb}</td></tr>")
    return (f"<h2>Checks and repairs</h2><p>First try passed the checker: {_pct(st['first_try_pass_rate'])} of "
            f"{st['candidates']} generated candidates; after repairs: {_pct(st['pass_rate_after_repairs'])}.</p>"
            f"<table>{head}{body}</table><h3>Spend per model</h3><table>{mhead}{mbody}</table>"
            "<h3>Winner lineage</h3><table><tr><th>candidate</th><th>round</th><th>operation</th><th>score</th>"
            f"<th>parents</th><th>failed attempts (feedback)</th></tr>{''.join(lrows)}</table>")
