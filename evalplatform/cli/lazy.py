"""The `evalplatform` command group: each verb's module is imported only when that verb runs (or shows its help)."""

from __future__ import annotations

import importlib

import click

# verb -> (module holding the click command of the same name, the one-line help of `evalplatform --help`).
# The short help lives here so that listing the verbs imports none of them.
VERBS: dict[str, tuple[str, str]] = {
    "run": ("evalplatform.cli.run", "run a suite's tier and gate it"),
    "ci": ("evalplatform.cli.ci", "CI entry point: run the PR job on a Dagster server (or in-process), exit with "
                                  "the decision"),
    "gate": ("evalplatform.cli.gate", "judge result files or a recorded run by a policy"),
    "import": ("evalplatform.cli.import_", "convert other tools' result files into the canonical result table"),
    "calibrate": ("evalplatform.cli.calibrate", "run a suite's judges on their calibration sets and store the "
                                                "agreement"),
    "judges": ("evalplatform.cli.judges", "list judges with their last calibration and whether they may gate"),
    "history": ("evalplatform.cli.history", "list runs, show one, or list a run's failing cases"),
    "baseline": ("evalplatform.cli.baseline", "show a suite's baseline per tier and who changed it, when and why"),
    "promote": ("evalplatform.cli.promote", "make a complete run its tier's baseline (a PASS run unless --force)"),
    "rollback": ("evalplatform.cli.rollback", "restore the baseline the current one replaced"),
    "plan": ("evalplatform.cli.plan", "before a run: can each rule decide at the tier's size, and how often would "
                                      "a no-change re-run be blocked?"),
    "discriminate": ("evalplatform.cli.discriminate", "inject known degradations into a recorded run and measure "
                                                      "how many the policy catches"),
    "monitor": ("evalplatform.cli.monitor", "production monitors of a suite: weighted pass rates, always-valid "
                                            "bounds, SLO alerts, coverage and freshness"),
    "review": ("evalplatform.cli.review", "walk the review queue of flagged production traces, or label one by id"),
    "report": ("evalplatform.cli.report", "write a run's (or a suite's trend) offline HTML report with plots"),
    "schema": ("evalplatform.cli.schema", "export the JSON Schemas of suite, case and policy files"),
    "launcher": ("evalplatform.cli.launcher", "the Dagster engine's warm launcher servers: list them, or stop them"),
}


class LazyGroup(click.Group):
    """click's LazyGroup pattern: commands are named here and loaded from their module on first use."""

    def __init__(self, *args, verbs: dict[str, tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.verbs = verbs

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.verbs)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.verbs:
            return None
        module = importlib.import_module(self.verbs[cmd_name][0])
        command = getattr(module, "command", None)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module.__name__}.command is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing loads every command for its short help; these are kept in VERBS instead.
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in self.verbs.items()])
