"""Where a run came from (git, package, lock, interpreter) and the content hashes used across the project."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import evalplatform

GIT_TIMEOUT_S = 5.0

# Settings that shape a run's behaviour; only these prefixes are ever considered for capture.
ENV_PREFIXES = ("EVALPLATFORM_", "LITELLM_", "DAGSTER_", "GX_", "OLLAMA_", "OPENAI_", "ANTHROPIC_")
# A name containing any of these is treated as a secret and never captured, whatever its value.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|PWD|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE|CERT|DSN", re.I)
# Values that look like credentials even under an innocent name: provider key formats, any URL userinfo,
# long unbroken random-looking strings (letters and digits mixed, so plain paths and words pass).
_SECRET_VALUE = re.compile(
    r"^(sk-|sk_|pk_|rk_|ghp_|gho_|github_pat_|xox[abpr]-|AKIA|AIza|hf_|glpat-|eyJ)"
    r"|://[^/?#\s@]+@"
    r"|^(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[A-Za-z0-9+=_\-][A-Za-z0-9+/=_\-]{31,}$"
)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content gives equal text, so equal hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=canonical_json)
    if hasattr(obj, "model_dump"):  # pydantic models hash by their JSON-mode content
        return obj.model_dump(mode="json")
    raise TypeError(f"canonical_json: cannot encode {type(obj).__name__}")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(repo_root: Path, *args: str) -> str | None:
    """stdout of a git command, or None when git is missing, slow, or this is not a repository."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo_root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def git_state(repo_root: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty): dirty means tracked files differ from HEAD; both None outside a git checkout."""
    head = _git(repo_root, "rev-parse", "HEAD")
    if head is None:
        return None, None
    status = _git(repo_root, "status", "--porcelain", "--untracked-files=no")
    return head.strip(), (bool(status.strip()) if status is not None else None)


BRANCH_ENV = "EVALPLATFORM_BRANCH"
# Where CI systems name the branch a run is for: a pull request's head first, then the pushed ref.
_CI_BRANCH_VARS = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME",
                   "BUILDKITE_BRANCH", "CIRCLE_BRANCH", "GIT_BRANCH")


def git_branch(repo_root: Path, environ: dict[str, str] | None = None) -> str | None:
    """The branch a run is for: $EVALPLATFORM_BRANCH, else what CI says, else git's current branch (None if detached)."""
    environ = os.environ if environ is None else environ
    for name in (BRANCH_ENV, *_CI_BRANCH_VARS):
        value = (environ.get(name) or "").strip()
        if value:
            return value.removeprefix("origin/")
    head = _git(repo_root, "rev-parse", "--abbrev-ref", "HEAD")
    head = head.strip() if head else None
    return head if head and head != "HEAD" else None


def is_secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.search(value.strip()))


def safe_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The run-shaping environment variables, with anything that could be a secret left out entirely."""
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in sorted(environ.items())
        if name.startswith(ENV_PREFIXES) and not is_secret(name, value)
    }


def collect(repo_root: Path, lock_file: Path | None = None) -> dict[str, Any]:
    """Provenance of the current process; `lock_file` defaults to `repo_root/requirements.lock`.

    Never raises for a missing git binary, a non-repository, or a missing lock file: those fields are None.
    """
    repo_root = Path(repo_root)
    lock = Path(lock_file) if lock_file is not None else repo_root / "requirements.lock"
    commit, dirty = git_state(repo_root)
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "git_branch": git_branch(repo_root),
        "package_version": evalplatform.__version__,
        "lock_hash": sha256_file(lock) if lock.is_file() else None,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "environment": safe_environment(),
    }
