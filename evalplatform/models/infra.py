"""Whether a batch of model calls measured the infrastructure instead of the model: then no verdict is given."""

from __future__ import annotations

from collections import Counter

from evalplatform.errors import InfraError, InputError
from evalplatform.models.calls import CallResult
from evalplatform.models.redact import redact
from evalplatform.models.target import Target

_MAX_FIRST_ERROR = 240


def _endpoint(target: Target) -> str:
    if getattr(target, "python", None):  # a Python target (targets.spec.PythonTarget): its dependencies failed
        return f"the Python target {target.python}'s dependencies"
    return redact(target.api_base) if target.api_base else f"{target.model} (the provider's default endpoint)"


def _first_error(calls: list[CallResult]) -> str:
    text = next((c.error for c in calls if c.error), "") or ""
    return text if len(text) <= _MAX_FIRST_ERROR else text[:_MAX_FIRST_ERROR - 3] + "..."


def _cause(calls: list[CallResult]) -> str:
    """The most common cause under the connection errors ("connection refused", "DNS: ...")."""
    causes = Counter(c.attempt_log[-1].get("cause") for c in calls if c.attempt_log)
    causes.pop(None, None)
    return causes.most_common(1)[0][0] if causes else "no connection"


def infrastructure_failure(calls: list[CallResult], target: Target) -> str | None:
    """Why this batch is an infrastructure failure, or None when its results may be scored.

    Unreachable: every call that went out (cache hits did not) failed to connect. Otherwise: more than
    `target.max_infra_error_share` of all calls failed for the endpoint's reasons (retry.INFRA_KINDS).
    """
    if not calls:
        return None
    sent = [c for c in calls if not c.cache_hit]
    where = _endpoint(target)
    if sent and all(c.error_kind == "connection" for c in sent):
        return (f"target unreachable: {len(sent)} of {len(sent)} calls failed to connect to {where} "
                f"({_cause(sent)}); first error: {_first_error(sent)}")
    if len(sent) >= 2 and all(c.error_kind == "client_error" for c in sent):
        # Every request refused as malformed (400/422): a wrong model string or parameter, not a verdict.
        raise InputError(None, "target", f"the endpoint {where} refused all {len(sent)} requests as bad "
                         f"requests; first error: {_first_error(sent)}",
                         "check target.model (the provider prefix and model name) and its parameters")
    infra = [c for c in calls if c.infra_error]
    share = len(infra) / len(calls)
    if not infra or share <= target.max_infra_error_share:
        return None
    kinds = ", ".join(f"{n} {kind}" for kind, n in Counter(c.error_kind for c in infra).most_common())
    return (f"infrastructure failure: {len(infra)} of {len(calls)} calls ({share:.0%}) to {where} failed on the "
            f"endpoint's side ({kinds}), more than target.max_infra_error_share {target.max_infra_error_share:g}; "
            f"first error: {_first_error(infra)}")


def check_infrastructure(calls: list[CallResult], target: Target) -> None:
    """Raise InfraError (exit 3) when the calls measured the infrastructure; call after the calls, before scoring."""
    reason = infrastructure_failure(calls, target)
    if reason is not None:
        raise InfraError(reason)
