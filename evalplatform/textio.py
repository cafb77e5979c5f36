"""Reading user files: UTF-8 (BOM tolerated), safe YAML, strict JSON, regular expressions; one-line failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from evalplatform.errors import InputError


def decode_utf8(path: str | Path, data: bytes) -> str:
    """UTF-8 text of a file's bytes, a leading BOM dropped; InputError naming the byte otherwise."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"byte {exc.start}", "not valid UTF-8", "save the file as UTF-8") from None


class _DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, first: yaml.Mark, mark: yaml.Mark):
        super().__init__(None, None, f"duplicate key {key!r} (first on line {first.line + 1})", mark)
        self.key = key


# Far deeper than any suite, policy or rubric needs, and shallow enough that nothing downstream
# (the parser, pydantic serialization, json.dumps) can run out of stack on a file that loaded.
MAX_YAML_DEPTH = 100


class _TooDeep(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark):
        super().__init__()
        self.problem_mark = mark


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)
    and nesting deeper than MAX_YAML_DEPTH."""

    _depth = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges are meant to be overridden by the keys beside them
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            if first is not None:
                raise _DuplicateKey(key, first, key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path, data: bytes | str, example: str | None = None) -> Any:
    """Safe YAML of a file's bytes (never the full loader: no tags that build objects); a key given
    twice in a mapping, or nesting too deep to parse, is bad input."""
    text = decode_utf8(path, data) if isinstance(data, bytes) else data
    if not text.strip():
        raise InputError(path, None, "file is empty", f"see {example} for an example" if example else None)
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    except _DuplicateKey as exc:
        mark = exc.problem_mark
        raise InputError(path, f"line {mark.line + 1}: {exc.key}", exc.problem,
                         "give each key once; the second would silently replace the first") from None
    except _TooDeep as exc:
        raise InputError(path, f"line {exc.problem_mark.line + 1}",
                         f"YAML nested too deeply (more than {MAX_YAML_DEPTH} levels)", "flatten the file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(path, at, f"invalid YAML: {problem}") from None
    except RecursionError:
        # The parser recurses once per level: a hostile or generated file must not look like a crash.
        raise InputError(path, None, "YAML nested too deeply to read", "flatten the file") from None
    finally:
        loader.dispose()


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_json(text: str, parse_constant: Any = None) -> Any:
    """json.loads that refuses a key given twice in an object and nesting too deep to parse
    (ValueError with a short message; json.JSONDecodeError, also a ValueError, for malformed text).
    `parse_constant` is json's hook for NaN and Infinity (e.g. to refuse them)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_object, parse_constant=parse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def check_regex(pattern: str) -> str:
    """Compile with the engine that runs it (polars' Rust regex: linear time, no catastrophic
    backtracking, no lookaround or backreferences); ValueError with the parser's message otherwise."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except Exception as exc:  # polars raises ComputeError; its lines say what is wrong
        lines = [ln.strip() for ln in str(exc).strip().splitlines()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "invalid")
        raise ValueError(f"invalid regular expression {pattern!r}: {detail}") from None
    return pattern
