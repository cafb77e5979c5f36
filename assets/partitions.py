"""Partitions: one per suite found under datasets/."""


import dagster as dg

from assets.resources import PROJECT_ROOT


def discover_suites() -> list[str]:
    return sorted(p.parent.name for p in (PROJECT_ROOT / "datasets").glob("*/suite.yaml"))


suite_partitions = dg.StaticPartitionsDefinition(discover_suites() or ["demo"])
