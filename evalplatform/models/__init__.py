"""Model calls: the pinned target, the response cache, the retrying call runner and the offline local provider."""

from evalplatform.models.cache import CachedResponse, ResponseCache, cache_key
from evalplatform.models.calls import CallRequest, CallResult, run_calls, run_calls_sync
from evalplatform.models.local_provider import register_app, registered_apps
from evalplatform.models.redact import redact
from evalplatform.models.retry import Clock
from evalplatform.models.target import Target

__all__ = [
    "CachedResponse", "CallRequest", "Clock", "CallResult", "ResponseCache", "Target", "cache_key", "redact",
    "register_app", "registered_apps", "run_calls", "run_calls_sync",
]
