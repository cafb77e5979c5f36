"""The report's plots as PNG bytes, drawn offline with matplotlib's Agg backend (imported only when a report is made)."""

from __future__ import annotations

import io
from typing import Any, Sequence

# One colour per tier and per side, the same in every plot of a report.
TIER_COLORS = {"pr": "#1f77b4", "nightly": "#9467bd"}
SIDE_COLORS = {"candidate": "#1f77b4", "baseline": "#aaaaaa"}
_DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display, no GUI toolkit: the same pixels everywhere
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def trend(points: Sequence[dict[str, Any]], *, floor: float | None = None, mark: str | None = None) -> bytes:
    """Pass rate over runs, per tier, with its interval as a band; `floor` as a line, run `mark` circled.

    Each point: {run_id, tier, index, estimate, lower, upper}; `index` orders the runs on the x axis.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    if not points:
        _empty(ax, "no complete run yet")
        return _png(fig)
    for tier in sorted({p["tier"] for p in points}):
        pts = sorted((p for p in points if p["tier"] == tier and p["estimate"] is not None), key=lambda p: p["index"])
        if not pts:
            continue
        x = [p["index"] for p in pts]
        color = TIER_COLORS.get(tier, "#2ca02c")
        ax.fill_between(x, [p["lower"] for p in pts], [p["upper"] for p in pts], color=color, alpha=0.18, lw=0)
        ax.plot(x, [p["estimate"] for p in pts], "o-", color=color, ms=4, label=f"{tier} tier")
    if floor is not None:
        ax.axhline(floor, color="#d62728", ls="--", lw=1, label=f"floor {floor:g}")
    marked = [p for p in points if p["run_id"] == mark and p["estimate"] is not None]
    if marked:
        ax.plot([marked[0]["index"]], [marked[0]["estimate"]], "o", ms=11, mfc="none", mec="black", label="this run")
    ax.set_ylim(max(0.0, min(p["lower"] for p in points if p["lower"] is not None) - 0.05), 1.01)
    ax.set_xlabel("run (oldest to newest)")
    ax.set_ylabel("case pass rate (95% interval)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8, ncol=4)
    return _png(fig)


def categories(rows: Sequence[dict[str, Any]], baseline: Sequence[dict[str, Any]] | None = None) -> bytes:
    """Pass rate per category with its interval as error bars; the baseline's beside the candidate's."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    if not rows:
        _empty(ax, "no category")
        return _png(fig)
    names = [r["category"] for r in rows]
    sides = [("candidate", rows)] + ([("baseline", baseline)] if baseline else [])
    width = 0.8 / len(sides)
    for i, (side, data) in enumerate(sides):
        by = {r["category"]: r for r in data}
        est = [by[n]["estimate"] if n in by and by[n]["estimate"] is not None else 0.0 for n in names]
        lo = [max(0.0, e - by[n]["lower"]) if n in by and by[n]["lower"] is not None else 0.0
              for n, e in zip(names, est)]
        hi = [max(0.0, by[n]["upper"] - e) if n in by and by[n]["upper"] is not None else 0.0
              for n, e in zip(names, est)]
        x = [j + (i - (len(sides) - 1) / 2) * width for j in range(len(names))]
        ax.bar(x, est, width=width * 0.95, yerr=[lo, hi], capsize=3, color=SIDE_COLORS[side], label=side)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("case pass rate (95% interval)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def confusion(matrices: Sequence[dict[str, Any]]) -> bytes:
    """One 2x2 judge-versus-human table per judge: {name, table: [[jF/hF, jF/hP], [jP/hF, jP/hP]], allowed}."""
    plt = _pyplot()
    n = max(1, len(matrices))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.0), squeeze=False)
    if not matrices:
        _empty(axes[0][0], "no calibrated judge in this run")
        return _png(fig)
    for ax, m in zip(axes[0], matrices):
        table = m["table"]
        ax.imshow(table, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(table[i][j]), ha="center", va="center", fontsize=12,
                        color="white" if table[i][j] > max(max(r) for r in table) / 2 else "black")
        ax.set_xticks([0, 1], ["human FAIL", "human PASS"])
        ax.set_yticks([0, 1], ["judge FAIL", "judge PASS"])
        ax.set_title(f"{m['name']}\n({'may gate' if m.get('allowed') else 'refused'})", fontsize=9)
    return _png(fig)


def cost_latency(points: Sequence[dict[str, Any]]) -> bytes:
    """Per run: the target's and the judges' cost (stacked) and the P95 model latency."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), sharex=True)
    if not points:
        _empty(top, "no complete run yet")
        _empty(bottom, "")
        return _png(fig)
    pts = sorted(points, key=lambda p: p["index"])
    x = [p["index"] for p in pts]
    target = [p.get("target_cost_usd") or 0.0 for p in pts]
    judges = [p.get("judge_cost_usd") or 0.0 for p in pts]
    top.bar(x, target, color="#1f77b4", label="target")
    top.bar(x, judges, bottom=target, color="#ff7f0e", label="judges")
    top.set_ylabel("cost (USD)")
    # Cost is never negative; runs of local (free) models alone would otherwise centre the axis on zero.
    top.set_ylim(bottom=0, top=None if max(t + j for t, j in zip(target, judges)) > 0 else 0.01)
    if not any(t + j for t, j in zip(target, judges)):
        top.text(0.5, 0.5, "$0 in every run", transform=top.transAxes, ha="center", va="center",
                 color="#666")
    top.legend(fontsize=8)
    top.grid(axis="y", alpha=0.3)
    for tier in sorted({p["tier"] for p in pts}):
        tp = [p for p in pts if p["tier"] == tier and p.get("latency_p95_ms") is not None]
        if tp:
            bottom.plot([p["index"] for p in tp], [p["latency_p95_ms"] for p in tp], "o-", ms=4,
                        color=TIER_COLORS.get(tier, "#2ca02c"), label=f"{tier} tier")
    bottom.set_ylabel("P95 latency (ms)")
    bottom.set_xlabel("run (oldest to newest)")
    bottom.grid(alpha=0.3)
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(fontsize=8)
    return _png(fig)
