"""The `gate` and `import` verbs: judge any result file (or a recorded run) by a policy; convert foreign results."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalplatform.cli import EXIT_BLOCKED, EXIT_PASS, command
from evalplatform.errors import InputError

MAX_BYTES_ENV = "EVALPLATFORM_IMPORT_MAX_BYTES"


def _max_bytes(args: argparse.Namespace) -> int:
    from evalplatform.importers import DEFAULT_MAX_BYTES

    raw = args.max_bytes if args.max_bytes is not None else os.environ.get(MAX_BYTES_ENV)
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise InputError(None, "--max-bytes" if args.max_bytes is not None else MAX_BYTES_ENV,
                         f"expected a number of bytes, got {raw!r}") from None
    if value < 1:
        raise InputError(None, "--max-bytes", "must be at least 1")
    return value


# The importers' format names, spelled out so that building the CLI parser does not import every
# importer (0.26 s on each command); tests/evalplatform/test_cli.py keeps it equal to the registry.
FORMAT_NAMES = ("csv", "deepeval", "inspect", "inspect-eval", "jsonl", "junit", "parquet", "promptfoo",
                "promptfoo-csv", "promptfoo-jsonl")


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="auto",
                   help=f"auto (detect per file, the default) or one of {', '.join(FORMAT_NAMES)}")
    p.add_argument("--max-bytes", default=None,
                   help=f"refuse result files above this size (default: ${MAX_BYTES_ENV} or 2 GiB)")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _configure_gate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", nargs="+", metavar="FILE", help="result files (any supported tool's format)")
    p.add_argument("--run", metavar="RUN_ID",
                   help="with --results: the run id to give the imported results; alone: gate this recorded run")
    p.add_argument("--policy", required=True, help="policy file (YAML)")
    p.add_argument("--baseline", metavar="RUN_ID|FILE|promoted",
                   help="what relative rules compare against: a recorded run, a result file, or the suite's "
                        "promoted baseline")
    p.add_argument("--calibrations", metavar="FILE",
                   help="judge calibration records (YAML/JSON mapping name -> counts) for judge_corrected rules")
    add_report_args(p)
    p.add_argument("--no-record", action="store_true", help="do not store the decision in the history")
    _import_args(p)


def _candidate(args, store_fn) -> tuple[Any, list[str], dict[str, Any], str | None]:
    """(frame, import warnings, inputs record, run id in the history)."""
    from evalplatform.importers import load_results

    if args.results:
        loaded = load_results(args.results, args.format, run_id=args.run, max_bytes=_max_bytes(args))
        files = [{"path": p, "format": f, "sha256": _file_sha256(Path(p))} for p, f in loaded.formats.items()]
        run_id = loaded.frame["run_id"][0] if loaded.frame.height else None
        return loaded.frame, loaded.warnings, {"results": files, "run_id": run_id}, None
    if args.run:
        store = store_fn()
        record = store.get_run(args.run)
        if record is None:
            raise InputError(store.path, "--run", f"no run {args.run!r} in the history",
                             "see `evalplatform history list`")
        frame = store.get_results(record["run_id"])
        return frame, [], {"run_id": record["run_id"], "suite": record.get("suite")}, record["run_id"]
    raise InputError(None, "--results", "nothing to gate", "give --results FILE... or --run RUN_ID")


def _baseline(args, frame, policy, store_fn, candidate_run: str | None) -> tuple[Any, dict[str, Any] | None]:
    from evalplatform.importers import load_results

    spec = args.baseline
    if spec is None:
        return None, None
    if spec == "promoted":
        from evalplatform.decide import baseline_for

        suites = frame["suite"].drop_nulls().unique().to_list() if frame.height else []
        suite = policy.suite or (suites[0] if len(suites) == 1 else None)
        if suite is None:
            raise InputError(args.policy, "suite", "--baseline promoted needs to know the suite "
                             f"(the results name {len(suites)} suites)", "set `suite:` in the policy")
        # The run pipeline's rule: the suite's promoted baseline, never the candidate itself. None yet (a
        # suite's first run) or only itself: relative rules follow their on_missing.
        run_id, baseline = baseline_for(store_fn(), suite, candidate_run)
        info = {"kind": "promoted", "suite": suite, "run_id": run_id}
        if run_id is None and candidate_run is not None and store_fn().latest_baseline(suite) == candidate_run:
            info["note"] = f"run {candidate_run} is itself the promoted baseline: nothing to compare with"
        return baseline, info
    path = Path(spec)
    if path.exists():
        try:
            loaded = load_results([path], "auto", run_id="baseline", max_bytes=_max_bytes(args))
        except InputError as exc:
            raise InputError(exc.file, f"--baseline: {exc.field}" if exc.field else "--baseline", exc.message,
                             exc.fix) from None
        return loaded.frame, {"kind": "file", "path": str(path), "sha256": _file_sha256(path)}
    store = store_fn()
    record = store.get_run(spec)
    if record is None:
        raise InputError(spec, "--baseline", "neither a result file nor a run in the history",
                         "give a file path, a run id, or `promoted`")
    if record["run_id"] == candidate_run:
        raise InputError(spec, "--baseline", "is the run being gated: a run compared with itself shows no change",
                         "give an earlier run, or `promoted`")
    return store.get_results(record["run_id"]), {"kind": "run", "run_id": record["run_id"]}


def _calibrations(path: str | None) -> dict | None:
    if path is None:
        return None
    from pydantic import ValidationError

    from evalplatform.policy import JudgeCalibration
    from evalplatform.policy.load import MAX_POLICY_BYTES
    from evalplatform.textio import load_yaml

    try:
        size = Path(path).stat().st_size
        if size > MAX_POLICY_BYTES:
            raise InputError(path, None, f"calibrations file is {size} bytes; at most {MAX_POLICY_BYTES}")
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, "calibrations file not found") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read calibrations: {exc.strerror or type(exc).__name__}") from None
    doc = load_yaml(path, data)  # YAML or JSON; duplicate keys and deep nesting are bad input
    if not isinstance(doc, dict):
        raise InputError(path, None, "expected a mapping of calibration name -> counts")
    out = {}
    for name, counts in doc.items():
        try:
            out[str(name)] = JudgeCalibration.model_validate(counts)
        except ValidationError as exc:
            raise InputError(path, str(name), exc.errors()[0]["msg"]) from None
    return out


def _with_suite_advisory(policy, store_fn, history_run: str | None):
    """A recorded run is gated as it ran: the scorers its suite marks `advisory: true` stay out of broad rules."""
    if history_run is None:
        return policy
    from evalplatform.decide import _advisory_scorers, _with_advisory
    from evalplatform.suite import load_suite

    suite_file = ((store_fn().get_run(history_run) or {}).get("provenance") or {}).get("suite_file")
    if not suite_file or not Path(suite_file).is_file():
        return policy
    try:
        return _with_advisory(policy, _advisory_scorers(load_suite(suite_file)))
    except InputError:
        return policy  # the suite changed into something unreadable since: gate by the policy as given


def _judges_not_allowed(store_fn, history_run: str | None) -> dict[str, str]:
    """A recorded run's judges that may not gate, by the identities it pinned and the history's
    calibrations; imported result files carry no judges of ours."""
    if history_run is None:
        return {}
    from evalplatform.decide import judges_not_allowed_by_pins

    record = store_fn().get_run(history_run) or {}
    return judges_not_allowed_by_pins(store_fn(), record.get("judge_pins"))


def _label(paths: list[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"


def _baseline_name(info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    return info.get("path") or f"run {info.get('run_id')}"


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot write: {exc.strerror}") from None


@command("gate", "judge result files or a recorded run by a policy")(_configure_gate)
def cmd_gate(args: argparse.Namespace) -> int:
    from evalplatform.history import HistoryStore
    from evalplatform.policy import evaluate_policy, load_policy
    from evalplatform.policy.report import render_table
    from evalplatform.project import find_project

    loaded = load_policy(args.policy)
    stores: list = []

    def store_fn():
        if not stores:
            stores.append(HistoryStore(find_project().history_path))
        return stores[0]

    frame, warnings, inputs, history_run = _candidate(args, store_fn)
    for note in warnings:
        print(f"warning: {note}", file=sys.stderr)
    if history_run is not None and args.baseline is None:
        # A recorded run is judged as it ran: against its suite's promoted baseline (never itself).
        from evalplatform.decide import baseline_for

        base_id, baseline = baseline_for(store_fn(), inputs["suite"], history_run)
        baseline_info = {"kind": "promoted", "suite": inputs["suite"], "run_id": base_id}
    else:
        baseline, baseline_info = _baseline(args, frame, loaded.policy, store_fn, history_run)
    if baseline_info is not None:
        inputs["baseline"] = baseline_info
        if baseline_info.get("note"):
            print(f"note: {baseline_info['note']}", file=sys.stderr)
    policy = _with_suite_advisory(loaded.policy, store_fn, history_run)
    decision = evaluate_policy(policy, frame, baseline, calibrations=_calibrations(args.calibrations),
                               input_warnings=warnings, policy_hash=loaded.sha256,
                               results_label=_label(args.results) if args.results else f"run {inputs['run_id']}",
                               baseline_label=f"baseline {_baseline_name(baseline_info)}",
                               judges_not_allowed=_judges_not_allowed(store_fn, history_run))
    decision.inputs = inputs
    decided_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    extra: dict[str, Any] = {"decided_at": decided_at, "policy_path": str(loaded.path)}
    recorded = None
    if not args.no_record:
        # Record first, print after: a decision that could not be recorded is never shown as made.
        record_inputs = {**inputs, "policy_path": str(loaded.path), "decided_at": decided_at}
        rules = [r.to_dict() for r in decision.rules]
        if history_run is None:
            extra["decision_id"] = store_fn().record_decision(decision.overall, loaded.sha256, record_inputs, rules)
        else:
            # A later gate of a recorded run never replaces the decision the run made: it is kept
            # beside it as a labelled re-decision.
            compared = baseline_info and (baseline_info.get("path") or baseline_info.get("run_id"))
            label = (f"gate --run by {loaded.path.name} (sha256 {loaded.sha256[:12]}), baseline "
                     f"{_baseline_name(baseline_info) if compared else 'none'}, {decided_at}")
            extra["decision_id"] = store_fn().record_decision(
                decision.overall, loaded.sha256, record_inputs, rules, run_id=history_run,
                kind="re-decision", label=label)
    if history_run is not None:
        recorded = store_fn().decision_of_record(history_run)
    print(render_table(decision))
    for r in decision.rules:
        if r.blocks:
            print(f"blocked: {loaded.path}: rule {r.rule_id}: {r.outcome}: {r.reason}", file=sys.stderr)
    if "decision_id" in extra:
        what = "re-decision" if history_run is not None else "decision"
        print(f"{what} {extra['decision_id']} recorded in {store_fn().path}")
    if history_run is not None:
        made = recorded["overall"] if recorded else "none recorded"
        print(f"a re-decision of run {history_run}: the decision it made when it ran stays {made} "
              f"(evalplatform history show {history_run})")
    write_reports(decision, markdown=args.markdown, junit=args.junit, json_out=args.json, extra=extra)
    # Only an exact PASS exits 0: a new overall value (NO_DATA) must not slip through as success.
    return EXIT_PASS if decision.overall == "PASS" else EXIT_BLOCKED


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--junit", metavar="OUT", help="write JUnit XML (one testcase per rule)")
    p.add_argument("--json", metavar="OUT", help="write the decision as JSON")
    p.add_argument("--markdown", metavar="OUT", help="write Markdown for a PR comment")


def write_reports(decision: Any, *, markdown: str | None, junit: str | None, json_out: str | None,
                  extra: dict[str, Any] | None = None) -> None:
    """The decision for CI: Markdown (also appended to $GITHUB_STEP_SUMMARY when set), JUnit, JSON."""
    from evalplatform.policy.report import render_json, render_junit, render_markdown

    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if markdown or summary:
        text = render_markdown(decision)
        if markdown:
            _write(markdown, text)
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(text)
    if junit:
        _write(junit, render_junit(decision))
    if json_out:
        _write(json_out, render_json(decision, extra or {}))


def write_failure_reports(code: int, message: str, *, command: str, markdown: str | None, junit: str | None,
                          json_out: str | None) -> list[str]:
    """Rewrite the reports a failed command (exit 2 or 3) was asked for so they state the failure, never an
    earlier PASS. Returns what could not be written: the caller has already reported the real error."""
    from evalplatform.policy.report import render_failure_json, render_failure_junit, render_failure_markdown

    problems = []
    targets = [(markdown, render_failure_markdown), (junit, render_failure_junit), (json_out, render_failure_json)]
    for path, render in targets:
        if path:
            try:
                Path(path).write_text(render(code, message, command), encoding="utf-8")
            except OSError as exc:
                problems.append(f"{path}: cannot write the failure report: {exc.strerror}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(render_failure_markdown(code, message, command))
        except OSError as exc:
            problems.append(f"{summary}: cannot append the failure to $GITHUB_STEP_SUMMARY: {exc.strerror}")
    return problems


def _configure_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="result files from another tool")
    p.add_argument("--out", help="write the canonical table (.parquet or .jsonl)")
    p.add_argument("--run", metavar="RUN_ID", help="run id for the imported results")
    p.add_argument("--suite", help="suite name (default: what the file names, else its stem)")
    _import_args(p)


@command("import", "convert other tools' result files into the canonical result table")(_configure_import)
def cmd_import(args: argparse.Namespace) -> int:
    import polars as pl

    from evalplatform.importers import load_results

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".parquet", ".jsonl"):
        raise InputError(out, "--out", "unknown output type", "end the name in .parquet or .jsonl")
    loaded = load_results(args.files, args.format, run_id=args.run, suite=args.suite, max_bytes=_max_bytes(args))
    df = loaded.frame
    for path, fmt in loaded.formats.items():
        print(f"{path}: {fmt}")
    for note in loaded.warnings:
        print(f"warning: {note}", file=sys.stderr)
    counts = dict(df.group_by("outcome").len().iter_rows())
    print(f"{df.height} rows, {df['case_id'].n_unique()} cases, {df['scorer'].n_unique()} scorer(s), "
          f"repeats {df['repeat'].n_unique()}: " + ", ".join(f"{k} {counts.get(k, 0)}"
                                                             for k in ("pass", "fail", "error", "skipped")))
    if out is not None:
        try:
            if out.suffix.lower() == ".parquet":
                df.write_parquet(out)
            else:
                df.with_columns(pl.col("tags")).write_ndjson(out)
        except OSError as exc:
            raise InputError(out, "--out", f"cannot write: {exc.strerror}") from None
        print(f"wrote {out}")
    return EXIT_PASS
