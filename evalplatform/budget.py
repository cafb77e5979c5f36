"""A run's spending limits (dollars, model calls): the estimate checked before the first call, the count kept during it.

The estimate is made from the plan (the target's calls, each judge's verdicts) and the history's token averages
per model (the prompt's own size and max_tokens when the history has none), priced by litellm's cost map (local
models cost nothing). A run estimated above a limit is refused before anything is called or written; a run that
reaches a limit midway makes no further call: every call left is an error `budget exhausted` and the gate fails
closed. Calls already in flight when the limit is reached finish, so a run can pass its dollar limit by at most
the cost of the calls its concurrency allows at once.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from evalplatform.errors import InputError

if TYPE_CHECKING:
    from evalplatform.history import HistoryStore
    from evalplatform.models.target import Target
    from evalplatform.request import RunRequest
    from evalplatform.runner import RunPlan

EXHAUSTED = "budget exhausted"
BUDGET_RULE = "run_within_budget"
_CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text, when the history has no token counts


@dataclass(frozen=True)
class Limits:
    """The run's limits and where each was set (`--budget-usd`, `tiers.pr.budget_usd`, `budget_usd`)."""

    budget_usd: float | None = None
    max_calls: int | None = None
    budget_from: str | None = None
    calls_from: str | None = None

    @property
    def any(self) -> bool:
        return self.budget_usd is not None or self.max_calls is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def limits_for(plan: "RunPlan", request: "RunRequest | None" = None) -> Limits:
    """The limits of a run: the request's (CLI) over the tier's over the suite's."""
    from evalplatform.suite import TierSpec

    spec = plan.suite.spec
    tier = spec.tiers.get(plan.tier) or TierSpec()
    budget, budget_from, calls, calls_from = spec.budget_usd, "budget_usd", spec.max_calls, "max_calls"
    if tier.budget_usd is not None:
        budget, budget_from = tier.budget_usd, f"tiers.{plan.tier}.budget_usd"
    if tier.max_calls is not None:
        calls, calls_from = tier.max_calls, f"tiers.{plan.tier}.max_calls"
    if request is not None and request.budget_usd is not None:
        budget, budget_from = request.budget_usd, "--budget-usd"
    if request is not None and request.max_calls is not None:
        calls, calls_from = request.max_calls, "--max-calls"
    return Limits(budget, calls, budget_from if budget is not None else None, calls_from if calls is not None else None)


