"""The CI reports of run, ci and gate (Markdown, JUnit, JSON), and their rewrite when a command stops on an error."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import click

from evalplatform.errors import InputError

# Where a reporting command leaves the report paths it was given, for the error handling in `main` (ctx.meta is
# shared by every context of one command line).
REPORTS_KEY = "evalplatform.reports"
# The report options and the flags that spell them; a command that ends in exit 2 or 3 rewrites these files.
REPORT_FLAGS = {"junit": "--junit", "markdown": "--markdown", "json": "--json"}


def report_options(f: Callable) -> Callable:
    """--junit/--markdown/--json OUT, remembered before the command runs so a failure can rewrite them."""

    @functools.wraps(f)
    def remembering(**kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta[REPORTS_KEY] = {"command": ctx.info_name, "junit": kwargs.get("junit"),
                                 "markdown": kwargs.get("markdown"), "json": kwargs.get("json_out")}
        return f(**kwargs)

    options = [
        click.option("--junit", metavar="OUT", help="write the decision as JUnit XML (one testcase per rule)"),
        click.option("--json", "json_out", metavar="OUT", help="write the decision as JSON"),
        click.option("--markdown", metavar="OUT",
                     help="write Markdown for a PR comment (also appended to $GITHUB_STEP_SUMMARY when set)"),
    ]
    for option in reversed(options):
        remembering = option(remembering)
    return remembering


def is_reporting(command: click.Command | None) -> bool:
    return command is not None and any(p.name == "junit" for p in command.params)


def scan_report_paths(command_name: str, args: list[str]) -> dict[str, str | None]:
    """The report options of a command line click refused, read leniently (`--junit X` or `--junit=X`)."""
    found: dict[str, str | None] = {"command": command_name}
    i = 0
    while i < len(args):
        arg = args[i]
        for name, flag in REPORT_FLAGS.items():
            if arg == flag and i + 1 < len(args) and not args[i + 1].startswith("-"):
                found[name] = args[i + 1]
                i += 1
                break
            if arg.startswith(flag + "="):
                found[name] = arg[len(flag) + 1:]
                break
        i += 1
    return found


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot write: {exc.strerror}") from None


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


def report_failure(paths: dict | None, code: int, message: str) -> None:
    """Rewrite the asked-for reports to state the failure; a report that cannot be written is a warning,
    since the error line already printed is the one that matters."""
    if paths is None:
        return
    from evalplatform.cli.output import echo

    for problem in write_failure_reports(code, message, command=paths["command"], markdown=paths.get("markdown"),
                                         junit=paths.get("junit"), json_out=paths.get("json")):
        echo(f"warning: {problem}", err=True)
