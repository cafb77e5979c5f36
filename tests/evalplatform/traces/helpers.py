"""Trace files for tests: OTLP JSON written by the real OpenTelemetry SDK and its OTLP JSON file exporter, plain rows,
and a scratch project whose demo suite has a `monitors:` section."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from assets.resources import REPO_ROOT


@contextmanager
def otel_tracer(path: Path, release: str = "support-v1", service: str = "nimbus-support", seed: int = 1) -> Iterator:
    """A tracer whose spans land in `path` as OTLP JSON lines (the SDK's FileSpanExporter), flushed on exit."""
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from evalplatform.demo.traffic import _SeededIds

    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": release}),
                              id_generator=_SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(path)))
    try:
        yield provider.get_tracer("tests")
    finally:
        provider.shutdown()


def ns(t: dt.datetime) -> int:
    return int(t.timestamp() * 1e9)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def plain_row(i: int, **over) -> dict:
    row = {"trace_id": f"t-{i:05d}", "timestamp": (now() - dt.timedelta(minutes=10, seconds=i)).isoformat(),
           "session_id": f"s-{i:05d}", "input": f"question number {i}", "output": f"answer {i}",
           "model": "local/support-v1", "release": "support-v1", "latency_ms": 120.0, "tags": ["category:grounding"]}
    row.update(over)
    return {k: v for k, v in row.items() if v is not ...}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


MONITORS = """
monitors:
  traces: {folder: traces/demo, settle_seconds: 0}
  sampling: {base_rate: 0.10, flagged_rate: 1.0}
  slos:
    - {id: overall_pass_rate, min_pass_rate: 0.85}
    - {id: dates_in_iso_format, criterion: dates, min_pass_rate: 0.90}
    - {id: no_pii_leaks, criterion: safety, min_pass_rate: 0.95, severity: advisory}
  review: {max_items_per_batch: 40}
  coverage: {min_cases_per_category: 2, severity: error}
"""


def monitored_project(root: Path, monitors: str = MONITORS) -> Path:
    """The demo suite (and its calibration labels) in `root`, its policy's monitors section replaced by `monitors`."""
    for name in ("demo", "calibration"):
        shutil.copytree(REPO_ROOT / "datasets" / name, root / "datasets" / name, ignore=shutil.ignore_patterns("*.py"))
    policy = root / "datasets" / "demo" / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    text = text[: text.index("\nmonitors:")] if "\nmonitors:" in text else text
    policy.write_text(text.rstrip("\n") + "\n" + monitors, encoding="utf-8")
    return root
