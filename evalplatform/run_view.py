"""A scored run as people read it: its failing cases and per-criterion rates, for the CLI and Dagster's metadata."""

from __future__ import annotations

import polars as pl

from evalplatform.report import criterion_table

FAILURE_COLUMNS = ("case_id", "repeat", "category", "scorer", "criterion", "outcome", "reason")


def _category() -> pl.Expr:
    return (pl.col("tags").list.eval(pl.element().filter(pl.element().str.starts_with("category:")).str.slice(9))
            .list.first().fill_null("(none)"))


def failing_cases(results: pl.DataFrame, limit: int | None = None) -> pl.DataFrame:
    """Every scorer row that failed or errored, with why: the error, the judge's reasoning, or score vs threshold."""
    bad = results.filter(pl.col("outcome").is_in(["fail", "error"]))
    reason = (
        pl.when(pl.col("outcome") == "error").then(pl.col("error").fill_null("error (no message)"))
        .when(pl.col("explanation").is_not_null() & (pl.col("explanation").str.len_chars() > 0))
        .then(pl.col("explanation"))
        .otherwise(pl.format("score {} < threshold {}", pl.col("score").round(3), pl.col("threshold")))
    )
    out = (bad.with_columns(_category().alias("category"), reason.str.replace_all(r"\s+", " ").alias("reason"))
           .select(*FAILURE_COLUMNS).sort("case_id", "repeat", "scorer"))
    return out.head(limit) if limit is not None else out


def md_cell(value: object, width: int = 160) -> str:
    """Text safe inside a Markdown table cell: no pipes, newlines, HTML or active mentions; shortened."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    for ch, rep in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`"), ("@", "@\u200b")):
        text = text.replace(ch, rep)
    return text


def failing_cases_markdown(results: pl.DataFrame, limit: int = 100) -> str:
    rows = failing_cases(results)
    if rows.height == 0:
        return "No case failed or errored."
    lines = ["| case | category | scorer | outcome | reason |", "|---|---|---|---|---|"]
    for r in rows.head(limit).iter_rows(named=True):
        case = r["case_id"] + (f" (repeat {r['repeat']})" if r["repeat"] else "")
        lines.append(f"| {md_cell(case)} | {md_cell(r['category'])} | {md_cell(r['scorer'])} | {r['outcome']} | "
                     f"{md_cell(r['reason'])} |")
    if rows.height > limit:
        lines.append(f"\n{rows.height - limit} more: `evalplatform history show <run> --failures` lists them all.")
    return "\n".join(lines)


def criterion_markdown(results: pl.DataFrame, conf: float = 0.95) -> str:
    lines = [f"| criterion | pass rate | {conf:.0%} Wilson interval | n | errors |", "|---|---|---|---|---|"]
    for r in criterion_table(results, conf):
        rate = "-" if r["rate"] is None else f"{r['rate']:.1%}"
        ci = f"[{r['lower']:.1%}, {r['upper']:.1%}]" if r["n"] else "-"
        lines.append(f"| {md_cell(r['criterion'])} | {rate} | {ci} | {r['n']} | {r['errors']} |")
    return "\n".join(lines)


def rules_markdown(rules: list[dict]) -> str:
    """The decision's rules: outcome, estimate with its bounds, threshold and reason."""
    lines = ["| rule | severity | outcome | estimate | bounds | reason |", "|---|---|---|---|---|---|"]
    for r in rules:
        n = r.get("numbers") or {}
        est = "-" if n.get("estimate") is None else f"{n['estimate']:.3f}"
        bounds = "-" if n.get("lower") is None else f"[{n['lower']:.3f}, {n['upper']:.3f}]"
        outcome = r["outcome"] + (" (blocks)" if r.get("blocks") else "")
        lines.append(f"| {md_cell(r['rule_id'])} | {r['severity']} | {outcome} | {est} | {bounds} | "
                     f"{md_cell(r.get('reason'))} |")
    return "\n".join(lines)
