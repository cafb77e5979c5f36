"""`evalplatform gate`: judge result files of any supported tool, or a recorded run, by a policy."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from evalplatform.cli import output
from evalplatform.cli.options import byte_limit, check_format, import_options
from evalplatform.cli.reports import report_options, write_reports
from evalplatform.errors import EXIT_BLOCKED, EXIT_PASS, InputError


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _candidate(opts: dict[str, Any], store_fn) -> tuple[Any, list[str], dict[str, Any], str | None]:
    """(frame, import warnings, inputs record, run id in the history)."""
    from evalplatform.importers import load_results

    if opts["results"]:
        loaded = load_results(opts["results"], opts["fmt"], run_id=opts["run"],
                              max_bytes=byte_limit(opts["max_bytes"]))
        files = [{"path": p, "format": f, "sha256": _file_sha256(Path(p))} for p, f in loaded.formats.items()]
        run_id = loaded.frame["run_id"][0] if loaded.frame.height else None
        return loaded.frame, loaded.warnings, {"results": files, "run_id": run_id}, None
    if opts["run"]:
        store = store_fn()
        record = store.get_run(opts["run"])
        if record is None:
            raise InputError(store.path, "--run", f"no run {opts['run']!r} in the history",
                             "see `evalplatform history list`")
        frame = store.get_results(record["run_id"])
        return frame, [], {"run_id": record["run_id"], "suite": record.get("suite")}, record["run_id"]
    raise InputError(None, "--results", "nothing to gate", "give --results FILE... or --run RUN_ID")


def _baseline(opts: dict[str, Any], frame, policy, store_fn, candidate_run: str | None):
    """(baseline frame or None, what it is for the record)."""
    from evalplatform.importers import load_results

    spec = opts["baseline"]
    if spec is None:
        return None, None
    if spec == "promoted":
        from evalplatform.decide import baseline_for

        suites = frame["suite"].drop_nulls().unique().to_list() if frame.height else []
        suite = policy.suite or (suites[0] if len(suites) == 1 else None)
        if suite is None:
            raise InputError(opts["policy"], "suite", "--baseline promoted needs to know the suite "
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
            loaded = load_results([path], "auto", run_id="baseline", max_bytes=byte_limit(opts["max_bytes"]))
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


def _tier_scope(store_fn, history_run: str | None, policy, frame) -> dict:
    """A recorded run is gated as its tier ran it: rules reading only scorers the tier did not run are not
    applicable (evalplatform.tiers); imported files and runs from before tiers chose scorers have no such rules."""
    if history_run is None:
        return {}
    from evalplatform.decide import recorded_scope
    from evalplatform.suite import load_suite
    from evalplatform.tiers import rule_scope_of_results

    suite_file = ((store_fn().get_run(history_run) or {}).get("provenance") or {}).get("suite_file")
    if not suite_file or not Path(suite_file).is_file():
        return {}
    try:
        suite = load_suite(suite_file)
    except InputError:
        return {}
    return rule_scope_of_results(policy, suite, recorded_scope(store_fn(), suite, history_run), frame)


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


@click.command("gate")
@click.option("--results", multiple=True, metavar="FILE",
              help="result files (any supported tool's format): --results A.json B.json ... or repeated")
@click.argument("more_results", nargs=-1, metavar="[FILE]...")
@click.option("--run", metavar="RUN_ID",
              help="with --results: the run id to give the imported results; alone: gate this recorded run")
@click.option("--policy", required=True, metavar="FILE", help="policy file (YAML)")
@click.option("--baseline", metavar="RUN_ID|FILE|promoted",
              help="what relative rules compare against: a recorded run, a result file, or the suite's "
                   "promoted baseline")
@click.option("--calibrations", metavar="FILE",
              help="judge calibration records (YAML/JSON mapping name -> counts) for judge_corrected rules")
@click.option("--no-record", is_flag=True, help="do not store the decision in the history")
@import_options
@report_options
def command(**opts: Any) -> int:
    """Judge result files (any supported tool's format) or a recorded run by a policy.

    Exit 0 when the decision is PASS, 1 when it is anything else, 2 on bad input, 3 on an infrastructure failure.
    """
    if opts["more_results"] and not opts["results"]:
        raise click.UsageError(f"unexpected argument {opts['more_results'][0]!r}: result files follow --results")
    # `--results A B` as well as `--results A --results B`: the files after the option are the extra arguments.
    opts["results"] = [*opts["results"], *opts["more_results"]]
    return gate(opts)


def gate(opts: dict[str, Any]) -> int:
    from evalplatform.history import HistoryStore
    from evalplatform.policy import evaluate_policy, load_policy
    from evalplatform.project import find_project

    check_format(opts["fmt"])
    loaded = load_policy(opts["policy"])
    stores: list = []

    def store_fn():
        if not stores:
            stores.append(HistoryStore(find_project().history_path))
        return stores[0]

    frame, warnings, inputs, history_run = _candidate(opts, store_fn)
    for note in warnings:
        output.echo(f"warning: {note}", err=True)
    if history_run is not None and opts["baseline"] is None:
        # A recorded run is judged as it ran: against its suite's promoted baseline (never itself).
        from evalplatform.decide import baseline_for

        base_id, baseline = baseline_for(store_fn(), inputs["suite"], history_run)
        baseline_info = {"kind": "promoted", "suite": inputs["suite"], "run_id": base_id}
    else:
        baseline, baseline_info = _baseline(opts, frame, loaded.policy, store_fn, history_run)
    if baseline_info is not None:
        inputs["baseline"] = baseline_info
        if baseline_info.get("note"):
            output.echo(f"note: {baseline_info['note']}", err=True)
    policy = _with_suite_advisory(loaded.policy, store_fn, history_run)
    decision = evaluate_policy(policy, frame, baseline, calibrations=_calibrations(opts["calibrations"]),
                               input_warnings=warnings, policy_hash=loaded.sha256,
                               results_label=_label(opts["results"]) if opts["results"] else f"run {inputs['run_id']}",
                               baseline_label=f"baseline {_baseline_name(baseline_info)}",
                               judges_not_allowed=_judges_not_allowed(store_fn, history_run),
                               scope=_tier_scope(store_fn, history_run, policy, frame))
    decision.inputs = inputs
    decided_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    extra: dict[str, Any] = {"decided_at": decided_at, "policy_path": str(loaded.path)}
    recorded = None
    if not opts["no_record"]:
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
    from evalplatform.cli.summary import show_decision

    show_decision(decision)
    for r in decision.rules:
        if r.blocks:
            output.echo(f"blocked: {loaded.path}: rule {r.rule_id}: {r.outcome}: {r.reason}", err=True)
    if "decision_id" in extra:
        what = "re-decision" if history_run is not None else "decision"
        output.echo(f"{what} {extra['decision_id']} recorded in {store_fn().path}")
    if history_run is not None:
        made = recorded["overall"] if recorded else "none recorded"
        output.echo(f"a re-decision of run {history_run}: the decision it made when it ran stays {made} "
                    f"(evalplatform history show {history_run})")
    write_reports(decision, markdown=opts["markdown"], junit=opts["junit"], json_out=opts["json_out"], extra=extra)
    # Only an exact PASS exits 0: a new overall value (NO_DATA) must not slip through as success.
    return EXIT_PASS if decision.overall == "PASS" else EXIT_BLOCKED
