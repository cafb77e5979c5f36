"""Suite files: the eval-as-code definition of what to run, against which target, scored how, gated where."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalplatform.errors import InputError
from evalplatform.textio import load_yaml
from evalplatform.scorers.specs import ScorerSpec
from evalplatform.targets.spec import TARGET_TAGS, AnyTarget

SUITE_SCHEMA_VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetRef(_Strict):
    path: str = Field(description="Case file (JSONL, CSV or Parquet), relative to the suite file.")
    source: Literal["golden", "regression", "trace"] | None = Field(
        default=None, description="Default `source` tag for rows that do not set one."
    )


class Gate(_Strict):
    pass_rate_floor: float = Field(
        ge=0, le=1, description="The one-sided lower confidence bound of the pass rate must be at least this."
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class Adaptive(_Strict):
    """More evidence before an INCONCLUSIVE blocking rule blocks: extra cases (or repeats) in stages, each look
    at its share of the rule's error (spent over the looks, so extending does not inflate false passes)."""

    enabled: bool = Field(default=True, description="false: one look, INCONCLUSIVE blocks at once.")
    max_extra_cases: int = Field(
        default=40, ge=0, le=100_000,
        description="Most cases added from the rest of the suite (the cases the undecided rule selects).")
    max_extra_repeats: int = Field(
        default=2, ge=0, le=100, description="Most repeats added, for rules whose unit is a repeat (pass_at_k, "
                                             "pass_hat_k) or that have no case left to add.")
    max_looks: int = Field(default=3, ge=2, le=10, description="Looks in all, the run's own included.")
    max_cost_usd: float | None = Field(
        default=None, ge=0, description="Stop adding evidence once the extra calls would cost more than this.")
    spending: Literal["pocock", "obrien_fleming"] = Field(
        default="pocock", description="How each rule's error is spent over its looks: pocock spends early, "
                                      "so the run's own look keeps most of it; obrien_fleming keeps it for the last.")

    @model_validator(mode="before")
    @classmethod
    def _from_bool(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


# Without `adaptive:` the PR tier extends with this modest budget and the nightly tier (already full) does not.
ADAPTIVE_DEFAULTS = {"pr": Adaptive(), "nightly": Adaptive(enabled=False)}


# Without `scorers:` a tier runs these cost tiers: the PR tier the cheap ones (minutes, not hours, and no LLM
# judge bill on every change), the nightly tier everything the suite defines (its LLM and frontier judges).
DEFAULT_TIER_SCORERS: dict[str, list[str] | None] = {"pr": ["deterministic", "cheap_judge"], "nightly": None}


class PipelineSLOs(_Strict):
    """The suite's pipeline SLOs (the `<suite>/pipeline_slos` asset and its checks), over its latest runs."""

    runs: int = Field(default=20, ge=1, le=10_000, description="How many of the latest runs each SLO looks at.")
    pr_wall_p95_s: float = Field(default=600.0, gt=0, allow_inf_nan=False, description="PR-tier wall time P95 (start to decision) "
                                                                  "must stay under this many seconds.")
    min_success_rate: float = Field(default=0.95, ge=0, le=1, allow_inf_nan=False, description="Share of started runs that reached a "
                                                                          "decision (failed and abandoned runs "
                                                                          "count against it).")
    min_cases_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Throughput floor (cases scored "
                                                                               "per minute of run wall time); "
                                                                               "unset: reported only.")
    max_judge_cost_per_run_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Mean judge cost per run "
                                                                                     "ceiling; unset: reported "
                                                                                     "only.")
    max_freshness_p95_h: float = Field(default=168.0, gt=0, allow_inf_nan=False, description="Flag-to-regression-case time P95 of "
                                                                        "production failures (hours).")


