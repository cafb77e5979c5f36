"""Read a policy file: safe YAML, pydantic validation, and the sha256 recorded with every decision."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evalplatform.errors import InputError
from evalplatform.textio import load_yaml
from evalplatform.policy.model import Policy

MAX_POLICY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    path: Path
    sha256: str


def _where(loc: tuple, doc: Any) -> str:
    """A pydantic error location in the file's words: rules[2] (id: x).bound.min."""
    parts: list[str] = []
    node = doc
    for item in loc:
        if isinstance(item, int):
            rule_id = node[item].get("id") if isinstance(node, list) and item < len(node) and isinstance(
                node[item], dict) else None
            parts[-1] += f"[{item}]" + (f" (rule {rule_id})" if rule_id else "")
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "policy"


def parse_policy(data: bytes, path: Path | str = "<policy>") -> LoadedPolicy:
    from evalplatform.suite import PARSES

    PARSES["policy"] += 1
    path = Path(path)
    digest = hashlib.sha256(data).hexdigest()
    doc = load_yaml(path, data, "datasets/demo/policy.yaml")
    if not isinstance(doc, dict):
        raise InputError(path, None, f"expected a mapping with `rules:`, found {type(doc).__name__}",
                         "see datasets/demo/policy.yaml for an example")
    try:
        policy = Policy.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (+{exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise InputError(path, _where(tuple(err["loc"]), doc), msg + more,
                         "see datasets/schema/policy.schema.json") from None
    return LoadedPolicy(policy, path, digest)


# Policies parsed in this process, by file: the same bytes are not parsed twice (a run reads its policy
# from the suite loader, the decision and the Dagster checks).
_PARSED: dict[str, tuple[bytes, LoadedPolicy]] = {}


def load_policy(path: Path | str) -> LoadedPolicy:
    """The validated policy at `path` with the sha256 of its bytes; InputError (exit 2) when unusable."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise InputError(path, None, f"policy file is {size} bytes; a policy is at most {MAX_POLICY_BYTES}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, "policy file not found", "check the --policy path") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a folder, not a policy file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read policy: {exc.strerror}") from None
    key = str(path.resolve())
    hit = _PARSED.get(key)
    if hit is not None and hit[0] == data:
        return hit[1]
    loaded = parse_policy(data, path)
    _PARSED[key] = (data, loaded)
    return loaded


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of the policy file, for editors (exported to datasets/schema/policy.schema.json)."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "evalplatform policy"
    return schema


def write_policy_schema(path: Path | str) -> None:
    Path(path).write_text(json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
