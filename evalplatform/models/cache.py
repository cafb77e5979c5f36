"""Content-addressed store of model responses on disk, safe for several processes sharing one directory."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalplatform.provenance import canonical_json, sha256_text

# Bump when the key recipe changes, so old entries stop matching instead of being misread.
KEY_VERSION = 1
_KEY = re.compile(r"^[0-9a-f]{64}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class CachedResponse(BaseModel):
    """One successful model response, with the latency measured when it was first produced."""

    model_config = ConfigDict(extra="ignore")

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    latency_ms: float
    model: str
    created_at: str = Field(default_factory=_now)
    # A Python target's trial trace (transcript, tool calls, final state); None for a model's reply.
    trace: dict[str, Any] | None = None


def cache_key(model: str, api_base: str | None, messages: list[dict], params: dict[str, Any],
              seed: int | None, repeat: int) -> str:
    """sha256 of the canonical JSON of everything that determines a sample (repeat index included)."""
    payload = {
        "v": KEY_VERSION,
        "model": model,
        "api_base": api_base,
        "messages": messages,
        "params": params,
        "seed": seed,
        "repeat": repeat,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entry_digest(key: str, response: dict[str, Any]) -> str:
    """sha256 of an entry's key and response as stored; an entry whose digest does not match was edited."""
    return sha256_text(canonical_json({"key": key, "response": response}))


class ResponseCache:
    """Entries live at `root/<first two hex chars>/<key>.json`, each with the sha256 of its content.

    Writers write a temp file in the entry's directory and `os.replace` it into place, which is
    atomic on one filesystem: a reader sees either no entry or a whole one, never a partial file.
    Two processes writing the same key both write complete files and the last rename wins.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    key = staticmethod(cache_key)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a cache key (64 lowercase hex chars): {key!r}")
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedResponse | None:
        """The stored response, or None on a miss. An unreadable, corrupt or edited entry counts as a miss."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("response"), dict):
                return None
            # A hand-edited answer must never be served as the model's. Text that UTF-8 cannot encode
            # (an edited "\ud800") raises here, a ValueError, so it is a miss too.
            if doc.get("sha256") != entry_digest(key, doc["response"]):
                return None
            return CachedResponse.model_validate(doc["response"])
        except (ValueError, ValidationError):
            return None

    def put(self, key: str, response: CachedResponse) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = response.model_dump(mode="json")
        body = json.dumps({"key": key, "response": stored, "sha256": entry_digest(key, stored)},
                          sort_keys=True, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.exists() else 0
