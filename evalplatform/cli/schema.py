"""`evalplatform schema`: export the JSON Schemas of suite, case and policy files (for editors' completion)."""

from __future__ import annotations

from pathlib import Path

import click

from evalplatform.cli import output
from evalplatform.errors import EXIT_PASS


@click.command("schema")
@click.option("--out", default=None, metavar="FOLDER", help="folder (default: datasets/schema of the project)")
def command(out: str | None) -> int:
    """Export the JSON Schemas of suite, case and policy files."""
    from evalplatform.project import find_project
    from evalplatform.schemas import export

    folder = Path(out) if out else find_project().datasets_dir / "schema"
    for path in export(folder):
        output.echo(path)
    return EXIT_PASS
