"""Run history: runs with provenance, results, outputs, baselines and decisions in one DuckDB file."""

from evalplatform.history.records import DecisionRecord
from evalplatform.history.schema import LATEST_VERSION, MIGRATIONS, migrate
from evalplatform.history.store import HistoryStore, new_run_id

__all__ = ["DecisionRecord", "HistoryStore", "LATEST_VERSION", "MIGRATIONS", "migrate", "new_run_id"]
