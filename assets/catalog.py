"""The suites a code location serves: each suite folder under datasets/, loaded once when the location loads."""


import logging
from dataclasses import dataclass, field
from pathlib import Path

from evalplatform.decide import EffectivePolicy, effective_policy
from evalplatform.errors import EvalPlatformError
from evalplatform.suite import LoadedSuite, load_suite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteEntry:
    """A suite as the asset factory needs it: its name, its file, and the rules its checks are made from."""

    name: str
    path: Path
    suite: LoadedSuite
    policy: EffectivePolicy

    @property
    def key_prefix(self) -> str:
        return self.name

    @property
    def op_prefix(self) -> str:
        # Dagster op names take letters, digits and underscores only.
        return self.name.replace("-", "_")


@dataclass
class Catalog:
    entries: list[SuiteEntry] = field(default_factory=list)
    # Suite folders that did not load: reported (logged, and on sensor ticks), never a broken code location.
    broken: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> SuiteEntry | None:
        return next((e for e in self.entries if e.name == name), None)


def discover(project_root: Path) -> Catalog:
    catalog = Catalog()
    for path in sorted((project_root / "datasets").glob("*/suite.yaml")):
        try:
            suite = load_suite(path)
            entry = SuiteEntry(suite.name, path, suite, effective_policy(suite))
        except EvalPlatformError as exc:
            catalog.broken[path.parent.name] = str(exc)
            log.warning("suite %s is not served: %s", path.parent.name, exc)
            continue
        if catalog.get(entry.name) is not None:
            catalog.broken[path.parent.name] = f"{path}: name {entry.name!r} is already used by another suite folder"
            continue
        catalog.entries.append(entry)
    return catalog
