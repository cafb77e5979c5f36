"""The offline `local/<app>` litellm provider: serves in-process apps with no network and no key.

Apps register with `register_app(name, fn)`; `fn(messages, params) -> reply text`. This module
does not import litellm until `install()` is called (by the model-call layer on its first miss),
so registering an app at import time stays cheap.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from typing import Any, Callable

AppFn = Callable[[list[dict], dict], str]

PROVIDER = "local"
# Imported the first time an unknown app is asked for, so `local/support-v1` works without the caller importing it.
DEMO_MODULE = "evalplatform.demo"

_apps: dict[str, AppFn] = {}
_lock = threading.Lock()
_installed = False
_demo_tried = False


class LocalAppError(LookupError):
    """A local app is unknown or failed. Permanent: retrying cannot help."""

    # A status code keeps litellm from appending its "file a bug" notice when it wraps this error.
    status_code = 400


class UnknownAppError(LocalAppError):
    """No app is registered under the name: the target does not exist."""


def register_app(name: str, fn: AppFn) -> None:
    """Make `local/<name>` answer with `fn(messages, params)`. Re-registering a name replaces it."""
    if not name or "/" in name or name != name.strip():
        raise ValueError(f"app name must be non-empty, without '/' or surrounding spaces: {name!r}")
    if not callable(fn):
        raise TypeError(f"app {name!r}: fn must be callable")
    with _lock:
        _apps[name] = fn
        installed = _installed
    if installed:
        _register_price(name)


def registered_apps() -> list[str]:
    return sorted(_apps)


_demo_lock = threading.Lock()


def _load_demo_apps() -> None:
    """Import the bundled demo apps once. Concurrent callers (handler threads) wait for the import
    to finish instead of seeing a half-registered module and failing with "unknown app"."""
    global _demo_tried
    with _demo_lock:
        if _demo_tried:
            return
        try:
            importlib.import_module(DEMO_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name not in (DEMO_MODULE, DEMO_MODULE.split(".")[0]):
                raise
        finally:
            _demo_tried = True


def _lookup(name: str) -> AppFn:
    fn = _apps.get(name)
    if fn is None:
        _load_demo_apps()
        fn = _apps.get(name)
    if fn is None:
        known = ", ".join(registered_apps()) or "none"
        raise UnknownAppError(
            f"local provider: unknown app {name!r} (known apps: {known}); "
            f"register it with evalplatform.models.local_provider.register_app({name!r}, fn)"
        )
    return fn


def _words(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):  # multi-part content: count the text parts
        return sum(len(str(p.get("text", "")).split()) for p in content if isinstance(p, dict))
    return 0


def answer(name: str, messages: list[dict], params: dict | None = None) -> tuple[str, int, int]:
    """Reply text and usage (whitespace word counts in, out) of app `name`."""
    fn = _lookup(name)
    try:
        text = fn(messages, dict(params or {}))
    except LocalAppError:
        raise
    except Exception as exc:
        raise LocalAppError(f"local app {name!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(text, str):
        raise LocalAppError(f"local app {name!r} returned {type(text).__name__}, expected str")
    return text, sum(_words(m.get("content")) for m in messages), len(text.split())


def _register_price(name: str) -> None:
    import litellm

    # Without a price entry completion_cost raises ModelNotMappedError; local apps cost nothing.
    litellm.register_model({f"{PROVIDER}/{name}": {
        "input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "litellm_provider": PROVIDER, "mode": "chat",
    }})


def _make_handler():
    from litellm import CustomLLM
    from litellm.types.utils import Usage

    def fill(model, messages, model_response, text, tokens_in, tokens_out):
        model_response.choices[0].message.content = text
        model_response.choices[0].finish_reason = "stop"
        model_response.model = model
        setattr(model_response, "usage", Usage(prompt_tokens=tokens_in, completion_tokens=tokens_out,
                                               total_tokens=tokens_in + tokens_out))
        return model_response

    def sampling(optional_params: dict | None) -> dict:
        return {k: v for k, v in (optional_params or {}).items() if k != "max_retries"}

    # Signatures as litellm 1.106.2 calls them (positional and keyword), see research/deps.md appendix.
    class LocalHandler(CustomLLM):
        def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose,
                       encoding, api_key, logging_obj, optional_params, acompletion=None, litellm_params=None,
                       logger_fn=None, headers={}, timeout=None, client=None):
            return fill(model, messages, model_response, *answer(model, messages, sampling(optional_params)))

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose,
                              encoding, api_key, logging_obj, optional_params, acompletion=None, litellm_params=None,
                              logger_fn=None, headers={}, timeout=None, client=None):
            # In a thread: a slow app must not stall the event loop, and the caller's timeout can still fire.
            result = await asyncio.to_thread(answer, model, messages, sampling(optional_params))
            return fill(model, messages, model_response, *result)

    return LocalHandler()


def install() -> None:
    """Register the `local` provider with litellm (idempotent). Imports litellm."""
    global _installed
    import litellm

    with _lock:
        if _installed:
            return
        entries = [e for e in (litellm.custom_provider_map or []) if e.get("provider") != PROVIDER]
        litellm.custom_provider_map = entries + [{"provider": PROVIDER, "custom_handler": _make_handler()}]
        _installed = True
        names = list(_apps)
    for name in names:
        _register_price(name)