class Budget:
    """What a run has spent; a model call starts only while the run is within its limits (cache hits are free)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.spent_usd = 0.0
        self.calls = 0
        self.refused = 0
        self.unpriced = 0
        self._lock = threading.Lock()

    def admit(self) -> bool:
        """Whether one more model call may start (counting it when it may)."""
        with self._lock:
            if self._reached() is not None:
                self.refused += 1
                return False
            self.calls += 1
            return True

    def spend(self, cost_usd: float | None) -> None:
        with self._lock:
            if cost_usd is None:
                self.unpriced += 1
            else:
                self.spent_usd += float(cost_usd)

    def _reached(self) -> str | None:
        lim = self.limits
        if lim.max_calls is not None and self.calls >= lim.max_calls:
            return f"{self.calls} model calls made, the limit of {lim.calls_from} ({lim.max_calls})"
        # At the limit no priced call may start; a zero budget still admits free calls (local models, cache).
        if lim.budget_usd is not None and (self.spent_usd > lim.budget_usd
                                           or 0 < lim.budget_usd <= self.spent_usd):
            return f"${self.spent_usd:.4f} spent, the limit of {lim.budget_from} (${lim.budget_usd:g})"
        return None

    @property
    def exhausted(self) -> bool:
        """Whether a call was refused: the run is missing evidence it planned, so it cannot pass."""
        return self.refused > 0

    def reason(self) -> str:
        with self._lock:
            reached = self._reached() or "the limit"
            return f"{EXHAUSTED}: {reached}; {self.refused} planned call(s) not made (their rows are errors)"

    def to_dict(self) -> dict[str, Any]:
        return {"spent_usd": round(self.spent_usd, 6), "calls": self.calls, "refused": self.refused,
                "unpriced_calls": self.unpriced, "limits": self.limits.to_dict()}


# -- the estimate -------------------------------------------------------------------------------


@dataclass
class ModelEstimate:
    """The calls planned for one model (the target, or one judge scorer) and what they should cost."""

    role: str                 # "target" or "judge <scorer id>"
    model: str
    calls: int
    tokens_in: float          # per call (per trial for a conversation or a Python target)
    tokens_out: float         # per call (per trial for a conversation or a Python target)
    token_source: str
    cost_usd: float | None    # all of its calls; None when litellm knows no price for the model


@dataclass
class Estimate:
    parts: list[ModelEstimate] = field(default_factory=list)
    cached: int = 0           # target calls the response cache will answer (free)
    extension: int = 0        # most target calls an adaptive extension may add (bounded by the limits too)

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.parts)

    @property
    def target_calls(self) -> int:
        return sum(p.calls for p in self.parts if p.role == "target")

    @property
    def judge_calls(self) -> int:
        return self.calls - self.target_calls

    @property
    def cost_usd(self) -> float | None:
        costs = [p.cost_usd for p in self.parts if p.calls]
        return None if any(c is None for c in costs) else float(sum(costs))

    def unpriced(self) -> list[str]:
        return sorted({p.model for p in self.parts if p.calls and p.cost_usd is None})

    def line(self) -> str:
        cost = "cost unknown (no price or cost history for " + ", ".join(self.unpriced()) + ")" if self.cost_usd is None \
            else f"~${self.cost_usd:.4f}"
        cached = f", {self.cached} more from the cache" if self.cached else ""
        more = f"; an undecided rule may add up to {self.extension} target calls (adaptive)" if self.extension else ""
        return (f"estimate: {self.calls} model calls (target {self.target_calls}{cached}, judges {self.judge_calls}) "
                f"{cost}{more}")

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "target_calls": self.target_calls, "judge_calls": self.judge_calls,
                "cached_target_calls": self.cached, "cost_usd": self.cost_usd, "extension_max_calls": self.extension,
                "parts": [asdict(p) for p in self.parts]}


def _price(model: str, tokens_in: float, tokens_out: float) -> float | None:
    """Price of one call by litellm's cost map; local models (our offline provider) cost nothing.

    The map is read as a file (evalplatform.models.prices), so estimating never imports litellm for a model
    the map names; litellm itself is asked only for a model the file does not name that is not an
    `openai/` one (those go through litellm anyway, and it knows provider-specific names and registrations).
    """
    from evalplatform.models import local_provider, prices

    if model.startswith(f"{local_provider.PROVIDER}/"):
        return 0.0
    n_in, n_out = max(0, round(tokens_in)), max(0, round(tokens_out))
    cost = prices.cost_usd(model, n_in, n_out)
    if cost is not None or model.startswith("openai/"):
        return cost
    from evalplatform.models.calls import _load_litellm

    litellm = _load_litellm()
    try:
        cost_in, cost_out = litellm.cost_per_token(model=model, prompt_tokens=n_in, completion_tokens=n_out)
    except Exception:  # litellm raises for a model it has no price for
        return None
    return float(cost_in) + float(cost_out)


def _chars(messages: list[dict]) -> int:
    return sum(len(str(m.get("content") or "")) for m in messages)


def _averages(store: "HistoryStore | None", suite: str, target_model: str, judges: list[str]) -> dict:
    if store is None:
        return {}
    return store.token_averages(suite, target_model, judges)


def _cached(plan: "RunPlan", cache_dir, skip: set[str]) -> int:
    """Single-turn target calls of the plan the response cache already holds (they cost nothing); a Python
    target's trials and conversations (`skip`) are not counted: the estimate stays an upper bound for them."""
    from evalplatform.targets.spec import is_python

    if cache_dir is None or is_python(plan.target):
        return 0
    from evalplatform.models.cache import ResponseCache

    cache, target = ResponseCache(cache_dir), plan.target
    params = target.params()
    return sum(1 for r in plan.requests if r.case_id not in skip
               and cache.path(cache.key(target.model, target.api_base, target.messages(r.messages), params,
                                        target.seed, r.repeat)).is_file())


