"""evalplatform: LLM evaluation as release engineering (library and CLI; no Dagster import here)."""

__version__ = "0.1.0"
