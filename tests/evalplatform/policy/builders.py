"""Small canonical result tables and policies for the policy tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from evalplatform import results
from evalplatform.policy import parse_policy

REPO = Path(__file__).resolve().parents[3]
PEER = REPO / "tests" / "fixtures" / "peer-results"
POLICIES = REPO / "tests" / "fixtures" / "policies"


def rows(n_pass: int, n_fail: int = 0, n_error: int = 0, *, scorer: str = "s", repeat: int = 0, prefix: str = "c",
         tags: list[str] | None = None, start: int = 0, **extra) -> list[dict]:
    """One row per case: n_pass passing, then n_fail failing, then n_error errored cases."""
    out = []
    outcomes = ["pass"] * n_pass + ["fail"] * n_fail + ["error"] * n_error
    for i, outcome in enumerate(outcomes, start=start):
        out.append({"run_id": "cand", "suite": "demo", "case_id": f"{prefix}{i:05d}", "repeat": repeat,
                    "scorer": scorer, "outcome": outcome,
                    "score": {"pass": 1.0, "fail": 0.0, "error": None}[outcome],
                    "tags": list(tags or []), "case_hash": f"h-{prefix}{i:05d}", "latency_ms": 100.0 + i,
                    "cost_usd": 0.001, **extra})
    return out


def frame(*parts: list[dict]) -> pl.DataFrame:
    return results.from_rows([r for part in parts for r in part])


def policy(yaml_text: str):
    return parse_policy(yaml_text.encode(), "test-policy.yaml").policy


def one_rule(rule_yaml: str):
    """A policy with one rule given as indented YAML mapping lines (without the leading dash)."""
    body = "\n".join("    " + line if line.strip() else line for line in rule_yaml.strip("\n").splitlines())
    return policy("rules:\n  - id: r\n" + body + "\n")