class TierSpec(_Strict):
    include_sources: list[Literal["golden", "regression", "trace"]] = Field(
        default_factory=list, description="Cases from these sources are always included (e.g. the regression set)."
    )
    stratify_by: str | None = Field(default=None, description="Case field to stratify the slice by (e.g. category).")
    per_stratum: int | None = Field(default=None, ge=1, description="Cases drawn per stratum; all when unset.")
    seed: int = Field(default=0, description="Seed of the hash-based, reproducible slice.")
    repeats: int | None = Field(default=None, ge=1, le=100, description="Overrides the suite's repeats.")
    adaptive: Adaptive | None = Field(
        default=None, description="Evidence an INCONCLUSIVE blocking rule may buy before it blocks (`false` turns it "
                                  "off). Unset: on for pr (40 cases, 2 repeats, 3 looks), off for nightly.")
    scorers: list[str] | None = Field(
        default=None, description="The scorers this tier runs: scorer ids and/or cost tiers (deterministic, "
                                  "cheap_judge, llm_judge, frontier_judge). Unset: pr runs deterministic and "
                                  "cheap_judge, nightly runs every scorer. A judge not allowed to gate (refused, "
                                  "stale, uncalibrated) is never called where it would gate.")
    budget_usd: float | None = Field(
        default=None, ge=0, allow_inf_nan=False,
        description="Most a run of this tier may spend on model calls (target and judges). A run estimated above "
                    "it is refused before it starts; one that reaches it stops calling, the rest error "
                    "`budget exhausted` and the gate fails. Overrides the suite's budget_usd.")
    max_calls: int | None = Field(
        default=None, ge=1, description="Most model calls (target and judges, cache hits not counted) a run of this "
                                        "tier may make; enforced like budget_usd. Overrides the suite's max_calls.")

    def scorers_for(self, tier: str) -> list[str] | None:
        """The tier's scorer selection (ids and cost tiers), with the tier's default; None: every scorer."""
        return self.scorers if self.scorers is not None else DEFAULT_TIER_SCORERS.get(tier)

    @field_validator("scorers")
    @classmethod
    def _scorers_listed_once(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("lists no scorer; remove it to run the tier's default scorers")
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"{next(x for x in v if v.count(x) > 1)!r} is listed twice")
        return v

    def adaptive_for(self, tier: str) -> Adaptive:
        """The tier's adaptive settings, with the tier's default when the file says nothing."""
        if self.adaptive is not None:
            return self.adaptive
        return ADAPTIVE_DEFAULTS.get(tier, Adaptive(enabled=False))


class RetiredCase(_Strict):
    """A regression case taken out on purpose: recorded with why and when, never silently deleted."""

    id: str = Field(min_length=1, description="The case id, as it stood in the regression set.")
    reason: str = Field(min_length=3, description="Why the case no longer applies (e.g. the feature was removed).")
    date: dt.date = Field(description="When it was retired (YYYY-MM-DD).")


