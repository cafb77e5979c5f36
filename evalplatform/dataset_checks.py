"""Dataset-level checks with Great Expectations (ephemeral context), run once per dataset version."""

from __future__ import annotations

import os

import polars as pl

from evalplatform.datasets import SEVERITIES, SOURCES


def _pandas(df: pl.DataFrame):
    import pandas as pd

    # Scalar columns only: GX expectations here never look inside lists.
    cols = [c for c, t in df.schema.items() if not isinstance(t, (pl.List, pl.Struct))]
    return pd.DataFrame({c: df.get_column(c).to_list() for c in cols})


def validate_dataset(cases: pl.DataFrame, max_rows: int = 1_000_000) -> dict:
    """Run the batch expectations; returns {success, statistics, failed: [{expectation, column, details}]}."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = ctx.data_sources.add_pandas("cases").add_dataframe_asset("cases").add_batch_definition_whole_dataframe("all")
    suite = ctx.suites.add(gx.ExpectationSuite(name="case_dataset"))
    expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=max_rows),
        gxe.ExpectColumnValuesToNotBeNull(column="case_id"),
        gxe.ExpectColumnValuesToBeUnique(column="case_id"),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=list(SOURCES)),
    ]
    if "severity" in cases.columns:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="severity", value_set=list(SEVERITIES)))
    # `category` is optional (README): a tier that stratifies by it checks it (selection.select_cases).
    for e in expectations:
        suite.add_expectation(e)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="cases", data=batch, suite=suite))
    res = vd.run(batch_parameters={"dataframe": _pandas(cases)}, result_format="SUMMARY").to_json_dict()
    failed = [
        {
            "expectation": r["expectation_config"]["type"],
            "column": r["expectation_config"].get("kwargs", {}).get("column"),
            "details": {k: r.get("result", {}).get(k) for k in ("unexpected_count", "partial_unexpected_list", "observed_value")},
        }
        for r in res["results"] if not r["success"]
    ]
    return {"success": bool(res["success"]), "statistics": res["statistics"], "failed": failed}


_PLAIN = {
    "expect_table_row_count_to_be_between": "the number of cases is outside [1, max_rows]",
    "expect_column_values_to_not_be_null": "has empty values",
    "expect_column_values_to_be_unique": "has duplicate values",
    "expect_column_values_to_be_in_set": "has values outside the allowed set",
}


def describe_failure(failed: dict) -> str:
    """One readable line for a failed expectation (not the raw result dict): what is wrong, how often, examples."""
    kind = failed.get("expectation") or "dataset check"
    details = failed.get("details") or {}
    text = _PLAIN.get(kind, f"failed {kind}")
    count = details.get("unexpected_count")
    if count:
        text += f" ({count} case(s)"
        examples = [str(x) for x in (details.get("partial_unexpected_list") or [])[:3]]
        text += f", e.g. {', '.join(examples)})" if examples else ")"
    elif details.get("observed_value") is not None:
        text += f" (observed {details['observed_value']})"
    return f"{text} [Great Expectations: {kind}]"
