"""The plan of a policy on a tier as plain text: per rule its size, best bound, chance to pass and what it detects."""

from __future__ import annotations

from typing import Sequence

from evalplatform.planning import RulePlan, TierPlan, _fmt


def plan_table(plans: TierPlan | Sequence[TierPlan]) -> str:
    """Plain-text table of one or more tier plans: what `evalplatform plan` prints."""
    plans = [plans] if isinstance(plans, TierPlan) else list(plans)
    out: list[str] = []
    for p in plans:
        ad = p.adaptive
        extension = (f"adaptive: up to {ad['max_extra_cases']} more cases / {ad['max_extra_repeats']} more repeats, "
                     f"{ad['max_looks']} looks, {ad['spending']} spending" if ad.get("enabled") else "adaptive: off")
        out.append(f"suite {p.suite}, tier {p.tier}: {p.n_cases} cases x {p.repeats} repeat(s); {extension}")
        out.append(f"rates: {p.evidence_note}")
        header = ["rule", "severity", "cases", "bound", "best bound", "pass needs", "rate", "P(PASS)",
                  "false block", "detects (80%)", "note"]
        rows = [header]
        for r in p.rules:
            n = f"{r.n}" + (f"+{r.n_max - r.n}" if r.n_max > r.n and r.schedule.extension == "cases" else "") \
                + (f" (+{r.schedule.extra_repeats[-1]} rep)" if r.schedule.extension == "repeats" else "")
            detect = "n/a" if r.detectable is None else (
                f"drop {r.detectable * 100:.1f} pts" if r.kind == "paired" or rule_is_floor(r) else
                f"rise {r.detectable * 100:.1f} pts")
            notes = ["REFUSED: cannot pass" if r.refused else "cannot pass"] if r.can_pass is False else []
            notes += r.notes
            if r.rate is None and r.kind != "point" and r.n and r.safe_rate is not None:
                notes.append(f"rate unknown; risk <= 5% at rate {'>=' if rule_is_floor(r) else '<='} "
                             f"{r.safe_rate:.3f}")
            elif r.rate is None and r.kind != "point" and r.n:
                notes.append("rate unknown")
            note = "; ".join(notes)
            rows.append([
                r.rule_id, r.severity, n, r.bound, _fmt(r.best_bound), "-" if r.n_needed is None else str(r.n_needed),
                _fmt(r.rate) + (f" psi {r.discordance:.3f}" if r.kind == "paired" and r.discordance is not None
                                else ""),
                _pct(r.p_pass), _pct(r.false_block_risk), detect, note])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        for line in p.warnings():
            out.append(f"warning: {line}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def rule_is_floor(r: RulePlan) -> bool:
    return r.bound.startswith(">=")


def _pct(x: float | None) -> str:
    if x is None:
        return "unknown"
    if 0 < x < 0.001:
        return "<0.1%"
    if 0.999 < x < 1:
        return ">99.9%"
    return f"{x:.1%}"
