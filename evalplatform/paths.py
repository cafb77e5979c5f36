"""Files a suite refers to must live inside its project: no absolute paths or `..` (or symlinks) out of it."""

from __future__ import annotations

from pathlib import Path

from evalplatform.errors import InputError


def project_boundary(suite_dir: Path) -> Path:
    """The folder a suite's files must stay inside: the project holding its `datasets/` folder.

    A suite under `<project>/datasets/...` may use anything in `<project>` (the demo's judges share
    `datasets/calibration/`); a suite file anywhere else is confined to its own folder.
    """
    here = suite_dir.resolve()
    for folder in (here, *here.parents):
        if folder.name == "datasets":
            return folder.parent
    return here


def inside_project(suite_dir: Path, rel: str, suite_file: Path, field: str) -> Path:
    """`rel` resolved against the suite folder (symlinks followed), refused when it leaves the project."""
    boundary = project_boundary(suite_dir)
    resolved = (suite_dir / rel).resolve()
    if not resolved.is_relative_to(boundary):
        raise InputError(suite_file, field, f"{rel!r} resolves to {resolved}, outside the project folder {boundary}",
                         "keep the files a suite uses inside its project (no absolute paths, `..` or symlinks "
                         "leading out of it)")
    return resolved
