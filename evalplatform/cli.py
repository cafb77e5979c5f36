"""The `evalplatform` command: run, history, and the other verbs; exit 0 pass, 1 blocked, 2 bad input, 3 infra."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

from evalplatform.errors import EvalPlatformError, InfraError, InputError

EXIT_PASS, EXIT_BLOCKED, EXIT_INPUT, EXIT_INFRA = 0, 1, 2, 3

# Subcommand registry: name -> (configure parser, handler). Other modules add theirs with `command`.
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


def command(name: str, help: str):
    def wrap(configure):
        def bind(handler):
            COMMANDS[name] = (configure, handler, help)
            return handler
        return bind
    return wrap


def _env_defaults() -> None:
    # litellm reaches for the network at import unless told to use its bundled cost map.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


class Progress:
    """A one-line progress bar on a terminal; silent otherwise (CI logs stay clean)."""

    def __init__(self, total: int, stream=None):
        stream = stream or sys.stderr
        self.total, self.done, self.errors, self.hits = total, 0, 0, 0
        self.stream = stream
        self.enabled = stream.isatty() and total > 0
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, result) -> None:
        self.done += 1
        self.errors += result.error is not None
        self.hits += bool(result.cache_hit)
        now = time.perf_counter()
        if self.enabled and (now - self.last > 0.1 or self.done == self.total):
            self.last = now
            width = 30
            filled = int(width * self.done / self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} calls "
                              f"{self.hits} cached {self.errors} errors {now - self.t0:5.1f}s")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True, help="suite name (datasets/NAME/suite.yaml) or path to a suite.yaml")
    p.add_argument("--tier", default="pr", choices=["pr", "nightly"])
    p.add_argument("--model", help="override the suite's target model (litellm model string)")
    p.add_argument("--repeats", type=int, help="override the number of repeats")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")
    p.add_argument("--concurrency", type=int, help="maximum model calls in flight")
    p.add_argument("--engine", choices=["dagster", "direct"], default=None,
                   help="dagster: materialize the code location's assets in-process (default when the project has "
                        "definitions.py); direct: the library pipeline alone")
    p.add_argument("--junit", metavar="OUT", help="write the decision as JUnit XML (one testcase per rule)")
    p.add_argument("--json", metavar="OUT", help="write the decision as JSON")
    p.add_argument("--markdown", metavar="OUT",
                   help="write Markdown for a PR comment (also appended to $GITHUB_STEP_SUMMARY when set)")


def _request_from_args(args: argparse.Namespace):
    """The run options of `run` and `ci`, as the one RunRequest every engine takes."""
    from pydantic import ValidationError

    from evalplatform.request import RunRequest

    try:
        return RunRequest(suite=args.suite, tier=args.tier, model=args.model, repeats=args.repeats,
                          no_cache=True if args.no_cache else None, concurrency=args.concurrency,
                          seed=getattr(args, "seed", None))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(None, f"--{str(first['loc'][0]).replace('_', '-')}", first["msg"]) from None


@command("run", "run a suite's tier and gate it")(_configure_run)
def cmd_run(args: argparse.Namespace) -> int:
    from evalplatform.pipeline import resolve_suite
    from evalplatform.project import find_project

    project = find_project()
    request = _request_from_args(args)
    # Fail fast on a bad suite or dataset, before any engine starts or anything is written.
    from evalplatform.runner import plan_run

    suite = resolve_suite(project, request.suite)
    plan_run(suite, request.tier, model=request.model, repeats=request.repeats, seed=request.seed)
    # A suite of the project (datasets/NAME/suite.yaml) is served by its Dagster code location, so it
    # runs through Dagster by default; a suite file elsewhere runs directly.
    in_project = suite.path.resolve().parent.parent == project.datasets_dir.resolve()
    engine = args.engine or ("dagster" if project.definitions_file.is_file() and in_project else "direct")
    if engine == "dagster":
        from evalplatform.engine import run_with_dagster

        outcome = run_with_dagster(project, request.model_copy(update={"suite": suite.name}))
        run_id = outcome.run_id
        ui_hint = (f"dagster run {outcome.dagster_run_id}: see it with `make ui` (dagster dev, DAGSTER_HOME="
                   f"{os.environ.get('DAGSTER_HOME', '<unset: ephemeral instance>')})")
    else:
        from evalplatform.pipeline import scored_run

        run, _ = scored_run(project, request, progress=Progress)
        run_id, ui_hint = run.run_id, None
    return _print_summary(project, run_id, ui_hint, args)


def _print_summary(project, run_id: str, ui_hint: str | None, args: argparse.Namespace | None = None) -> int:
    from evalplatform.history import HistoryStore
    from evalplatform.report import decision_from_record, render_summary

    store = HistoryStore(project.history_path)
    record = store.get_run(run_id)
    # The decision the run made when it ran; a later `gate --run` never stands in for it.
    stored = store.decision_of_record(run_id) if record else None
    if record is None or stored is None:
        raise InfraError(f"{project.history_path}: run {run_id} or its decision is missing from the history")
    decision = decision_from_record(stored)
    print(render_summary(run=record, results=store.get_results(run_id), decision=decision,
                         history_path=str(project.history_path), ui_hint=ui_hint))
    if args is not None:
        _write_reports(decision, args, {"run_id": run_id, "decision_id": stored["decision_id"]})
    # Only an exact PASS exits 0: a new overall value (NO_DATA) must not slip through as success.
    return EXIT_PASS if decision.overall == "PASS" else EXIT_BLOCKED


def _write_reports(decision, args: argparse.Namespace, extra: dict) -> None:
    from evalplatform.cli_gate import write_reports

    write_reports(decision, markdown=getattr(args, "markdown", None), junit=getattr(args, "junit", None),
                  json_out=getattr(args, "json", None), extra=extra)


def _configure_ci(p: argparse.ArgumentParser) -> None:
    _configure_run(p)
    p.add_argument("--url", default=os.environ.get("EVALPLATFORM_DAGSTER_URL"),
                   help="Dagster webserver (e.g. http://127.0.0.1:3000); without it the job runs in-process")
    p.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the run")


@command("ci", "CI entry point: run the PR job on a Dagster server (or in-process) and answer with an exit code")(
    _configure_ci)
def cmd_ci(args: argparse.Namespace) -> int:
    if not args.url:
        return cmd_run(args)
    from evalplatform.ci import submit_and_wait, user_error

    request = _request_from_args(args)
    res = submit_and_wait(args.url, request, timeout_s=args.timeout, tags={"evalplatform/cli": "ci"})
    err = user_error(res.failures)
    if err is not None:
        raise err
    print(f"dagster run {res.run_id}: {res.status} in {res.elapsed_s:.1f} s  ({args.url}/runs/{res.run_id})")
    for g in res.gates:
        m = g.metadata
        nums = ", ".join(f"{k}={m[k]:.3f}" if isinstance(m.get(k), float) else f"{k}={m[k]}"
                         for k in ("outcome", "estimate", "lower", "threshold", "n") if k in m)
        print(f"  {'PASS' if g.passed else 'FAIL'} {g.name} [{g.severity}] {nums}")
    _write_reports(_decision_from_gates(res), args, {"dagster_run_id": res.run_id, "url": args.url})
    if res.blocking_failed:
        print("decision: BLOCKED")
        return EXIT_BLOCKED
    if res.status != "SUCCESS":
        steps = ", ".join(f["step"] for f in res.failures) or "unknown step"
        raise InfraError(f"dagster run {res.run_id} ended {res.status} (failed: {steps})")
    release = next((g for g in res.gates if g.name == "release_decision_passed"), None)
    if release is None or not release.passed:
        raise InfraError(f"dagster run {res.run_id} produced no release decision: refusing to pass")
    print("decision: PASS")
    return EXIT_PASS


def _decision_from_gates(res):
    """The asset checks of a Dagster run, as a policy decision (for the Markdown/JUnit/JSON reports)."""
    from evalplatform.policy import Decision, RuleResult

    rules = []
    for g in res.gates:
        m = dict(g.metadata)
        blocking = g.severity == "ERROR"
        rules.append(RuleResult(
            rule_id=g.name, metric=str(m.get("metric", "")), severity="blocking" if blocking else "advisory",
            outcome=str(m.get("outcome", "PASS" if g.passed else "FAIL")), blocks=blocking and not g.passed,
            reason=str(m.get("reason", "")), numbers=m))
    release = next((g for g in res.gates if g.name == "release_decision_passed"), None)
    recorded = str((release.metadata if release else {}).get("decision") or "")
    if any(r.blocks for r in rules) or res.status != "SUCCESS":
        overall = recorded if recorded in ("BLOCK", "NO_DATA") else "BLOCK"
    else:
        overall = "PASS" if release is not None and release.passed else "NO_DATA"
    return Decision(overall, rules, policy_name=f"dagster run {res.run_id}", inputs={"dagster_run_id": res.run_id})


def _configure_history(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="history_cmd")
    ls = sub.add_parser("list", help="recent runs")
    ls.add_argument("--suite")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--all", action="store_true", help="include runs still running")
    show = sub.add_parser("show", help="one run with its provenance and summary")
    show.add_argument("run_id")


@command("history", "list runs or show one")(_configure_history)
def cmd_history(args: argparse.Namespace) -> int:
    import json

    from evalplatform.history import HistoryStore
    from evalplatform.project import find_project

    project = find_project()
    store = HistoryStore(project.history_path)
    _mark_abandoned(store)
    if args.history_cmd in (None, "list"):
        # Runs that ended without completing (failed, abandoned) are listed too, with their reason.
        runs = store.list_runs(suite=getattr(args, "suite", None), limit=getattr(args, "limit", 20),
                               status=None if getattr(args, "all", False) else ("complete", "failed", "abandoned"))
        if runs.height == 0:
            print(f"no runs in {project.history_path}")
            return EXIT_PASS
        print(f"{'run_id':<28}{'suite':<10}{'tier':<9}{'status':<10}{'model':<22}{'pass':>6}{'fail':>6}"
              f"{'error':>6}  decision")
        for r in runs.iter_rows(named=True):
            # A run that did not complete has no decision: say why it stopped instead.
            last = r["decision"] if r["status"] == "complete" else (r["failure"] or "")
            print(f"{r['run_id']:<28}{r['suite']:<10}{(r['tier'] or ''):<9}{r['status']:<10}"
                  f"{(r['target_model'] or '')[:21]:<22}{r['n_pass'] or 0:>6}{r['n_fail'] or 0:>6}"
                  f"{r['n_error'] or 0:>6}  {last or ''}")
        return EXIT_PASS
    record = store.get_run(args.run_id)
    if record is None:
        raise InputError(project.history_path, "run_id", f"no run {args.run_id!r}", "see `evalplatform history list`")
    if record["status"] == "complete" and store.decision_of_record(record["run_id"]) is not None:
        _print_summary(project, record["run_id"], None)
    else:
        print(json.dumps(record, indent=2, default=str))
        if record["status"] == "complete":
            print("no decision was recorded when this run ran")
    # Later gates are listed for the record, each labelled, and never as what the run decided.
    for d in store.re_decisions(record["run_id"]):
        print(f"re-decision {d['decision_id']}: {d['overall']}  {d['label'] or 'a later gate'}  "
              "(not this run's decision)")
    return EXIT_PASS


def _mark_abandoned(store) -> None:
    """The cheap check: runs whose process is gone are marked abandoned before they are listed."""
    try:
        gone = store.mark_abandoned()
    except InfraError as exc:  # a read-only history still lists; it just cannot mark them
        print(f"warning: cannot mark abandoned runs: {exc}", file=sys.stderr)
        return
    if gone:
        print(f"marked {len(gone)} run(s) abandoned (their process is gone): {', '.join(gone)}", file=sys.stderr)


def _configure_schema(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="folder (default: datasets/schema of the project)")


@command("schema", "export the JSON Schemas of suite, case and policy files")(_configure_schema)
def cmd_schema(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evalplatform.project import find_project
    from evalplatform.schemas import export

    folder = Path(args.out) if args.out else find_project().datasets_dir / "schema"
    for path in export(folder):
        print(path)
    return EXIT_PASS


class _Parser(argparse.ArgumentParser):
    """argparse, keeping the usage error's text on the SystemExit so failure reports can state it."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        exc = SystemExit(EXIT_INPUT)
        exc.usage_error = f"{self.prog}: {message}"  # type: ignore[attr-defined]
        raise exc


