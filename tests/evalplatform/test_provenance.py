"""Provenance: git state, lock hash, content hashes, and that secrets never reach a run record."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import evalplatform
from evalplatform.provenance import canonical_json, collect, safe_environment, sha256_file, sha256_text

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "suite.yaml").write_text("name: demo\n")
    (root / "requirements.lock").write_text("duckdb==2.0.0\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "init")
    return root


def test_canonical_json_is_order_independent_and_compact():
    a = {"b": [1, 2, {"z": 1, "y": None}], "a": "é", "c": 0.5}
    b = {"c": 0.5, "a": "é", "b": [1, 2, {"y": None, "z": 1}]}
    assert canonical_json(a) == canonical_json(b) == '{"a":"é","b":[1,2,{"y":null,"z":1}],"c":0.5}'
    assert json.loads(canonical_json(a)) == a
    assert canonical_json({"p": Path("x/y"), "s": {3, 1}}) == '{"p":"x/y","s":[1,3]}'
    with pytest.raises(TypeError):
        canonical_json({"f": object()})


def test_hashes_match_known_sha256():
    assert sha256_text("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_text(canonical_json({"b": 1, "a": 2})) == sha256_text('{"a":2,"b":1}')


def test_sha256_file_streams_large_files(tmp_path):
    big = tmp_path / "big.bin"
    data = bytes(range(256)) * 20_000  # ~5 MB, several read blocks
    big.write_bytes(data)
    assert sha256_file(big) == hashlib.sha256(data).hexdigest()


@needs_git
def test_collect_records_commit_and_tracked_changes_only(repo):
    head = _git(repo, "rev-parse", "HEAD")
    info = collect(repo, None)
    assert (info["git_commit"], info["git_dirty"]) == (head, False)
    assert info["lock_hash"] == sha256_file(repo / "requirements.lock")
    assert info["package_version"] == evalplatform.__version__
    assert info["python_version"].count(".") == 2 and info["platform"]

    (repo / "notes.txt").write_text("untracked files do not change what ran")
    assert collect(repo, None)["git_dirty"] is False
    (repo / "suite.yaml").write_text("name: changed\n")
    assert collect(repo, None)["git_dirty"] is True


def test_collect_outside_git_and_without_git_does_not_fail(tmp_path, monkeypatch):
    lock = tmp_path / "other.lock"
    lock.write_text("x==1\n")
    info = collect(tmp_path, lock)
    assert (info["git_commit"], info["git_dirty"]) == (None, None)
    assert info["lock_hash"] == sha256_file(lock)

    monkeypatch.setenv("PATH", str(tmp_path / "no-binaries-here"))
    info = collect(tmp_path, tmp_path / "missing.lock")
    assert (info["git_commit"], info["lock_hash"]) == (None, None)


def test_a_url_with_any_userinfo_is_never_captured(monkeypatch):
    env = {"OPENAI_BASE_URL": "http://tok3n@proxy.internal/v1", "EVALPLATFORM_URL": "https://u:p@h/x",
           "OPENAI_API_BASE": "http://proxy.internal/v1/users/@me"}
    assert safe_environment(env) == {"OPENAI_API_BASE": "http://proxy.internal/v1/users/@me"}


def test_secrets_are_never_captured(tmp_path, monkeypatch):
    secrets = {
        "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "ANTHROPIC_API_KEY": "sk-ant-api03-secretsecret",
        "LITELLM_MASTER_KEY": "master-key-value",
        "DAGSTER_PG_PASSWORD": "hunter2",
        "EVALPLATFORM_AUTH_HEADER": "Bearer abc",
        "EVALPLATFORM_HISTORY_URL": "postgresql://user:pa55word@db.internal:5432/evals",
        "EVALPLATFORM_JUDGE_PARAM": "ghp_0123456789abcdefghijklmnopqrstuvwx",
        "EVALPLATFORM_OPAQUE": "Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4OTAxMjM0NTY3",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EVALPLATFORM_TIER", "nightly")
    monkeypatch.setenv("OPENAI_API_BASE", "http://localhost:11434/v1")
    monkeypatch.setenv("DAGSTER_HOME", "/srv/evalplatform/dagster_home_for_nightly_runs")
    monkeypatch.setenv("HOME_UNRELATED", "ignored")

    record = canonical_json(collect(tmp_path, None))
    for name, value in secrets.items():
        assert value not in record and name not in record
    env = safe_environment()
    assert env["EVALPLATFORM_TIER"] == "nightly"
    assert env["OPENAI_API_BASE"] == "http://localhost:11434/v1"
    assert env["DAGSTER_HOME"] == "/srv/evalplatform/dagster_home_for_nightly_runs"
    assert "HOME_UNRELATED" not in env