class Suite(_Strict):
    schema_version: Literal[1] = SUITE_SCHEMA_VERSION
    name: str = Field(description="Lower-case identifier, used as the Dagster partition key.")
    description: str = ""
    datasets: list[DatasetRef] = Field(min_length=1)
    prompt: str = Field(description="Prompt template file, relative to the suite file; {{ field }} placeholders.")
    target: AnyTarget = Field(description="a litellm model ({model: ...}) or your Python pipeline or agent "
                                          '({python: "package.module:function"})')
    concurrency: int = Field(default=8, ge=1, le=512)
    repeats: int = Field(default=1, ge=1, le=100)
    scorers: list[ScorerSpec] = Field(min_length=1)
    gate: Gate
    policy: str | None = Field(
        default=None, description="Release policy file (relative to the suite file); without one, the gate's floor is the policy.")
    tiers: dict[Literal["pr", "nightly"], TierSpec] = Field(default_factory=lambda: {"pr": TierSpec(), "nightly": TierSpec()})
    retired: list[RetiredCase] = Field(
        default_factory=list, description="Regression cases retired on purpose (reason and date): the append-only "
                                          "check of the regression set allows them to be missing or changed, and runs "
                                          "leave them out.")
    budget_usd: float | None = Field(
        default=None, ge=0, allow_inf_nan=False,
        description="Most a run may spend on model calls (target and judges), unless its tier says otherwise: a run "
                    "estimated above it is refused (exit 2); one that reaches it stops and fails closed.")
    max_calls: int | None = Field(default=None, ge=1, description="Most model calls a run may make (target and "
                                                                   "judges), unless its tier says otherwise.")
    pipeline_slos: PipelineSLOs = Field(default_factory=PipelineSLOs, description="Targets of the pipeline's SLOs.")
    mutators: list[str] = Field(
        default_factory=list, description="Degradations `evalplatform discriminate` injects into recorded outputs, "
                                          "besides flipping passing outputs to failing, and re-scores with the "
                                          "suite's deterministic scorers: truncate_half, drop_digits, "
                                          "drop_first_sentence, empty_reply.")

    @field_validator("mutators")
    @classmethod
    def _known_mutators(cls, v: list[str]) -> list[str]:
        from evalplatform.mutators import MUTATORS

        unknown = [m for m in v if m not in MUTATORS]
        if unknown:
            raise ValueError(f"unknown mutator {unknown[0]!r}; known: {', '.join(MUTATORS)}")
        if len(set(v)) != len(v):
            raise ValueError("a mutator is listed twice")
        return v

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (at most 64 characters)")
        return v

    @field_validator("datasets", mode="before")
    @classmethod
    def _paths_as_refs(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"path": x} if isinstance(x, str) else x for x in v]
        return v

    @model_validator(mode="after")
    def _unique_retired(self) -> "Suite":
        ids = [r.id for r in self.retired]
        dup = next((i for i in ids if ids.count(i) > 1), None)
        if dup is not None:
            raise ValueError(f"case {dup!r} is retired twice")
        return self

    @model_validator(mode="after")
    def _unique_scorer_ids(self) -> "Suite":
        seen: set[str] = set()
        for s in self.scorers:
            if s.id in seen:
                raise ValueError(f"duplicate scorer id {s.id!r}")
            seen.add(s.id)
        return self

    @model_validator(mode="after")
    def _tier_scorers_known(self) -> "Suite":
        from evalplatform.results import TIER_COSTS

        ids = {s.id for s in self.scorers}
        for tier, spec in self.tiers.items():
            for i, name in enumerate(spec.scorers or ()):
                if name in TIER_COSTS and name in ids:
                    raise _TierScorerError(tier, i, f"{name!r} is both a cost tier and a scorer id",
                                           "rename the scorer")
                if name not in TIER_COSTS and name not in ids:
                    raise _TierScorerError(tier, i, f"{name!r} is neither a scorer of this suite nor a cost tier",
                                           f"use a scorer id or one of {', '.join(TIER_COSTS)}")
        return self


class _TierScorerError(ValueError):
    """A tier's `scorers:` entry that names nothing: reported with its exact place in the file."""

    def __init__(self, tier: str, index: int, message: str, fix: str):
        super().__init__(message)
        self.field, self.message, self.fix = f"tiers.{tier}.scorers[{index}]", message, fix


class LoadedSuite(BaseModel):
    """A validated suite plus where it lives and the prompt template it points at."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: Suite
    path: Path
    root: Path
    prompt_template: str
    prompt_hash: str
    suite_hash: str

    @property
    def name(self) -> str:
        return self.spec.name

    def dataset_paths(self) -> list[Path]:
        return [self.root / d.path for d in self.spec.datasets]


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _first_error(path: Path, err: ValidationError, doc: Any) -> InputError:
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # Discriminated unions put the tag name in the location; drop it so the path reads like the file.
    loc = tuple(p for p in loc if p not in _scorer_tags() and p not in TARGET_TAGS)
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown field"
        fix = "remove it or check its spelling against datasets/schema/suite.schema.json"
        if loc[:1] == ("target",) and isinstance(doc.get("target"), dict) and "python" in doc["target"]:
            fix = "a Python target takes its own settings under params: (the function gets them as case.params)"
    elif e["type"] == "missing":
        msg = "required field is missing"
        fix = "add it"
    elif e["type"] == "union_tag_invalid":
        fix = f"use one of: {', '.join(sorted(_scorer_tags()))}"
    else:
        fix = "see datasets/schema/suite.schema.json"
    return InputError(path, _field_path(loc) or None, msg, fix)


def _scorer_tags() -> set[str]:
    from evalplatform.scorers.specs import SCORER_TYPES

    return set(SCORER_TYPES)


def read_yaml(path: Path) -> Any:
    """Safe-load a YAML file, turning every failure into one InputError line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror}") from None
    return load_yaml(path, raw, "datasets/demo/suite.yaml")


