"""Error types that map to the CLI's exit codes: 2 bad input or config, 3 infrastructure failure."""

from __future__ import annotations

from pathlib import Path

# The process exit codes of `evalplatform`: what CI branches on.
EXIT_PASS = 0  # the decision is exactly PASS
EXIT_BLOCKED = 1  # a decision was made and it is not PASS (blocked by policy, no data, ...)
EXIT_INPUT = 2  # bad input or config: nothing was judged
EXIT_INFRA = 3  # an infrastructure failure: nothing was judged


class EvalPlatformError(Exception):
    """Base class. `str(err)` is the one line shown to the user."""

    # An error is never a decision: one that is neither bad input nor named infrastructure still judged nothing.
    exit_code = EXIT_INFRA


class InputError(EvalPlatformError):
    """Bad input or config (exit 2). Names the file, the field (or rule) and what to do."""

    exit_code = EXIT_INPUT

    def __init__(self, file: str | Path | None, field: str | None, message: str, fix: str | None = None):
        self.file = str(file) if file is not None else None
        self.field = field
        self.message = message
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        where = self.file or "<input>"
        if self.field:
            where += f": {self.field}"
        text = f"{where}: {self.message}"
        if self.fix:
            text += f" ({self.fix})"
        return text.replace("\n", " ")


class InfraError(EvalPlatformError):
    """Infrastructure failure (exit 3): a locked database, an unreachable server, a crashed run."""

    exit_code = EXIT_INFRA