def _target_part(plan: "RunPlan", seen: dict, cached: int) -> tuple[ModelEstimate, float, float]:
    """The target's estimate, and the prompt size (characters) and reply tokens a judge will see per trial.

    A model target makes one call per single-turn case and one per turn of a conversation; a Python target
    (a pipeline or agent) counts one call per trial and costs what its trials reported in the history
    (unknown before its first run: it may call any model, so no price can be looked up)."""
    from evalplatform.conversation import turns_of
    from evalplatform.targets.dispatch import conversations
    from evalplatform.targets.spec import is_python

    target, requests = plan.target, plan.requests
    trials = len(requests) - cached
    found = seen.get("target")
    if is_python(target):
        from evalplatform.models import local_provider

        name = target.model or target.label
        cost = found.get("cost_usd") if found else None
        source = f"history ({found['n']} trials)" if found and cost is not None else \
            "no cost history for a Python target"
        if cost is None and name.startswith(f"{local_provider.PROVIDER}/"):
            cost, source = 0.0, "a local model (free)"
        t_in = float((found or {}).get("tokens_in") or 0.0)
        t_out = float((found or {}).get("tokens_out") or 0.0)
        part = ModelEstimate("target", name, trials, t_in, t_out, source,
                             None if cost is None else float(cost) * trials if trials else 0.0)
        return part, 0.0, t_out
    convs = conversations(plan.cases, plan.suite.path)
    turns = {k: len(turns_of(v)) for k, v in convs.items()}
    calls = sum(turns.get(r.case_id, 1) for r in requests) - cached
    sizes = [sum(len(str(m.content or "")) for m in convs[r.case_id]) if r.case_id in convs
             else _chars(target.messages(r.messages)) for r in requests]
    prompt = sum(sizes) / len(sizes) if sizes else 0.0
    per_trial = sum(turns.get(r.case_id, 1) for r in requests) / len(requests) if requests else 1.0
    if found and found.get("tokens_in") is not None:
        # The history's numbers are per (case, repeat): a conversation's are its turns' sums.
        t_in, t_out, source = found["tokens_in"], found["tokens_out"], f"history ({found['n']} calls)"
    else:
        t_in, t_out = prompt / _CHARS_PER_TOKEN * per_trial, float(target.max_tokens) * per_trial
        source = "prompt size and max_tokens (no history)"
    one = _price(target.model, t_in, t_out) if trials else 0.0
    return (ModelEstimate("target", target.model, calls, t_in, t_out, source, None if one is None else one * trials),
            prompt, t_out)


def estimate_run(plan: "RunPlan", store: "HistoryStore | None" = None, cache_dir=None) -> Estimate:
    """The calls a run will make (target and judges) and their cost, before any is made."""
    from evalplatform.judges.llm_judge import LLMJudge
    from evalplatform.suite import TierSpec
    from evalplatform.targets.dispatch import conversations

    judges = [s for s in plan.scorers if isinstance(s, LLMJudge)]
    name = getattr(plan.target, "model", None) or getattr(plan.target, "label", "")
    seen = _averages(store, plan.suite.name, name, [j.id for j in judges])
    est = Estimate(cached=_cached(plan, cache_dir, set(conversations(plan.cases, plan.suite.path))))
    adaptive = (plan.suite.spec.tiers.get(plan.tier) or TierSpec()).adaptive_for(plan.tier)
    if adaptive.enabled:
        rest = plan.dataset.cases.height - plan.cases.height
        est.extension = min(adaptive.max_extra_cases, max(0, rest)) * plan.repeats
    target, prompt, t_out = _target_part(plan, seen, est.cached)
    est.parts.append(target)
    for judge in judges:
        # One verdict per (case, repeat) the judge applies to, whether the target call is cached or not.
        scope = set(plan.cases.filter(judge.applies())["case_id"].to_list()) if plan.cases.height else set()
        n = sum(1 for r in plan.requests if r.case_id in scope)
        found = seen.get(judge.id)
        if found:
            j_in, j_out, source = found["tokens_in"], found["tokens_out"], f"history ({found['n']} verdicts)"
        else:
            reply = t_out * _CHARS_PER_TOKEN
            j_in = (len(judge.system) + prompt + reply) / _CHARS_PER_TOKEN
            j_out, source = float(judge.judge.max_tokens), "prompt size and max_tokens (no history)"
        one = _price(judge.judge.model, j_in, j_out) if n else 0.0
        est.parts.append(ModelEstimate(f"judge {judge.id}", judge.judge.model, n, j_in, j_out, source,
                                       None if one is None else one * n))
    return est


def check(estimate: Estimate, limits: Limits, suite_file: Any) -> None:
    """InputError (exit 2, one line) when the estimate exceeds a limit, or cannot be priced under a dollar limit;
    it names the suite file and field that set the limit, or the command-line option."""
    def file(where: str | None) -> Any:
        return None if (where or "").startswith("--") else suite_file

    fewer = "or run fewer cases, repeats or judges on this tier"
    if limits.max_calls is not None and estimate.calls > limits.max_calls:
        raise InputError(file(limits.calls_from), limits.calls_from,
                         f"the run would make about {estimate.calls} model calls (target {estimate.target_calls}, "
                         f"judges {estimate.judge_calls}), over the limit of {limits.max_calls}",
                         f"raise the limit, {fewer}")
    if limits.budget_usd is None:
        return
    if estimate.cost_usd is None:
        raise InputError(file(limits.budget_from), limits.budget_from,
                         f"cannot hold the run to a dollar budget: litellm has no price for "
                         f"{', '.join(estimate.unpriced())}",
                         "register its price with litellm (litellm.register_model), or use max_calls instead")
    if estimate.cost_usd > limits.budget_usd:
        raise InputError(file(limits.budget_from), limits.budget_from,
                         f"the run is estimated at ${estimate.cost_usd:.4f} ({estimate.calls} model calls), over the "
                         f"budget of ${limits.budget_usd:g}", f"raise the budget, {fewer}")