# Parses actually performed in this process (a cache hit is not one): what the parse-count target measures.
PARSES: Counter = Counter()
_LOADED: dict[str, tuple[tuple, LoadedSuite]] = {}


def _signature(suite: LoadedSuite) -> tuple:
    """(path, mtime, size) of the suite file and every file it refers to: a change to any of them reloads it."""
    files = [suite.path, suite.root / suite.spec.prompt]
    if suite.spec.policy:
        files.append(suite.root / suite.spec.policy)
    for scorer in suite.spec.scorers:
        for attr in ("rubric", "calibration", "schema_file"):
            rel = getattr(scorer, attr, None)
            if isinstance(rel, str):
                files.append(suite.root / rel)
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((str(f), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(f), None, None))
    return tuple(out)


def load_suite(path: str | Path) -> LoadedSuite:
    """The validated suite at `path`: parsed once per process while none of its files changes."""
    key = str(Path(path).resolve())
    hit = _LOADED.get(key)
    if hit is not None and _signature(hit[1]) == hit[0]:
        return hit[1]
    suite = _parse_suite(path)
    PARSES["suite"] += 1
    _LOADED[key] = (_signature(suite), suite)
    return suite


def _parse_suite(path: str | Path) -> LoadedSuite:
    """Load and validate a suite file; every problem is one InputError naming the file and field."""
    from evalplatform.provenance import sha256_text, canonical_json

    path = Path(path)
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise InputError(path, None, "a suite file must be a YAML mapping", "start with `name: ...`")
    try:
        spec = Suite.model_validate(doc)
    except ValidationError as err:
        cause = (err.errors()[0].get("ctx") or {}).get("error")
        if isinstance(cause, _TierScorerError):
            raise InputError(path, cause.field, cause.message, cause.fix) from None
        raise _first_error(path, err, doc) from None
    root = path.parent
    from evalplatform.paths import inside_project

    prompt_path = inside_project(root, spec.prompt, path, "prompt")
    try:
        template = prompt_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "prompt", f"prompt template {spec.prompt!r} not found next to the suite file") from None
    except UnicodeDecodeError:
        raise InputError(prompt_path, None, "prompt template is not UTF-8") from None
    if not template.strip():
        raise InputError(prompt_path, None, "prompt template is empty")
    from evalplatform.prompt import template_fields

    template_fields(template, prompt_path)  # raises on malformed placeholders
    for i, d in enumerate(spec.datasets):
        inside_project(root, d.path, path, f"datasets[{i}].path")
        if not (root / d.path).is_file():
            raise InputError(path, f"datasets[{i}].path", f"dataset file {d.path!r} not found next to the suite file")
    for i, s in enumerate(spec.scorers):
        s.check_files(root, path, f"scorers[{i}]")
    if spec.policy:
        inside_project(root, spec.policy, path, "policy")
        if not (root / spec.policy).is_file():
            raise InputError(path, "policy", f"policy file {spec.policy!r} not found next to the suite file")
        from evalplatform.policy import load_policy

        pol = load_policy(root / spec.policy).policy
        if pol.suite and pol.suite != spec.name:
            raise InputError(root / spec.policy, "suite", f"policy is for suite {pol.suite!r}, not {spec.name!r}")
    return LoadedSuite(
        spec=spec,
        path=path,
        root=root,
        prompt_template=template,
        prompt_hash=sha256_text(template),
        suite_hash=sha256_text(canonical_json(spec.model_dump(mode="json"))),
    )


def suite_json_schema() -> dict:
    return Suite.model_json_schema()


def find_suite(name_or_path: str, datasets_dir: Path) -> Path:
    """Resolve `--suite NAME` (datasets/NAME/suite.yaml) or a path to a suite file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise InputError(p, None, "suite file not found")
        return p
    candidate = datasets_dir / name_or_path / "suite.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(q.parent.name for q in datasets_dir.glob("*/suite.yaml")) if datasets_dir.is_dir() else []
    raise InputError(
        candidate, "--suite", f"no suite named {name_or_path!r}",
        f"known suites: {', '.join(known) or 'none'}; or pass a path to a suite.yaml",
    )
