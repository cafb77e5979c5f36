"""The demo support assistant as a Python pipeline target: the release's skills over help-center retrieval.

The demo suite's target is `evalplatform.demo.pipeline:support`; its `model:` names the release
(local/support-v1 or local/support-v2, as `--model` overrides it). Besides the reply, the pipeline
reports what a real one knows about itself: the articles it retrieved, the skill that answered and
its token counts (the offline assistant is free, so its cost is 0).
"""

from __future__ import annotations

from evalplatform.demo import grounded
from evalplatform.demo.app import route
from evalplatform.demo.knowledge import load
from evalplatform.demo.versions import VERSIONS
from evalplatform.targets import CaseInput, Step, TargetResult

DEFAULT_RELEASE = "local/support-v1"
RETRIEVED = 3


def release_of(model: str | None) -> str:
    """`local/support-v2` or `support-v2` -> support-v2; LookupError for a release that does not exist."""
    name = (model or DEFAULT_RELEASE).rsplit("/", 1)[-1]
    if name not in VERSIONS:
        raise LookupError(f"no demo release {model!r} (known: {', '.join('local/' + v for v in VERSIONS)})")
    return name


def _words(messages: list[dict]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in messages)


def support(case: CaseInput) -> TargetResult:
    """Answer the case's last user message as the release named by `case.model` would."""
    release = release_of(case.model)
    params = {**case.params, "seed": case.seed}
    hits = grounded.retrieve(load(), case.prompt, k=RETRIEVED)
    reply, skill = route(case.messages, params, version=release)
    return TargetResult(
        output=reply,
        context=[{"article": a.id, "title": a.title, "score": round(s, 3)} for a, s in hits],
        steps=[Step(name="retrieve", k=RETRIEVED), Step(name="answer", skill=skill, release=release)],
        tokens_in=_words(case.messages), tokens_out=len(reply.split()), cost_usd=0.0,
    )
