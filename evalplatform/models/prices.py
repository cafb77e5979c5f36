"""Token prices from litellm's bundled cost map, read as a JSON file: pricing a reply never imports litellm."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

_MAP_FILE = "model_prices_and_context_window_backup.json"
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


@lru_cache(maxsize=1)
def _price_map() -> dict[str, Any]:
    # find_spec locates the installed package without running its __init__ (litellm's import takes seconds).
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _MAP_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def _entry(model: str) -> dict[str, Any] | None:
    # Prices registered in this process (litellm.register_model, e.g. for a private deployment) win over the
    # bundled file, as they do on the litellm path; litellm is consulted only if something already imported it.
    litellm = sys.modules.get("litellm")
    registered = getattr(litellm, "model_cost", None) if litellm is not None else None
    for prices in (registered if isinstance(registered, dict) else {}, _price_map()):
        # OpenAI's own models are named without litellm's `openai/` prefix in the map, some others with it.
        for name in dict.fromkeys((model, model.removeprefix("openai/"), f"openai/{model}")):
            entry = prices.get(name)
            if isinstance(entry, dict) and isinstance(entry.get("input_cost_per_token"), (int, float)):
                return entry
    return None


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float | None:
    """What litellm's completion_cost gives an OpenAI-compatible chat reply; None when the model has no price.

    Cached prompt tokens are billed at the cache-read price, and above a tier (`..._above_128k_tokens`)
    both directions take that tier's price, as litellm does.
    """
    entry = _entry(model)
    if entry is None:
        return None
    price_in = float(entry["input_cost_per_token"])
    price_out = float(entry.get("output_cost_per_token") or 0.0)
    tiers = sorted((int(m.group(1)) * 1000, key) for key in entry if (m := _TIER.match(key)))
    for threshold, key in tiers:
        if prompt_tokens > threshold:
            price_in = float(entry[key])
            out_key = key.replace("input_", "output_", 1)
            price_out = float(entry.get(out_key, price_out))
    cached = min(max(cached_tokens, 0), prompt_tokens)
    price_cached = float(entry.get("cache_read_input_token_cost", price_in))
    return (prompt_tokens - cached) * price_in + cached * price_cached + completion_tokens * price_out
