"""Self-contained offline HTML reports: one per run, one trend per suite; plots embedded as PNG (base64).

A run's report: its decision and rules, pass rates per criterion, per category against its baseline, the judges'
confusion matrices from their calibrations, what it called and spent against its estimate, the scorers its
tier did not run, the cases whose verdict changed between repeats, and the suite's trend with the run marked.
The trend report: pass rate over runs with interval bands per tier, and cost and latency over runs.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from pathlib import Path
from typing import Any

import polars as pl

from evalplatform.errors import InfraError, InputError
from evalplatform.history import HistoryStore
from evalplatform.project import Project

TREND_RUNS = 30
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f5f5f5} td.n{text-align:right;font-variant-numeric:tabular-nums}
.PASS{color:#1a7f37;font-weight:600} .FAIL,.BLOCK,.ERROR{color:#cf222e;font-weight:600}
.INCONCLUSIVE,.NO_DATA{color:#9a6700;font-weight:600} .muted{color:#666} img{max-width:100%}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{_e(c)}</td>' if i in numeric else f"<td>{c if isinstance(c, _Raw) else _e(c)}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class _Raw(str):
    """Markup built here from escaped parts (an outcome with its colour class)."""


def _outcome(text: str) -> _Raw:
    return _Raw(f'<span class="{_e(text)}">{_e(text)}</span>')


def _page(title: str, body: str) -> str:
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style>"
            f"</head><body>{body}<p class='muted'>made by evalplatform report, {made}; offline and self-contained"
            "</p></body></html>")


# -- numbers -------------------------------------------------------------------------------------------


def _rate(rows: pl.DataFrame) -> dict[str, float | None]:
    """Case-level pass rate with a two-sided 95% interval, clustered by case (repeats are not independent)."""
    from evalplatform.policy.metrics import pass_rate
    from evalplatform.policy.model import Rule
    from evalplatform.policy.units import Missing, RuleFailure, Selected

    rule = Rule(id="report", metric="pass_rate", bound={"min": 0.0}, confidence=0.975)
    try:
        n = pass_rate(Selected(rows), rule)
    except (Missing, RuleFailure):
        return {"estimate": None, "lower": None, "upper": None, "n": 0}
    return {"estimate": n["estimate"], "lower": n["lower"], "upper": n["upper"], "n": n.get("n")}


def _gating_rows(results: pl.DataFrame, advisory: list[str]) -> pl.DataFrame:
    return results.filter(~pl.col("scorer").is_in(advisory) & (pl.col("outcome") != "skipped"))


def _category(results: pl.DataFrame) -> pl.DataFrame:
    cat = results["tags"].list.eval(pl.element().filter(pl.element().str.starts_with("category:")).str.slice(9))
    return results.with_columns(cat.list.first().fill_null("(none)").alias("_category"))


def category_rates(results: pl.DataFrame, advisory: list[str]) -> list[dict[str, Any]]:
    rows = _category(_gating_rows(results, advisory))
    return [{"category": name, **_rate(part)} for (name,), part in sorted(rows.group_by("_category"),
                                                                       key=lambda kv: kv[0][0])]


def trend_points(store: HistoryStore, suite: str, advisory: list[str], limit: int = TREND_RUNS) -> list[dict]:
    """Per complete run of the suite (oldest first): pass rate with interval, costs, P95 latency, decision."""
    from evalplatform import results as rt

    runs = store.list_runs(suite, limit=limit)
    points = []
    for index, run in enumerate(reversed(list(runs.iter_rows(named=True)))):
        results = store.get_results(run["run_id"])
        calls = rt.call_rows(results)["latency_ms"].drop_nulls()
        points.append({
            "run_id": run["run_id"], "tier": run["tier"] or "?", "index": index, "decision": run["decision"],
            "model": run["target_model"], "started_at": run["started_at"],
            **_rate(_gating_rows(results, advisory)),
            "target_cost_usd": float(run["cost_usd"] or 0.0), "judge_cost_usd": float(run.get("judge_cost_usd") or 0.0),
            "judge_calls": int(run.get("judge_calls") or 0), "model_calls": int(run["model_calls"] or 0),
            "latency_p95_ms": float(calls.quantile(0.95, "nearest")) if calls.len() else None,
            "n_flaky_cases": run.get("n_flaky_cases"),
        })
    return points


def _confusions(store: HistoryStore, run: dict) -> list[dict[str, Any]]:
    """The calibration of each judge identity the run pinned and ran (LLM and trained judges)."""
    from evalplatform.judges.calibrate import latest_calibration

    ran = set(((run.get("provenance") or {}).get("scorers") or {}).get("run") or (run.get("judge_pins") or {}))
    out = []
    for scorer, key in sorted((run.get("judge_pins") or {}).items()):
        if scorer not in ran:
            continue
        cal = latest_calibration(store, str(key))
        if cal is None:
            continue
        out.append({"name": scorer, "allowed": bool(cal.get("allowed")), "table": [
            [cal["judge_fail_human_fail"], cal["judge_fail_human_pass"]],
            [cal["judge_pass_human_fail"], cal["judge_pass_human_pass"]]]})
    return out


# -- pages ---------------------------------------------------------------------------------------------


def _keep(png: bytes, name: str, plots_out: dict[str, bytes] | None) -> bytes:
    """The plot, also kept under its file name when the caller saves the plots as PNG files (--plots)."""
    if plots_out is not None:
        plots_out[f"report_{name}.png"] = png
    return png


def _trend_section(points: list[dict], floor: float | None, mark: str | None = None,
                   plots_out: dict[str, bytes] | None = None) -> str:
    from evalplatform import plots

    rows = [[p["run_id"], p["tier"], p["model"], _outcome(p["decision"] or "-"),
             "-" if p["estimate"] is None else f"{p['estimate']:.3f}",
             "-" if p["lower"] is None else f"[{p['lower']:.3f}, {p['upper']:.3f}]",
             f"{p['model_calls']}", f"{p['judge_calls']}", f"${p['target_cost_usd'] + p['judge_cost_usd']:.4f}",
             "-" if p["latency_p95_ms"] is None else f"{p['latency_p95_ms']:.0f}"] for p in reversed(points)]
    return ("<h2>Pass rate over runs</h2>"
            + _img(_keep(plots.trend(points, floor=floor, mark=mark), "pass_rate", plots_out), "pass rate trend")
            + "<h2>Cost and latency over runs</h2>"
            + _img(_keep(plots.cost_latency(points), "cost_latency", plots_out), "cost and latency")
            + _table(["run", "tier", "model", "decision", "pass rate", "95% interval", "target calls", "judge calls",
                      "cost", "P95 ms"], rows, {4, 5, 6, 7, 8, 9}))


def _advisory(suite) -> list[str]:
    from evalplatform.decide import effective_policy

    return list(effective_policy(suite).policy.advisory_scorers)


def _floor(suite) -> float:
    return suite.spec.gate.pass_rate_floor


def trend_report(project: Project, suite_name: str, store: HistoryStore | None = None,
                 plots_out: dict[str, bytes] | None = None) -> str:
    from evalplatform.pipeline import resolve_suite

    suite = resolve_suite(project, suite_name)
    store = store or HistoryStore(project.history_path)
    points = trend_points(store, suite.name, _advisory(suite))
    body = (f"<h1>Suite {_e(suite.name)}: trend</h1><p class='muted'>the latest {len(points)} complete runs "
            f"(at most {TREND_RUNS}); pass rate of the gating scorers per case, clustered by case</p>"
            + _trend_section(points, _floor(suite), plots_out=plots_out))
    return _page(f"{suite.name} trend", body)


def run_report(project: Project, suite_name: str, run_id: str, store: HistoryStore | None = None,
               plots_out: dict[str, bytes] | None = None) -> str:
    from evalplatform import plots
    from evalplatform.flakiness import flaky_cases
    from evalplatform.pipeline import resolve_suite
    from evalplatform.report import criterion_table, usage, usage_lines

    suite = resolve_suite(project, suite_name)
    store = store or HistoryStore(project.history_path)
    run = store.get_run(run_id)
    if run is None:
        raise InputError(None, "--run", f"no run {run_id!r} in {store.path}", "see `evalplatform history list`")
    if run["suite"] != suite.name:
        raise InputError(None, "--run", f"run {run['run_id']} belongs to suite {run['suite']!r}, not {suite.name!r}")
    decision = store.decision_of_record(run["run_id"])
    if run["status"] != "complete" or decision is None:
        raise InputError(None, "--run", f"run {run['run_id']} is {run['status']} without a decision: nothing to report",
                         "pick a complete run (evalplatform history list)")
    from evalplatform.policy import Decision

    dec = Decision.from_record(decision)
    results = store.get_results(run["run_id"])
    advisory = _advisory(suite)
    base_id = (dec.inputs or {}).get("baseline_run_id")
    base_rates = category_rates(store.get_results(base_id), advisory) if base_id else None
    parts = [f"<h1>Run {_e(run['run_id'])}: {_outcome(str(dec.overall))}</h1>",
             f"<p>suite <b>{_e(suite.name)}</b>, {_e(run['tier'])} tier, model <b>{_e(run['target_model'])}</b>, "
             f"{_e(run.get('n_cases'))} cases x {_e(run.get('repeats'))} repeat(s), commit "
             f"{_e((run.get('git_commit') or '')[:12])}, started {_e(run['started_at'])}; baseline "
             f"{_e(base_id or 'none')}</p>"]
    parts.append("<h2>Release policy</h2>" + _table(
        ["rule", "severity", "outcome", "estimate", "bounds", "reason"],
        [[r.rule_id, r.severity, _outcome(str(r.outcome) + (" (blocks)" if r.blocks else "")),
          "-" if r.numbers.get("estimate") is None else f"{r.numbers['estimate']:.3f}",
          "-" if r.numbers.get("lower") is None else f"[{r.numbers['lower']:.3f}, {r.numbers['upper']:.3f}]",
          r.reason] for r in dec.rules], {3, 4}))
    parts.append("<h2>Pass rate per criterion</h2>" + _table(
        ["criterion", "pass rate", "95% Wilson interval", "n", "errors"],
        [[c["criterion"], "-" if c["rate"] is None else f"{c['rate']:.1%}",
          f"[{c['lower']:.1%}, {c['upper']:.1%}]" if c["n"] else "-", c["n"], c["errors"]]
         for c in criterion_table(results)], {1, 2, 3, 4}))
    parts.append("<h2>Per category" + (" against the baseline" if base_rates else "") + "</h2>"
                 + _img(_keep(plots.categories(category_rates(results, advisory), base_rates), "categories",
                              plots_out), "categories"))
    parts.append("<h2>Judges against the human labels (calibration)</h2>"
                 + _img(_keep(plots.confusion(_confusions(store, run)), "judges", plots_out),
                        "judge confusion matrices"))
    u = usage(results)
    parts.append("<h2>Calls and cost</h2><pre>" + _e("\n".join(usage_lines(run, results, dec))) + "</pre>")
    if u["by_scorer"]:
        parts.append(_table(["judge", "verdicts", "model calls", "tokens in", "tokens out", "cost"],
                            [[k, v["verdicts"], v["calls"], v["tokens_in"], v["tokens_out"], f"${v['cost_usd']:.4f}"]
                             for k, v in u["by_scorer"].items()], {1, 2, 3, 4, 5}))
    flaky = flaky_cases(results)
    parts.append(f"<h2>Cases whose verdict changed between repeats ({flaky['case_id'].n_unique()})</h2>")
    if flaky.height:
        parts.append(_table(["case", "scorer", "repeats", "pass", "fail", "error", "distinct outputs", "same output"],
                            [[r["case_id"], r["scorer"], r["n_repeats"], r["n_pass"], r["n_fail"], r["n_error"],
                              r["n_outputs"], "yes" if r["judge_only"] else "no"]
                             for r in flaky.head(200).iter_rows(named=True)], {2, 3, 4, 5, 6}))
    else:
        parts.append("<p class='muted'>none" + (" (one repeat: nothing to compare)" if (run.get("repeats") or 1) < 2
                                                 else "") + "</p>")
    points = trend_points(store, suite.name, advisory)
    parts.append(_trend_section(points, _floor(suite), mark=run["run_id"], plots_out=plots_out))
    return _page(f"{suite.name} run {run['run_id']}", "".join(parts))


def default_path(project: Project, suite: str, run_id: str | None) -> Path:
    return project.state_dir / "reports" / suite / f"{run_id or 'trend'}.html"


def write_report(project: Project, suite: str, run_id: str | None = None, out: Path | None = None,
                 store: HistoryStore | None = None, plots_dir: Path | None = None) -> Path:
    """Render the run's report (or the suite's trend without a run) to `out` (default under the state folder);
    with `plots_dir`, each plot is also saved there as a PNG file (report_pass_rate.png, ...)."""
    if out is not None and Path(out).is_dir():
        raise InputError(out, "--out", "is a folder", "give the report's file name, e.g. report.html")
    if plots_dir is not None and Path(plots_dir).exists() and not Path(plots_dir).is_dir():
        raise InputError(plots_dir, "--plots", "is a file, not a folder", "give a folder for the PNG files")
    kept: dict[str, bytes] | None = {} if plots_dir is not None else None
    store = store or HistoryStore(project.history_path)
    with store.shared_reads():  # a report reads every run of the trend: one connection, not one per read
        page = run_report(project, suite, run_id, store, kept) if run_id else trend_report(project, suite, store, kept)
    if plots_dir is not None:
        _write_plots(Path(plots_dir), kept or {})
    path = Path(out) if out is not None else default_path(project, suite, run_id and _full_id(store, project, run_id))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        if out is not None:  # the path the user gave: their input to fix
            raise InputError(out, "--out", f"cannot write: {exc.strerror or exc}") from None
        raise InfraError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
    return path


def _write_plots(folder: Path, plots: dict[str, bytes]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, png in plots.items():
            tmp = folder / (name + ".part")
            tmp.write_bytes(png)
            tmp.replace(folder / name)
    except OSError as exc:  # the folder the user gave: their input to fix
        raise InputError(folder, "--plots", f"cannot write the plots: {exc.strerror or exc}") from None


def _full_id(store: HistoryStore | None, project: Project, run_id: str) -> str:
    run = (store or HistoryStore(project.history_path)).get_run(run_id)
    return run["run_id"] if run else run_id