# The report options of run, ci and gate; a command that ends in exit 2 or 3 rewrites these files.
REPORT_OPTIONS = {"junit": "--junit", "markdown": "--markdown", "json": "--json"}


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    parser = _Parser(prog="evalplatform", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _, help_text) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text))
    return parser


def _load_plugins() -> None:
    """Other verbs register themselves in their own modules; import those that exist."""
    import importlib

    for mod in ("evalplatform.cli_gate", "evalplatform.cli_judges"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def main(argv: list[str] | None = None) -> int:
    rc = _main(argv)
    if argv is None:
        _exit_now(rc)
    return rc


def _exit_now(rc: int) -> None:
    """End the process without the interpreter's teardown of every imported module.

    That teardown costs ~0.8 s once litellm is loaded (more with Dagster) and buys nothing here:
    history connections are closed per operation and cache entries are renamed into place. atexit
    handlers and the stdio flushes still run; a live non-daemon thread gets the normal exit instead.
    Only for the process entry (argv None): callers passing argv (tests) just get the code back.
    """
    import atexit
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to deliver
            pass
    os._exit(rc)


def _main(argv: list[str] | None) -> int:
    _env_defaults()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors are bad input
        if exc.code in (0, None):
            return EXIT_PASS
        usage = getattr(exc, "usage_error", "usage error")
        _report_failure(_report_paths_of_unparsed(parser, argv), EXIT_INPUT, usage)
        return EXIT_INPUT
    handler = COMMANDS[args.command][1]
    try:
        return handler(args)
    except EvalPlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code, message = exc.exit_code, str(exc)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code, message = EXIT_INFRA, "interrupted"
    except Exception as exc:  # an unexpected failure is infrastructure, reported in one line
        from evalplatform.models.redact import redact

        message = redact(f"internal failure: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        print(f"error: {message} (set EVALPLATFORM_DEBUG=1 for the traceback)", file=sys.stderr)
        _report_failure(_report_paths(args), EXIT_INFRA, message)
        if os.environ.get("EVALPLATFORM_DEBUG"):
            raise
        return EXIT_INFRA
    if code in (EXIT_INPUT, EXIT_INFRA):
        _report_failure(_report_paths(args), code, message)
    return code


def _report_paths(args: argparse.Namespace) -> dict | None:
    """The report files the command was asked for, or None when the command writes no reports."""
    if not hasattr(args, "junit"):  # run, ci and gate have all three options; no other command has --junit
        return None
    paths = {name: getattr(args, name, None) for name in REPORT_OPTIONS}
    return {k: v for k, v in paths.items() if isinstance(v, str)} | {"command": args.command}


def _report_paths_of_unparsed(parser: argparse.ArgumentParser, argv: list[str] | None) -> dict | None:
    """The report options of a command line argparse refused, read leniently (only for a reporting command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    command = argv[0] if argv else None
    chosen = sub.choices.get(command) if sub is not None and command else None
    if chosen is None or not any(set(a.option_strings) & set(REPORT_OPTIONS.values()) for a in chosen._actions):
        return None
    lenient = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    for name, flag in REPORT_OPTIONS.items():
        lenient.add_argument(flag, dest=name)
    try:
        known, _ = lenient.parse_known_args(argv[1:])
    except (argparse.ArgumentError, SystemExit):
        return None
    return vars(known) | {"command": command}


def _report_failure(paths: dict | None, code: int, message: str) -> None:
    """Rewrite the asked-for reports to state the failure; a report that cannot be written is a warning,
    since the error line above is the one that matters."""
    if paths is None:
        return
    from evalplatform.cli_gate import write_failure_reports

    for problem in write_failure_reports(code, message, command=paths["command"], markdown=paths.get("markdown"),
                                         junit=paths.get("junit"), json_out=paths.get("json")):
        print(f"warning: {problem}", file=sys.stderr)


if __name__ == "__main__":
    # Run through the package module so verbs registered by plugins land in the same registry.
    from evalplatform.cli import main as package_main

    sys.exit(package_main())
