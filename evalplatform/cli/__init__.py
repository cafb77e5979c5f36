"""The `evalplatform` command: exit 0 pass, 1 blocked by policy, 2 bad input, 3 infrastructure failure.

`main(argv)` returns the exit code and never raises: every error is one line `error: ...` on stderr (the
traceback only with EVALPLATFORM_DEBUG=1), and a command asked for CI reports rewrites them to state the failure.
"""

from __future__ import annotations

import os
import sys

import click

from evalplatform.cli.lazy import VERBS, LazyGroup
from evalplatform.errors import EXIT_INFRA, EXIT_INPUT, EXIT_PASS, EvalPlatformError

PROG = "evalplatform"
# The program's own arguments when it runs as `evalplatform ...` (main(None)); None when called as main(argv).
ENTRY_ARGV: list[str] | None = None


def _env_defaults() -> None:
    # litellm reaches for the network at import unless told to use its bundled cost map.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


group = LazyGroup(
    PROG, verbs=VERBS, help=__doc__.splitlines()[0],
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)


def main(argv: list[str] | None = None) -> int:
    global ENTRY_ARGV
    if argv is None:
        ENTRY_ARGV = list(sys.argv[1:])
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
    from evalplatform.cli.output import echo
    from evalplatform.cli.reports import REPORTS_KEY, report_failure

    _env_defaults()
    args = list(sys.argv[1:] if argv is None else argv)
    meta: dict = {}
    try:
        ctx = group.make_context(PROG, args)
        meta = ctx.meta
        with ctx:
            code = group.invoke(ctx)
        return code if isinstance(code, int) else EXIT_PASS
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except click.ClickException as exc:  # usage: an unknown option, a missing value, a value of the wrong type
        message = _usage_line(exc)
        echo(f"error: {message}", err=True)
        report_failure(meta.get(REPORTS_KEY) or _reports_of_refused(exc, args), EXIT_INPUT, message)
        return EXIT_INPUT
    except EvalPlatformError as exc:
        echo(f"error: {exc}", err=True)
        code, message = exc.exit_code, str(exc)
    except (KeyboardInterrupt, click.Abort):
        echo("error: interrupted", err=True)
        code, message = EXIT_INFRA, "interrupted"
    except Exception as exc:  # an unexpected failure is infrastructure, reported in one line
        from evalplatform.models.redact import redact

        message = redact(f"internal failure: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        echo(f"error: {message} (set EVALPLATFORM_DEBUG=1 for the traceback)", err=True)
        report_failure(meta.get(REPORTS_KEY), EXIT_INFRA, message)
        if os.environ.get("EVALPLATFORM_DEBUG"):
            raise
        return EXIT_INFRA
    if code in (EXIT_INPUT, EXIT_INFRA):
        report_failure(meta.get(REPORTS_KEY), code, message)
    return code


def _usage_line(exc: click.ClickException) -> str:
    """click's usage error as one line naming the command, with where to read its options."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else PROG
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return f"{path}: a command is needed (see `{path} --help`)"
    return f"{path}: {' '.join(exc.format_message().split())} (see `{path} --help`)"


def _reports_of_refused(exc: click.ClickException, args: list[str]) -> dict | None:
    """The reports a refused command line names, when its command writes reports."""
    from evalplatform.cli.reports import is_reporting, scan_report_paths

    ctx = getattr(exc, "ctx", None)
    if ctx is None or ctx.parent is None or not is_reporting(ctx.command):
        return None
    try:
        start = args.index(ctx.info_name) + 1
    except ValueError:
        start = 0
    return scan_report_paths(ctx.info_name, args[start:])


__all__ = ["main", "group", "PROG"]
