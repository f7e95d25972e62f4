"""edgefed's own Great Expectations metrics and expectations, defined (and so registered) at import.

GE registers a metric provider or an expectation when its class is defined, so importing this module
is what makes these names known to GE. Only :mod:`~edgefed.steps.contracts.runtime` imports it, when
it first needs GE; importing :mod:`edgefed.steps.contracts` does not import GE.

* ``expect_column_most_common_value_share_to_be_between`` (label balance: the share of the most
  frequent value), on the metric ``column.edgefed_most_common_value_share``;
* ``expect_column_group_values_to_be_of_type``, ``expect_column_group_values_to_be_between`` and
  ``expect_column_group_proportion_of_non_null_values_to_be_between`` for a *column group* (a pattern
  such as ``px_{i:03d}`` x 784): one expectation over the group, computed from a single vectorised
  per-column summary (the metric ``table.edgefed_column_summary``), instead of 784 x 4 column
  expectations (GE's per-expectation overhead makes those take ~13 s even on 1,000 rows).

A group expectation's ``observed_value`` is how many columns fail and its ``details`` name them (the
contract's names, at most :data:`~edgefed.steps.contracts.verdict.MAX_NAMES`); the observed extremes
it also reports stay in the full result, at the edge.
"""

# No ``from __future__ import annotations``: GE's expectations are pydantic v1 models, which read their
# field annotations at class creation.

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation, ColumnAggregateExpectation
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer

from edgefed.steps.contracts.verdict import MAX_NAMES

__all__ = [
    "SHARE_METRIC",
    "SUMMARY_METRIC",
    "ColumnMostCommonValueShare",
    "ExpectColumnGroupProportionOfNonNullValuesToBeBetween",
    "ExpectColumnGroupValuesToBeBetween",
    "ExpectColumnGroupValuesToBeOfType",
    "ExpectColumnMostCommonValueShareToBeBetween",
    "TableEdgefedColumnSummary",
]

SHARE_METRIC = "column.edgefed_most_common_value_share"
SUMMARY_METRIC = "table.edgefed_column_summary"


# ------------------------------------------------------------------------------------------ metrics


class ColumnMostCommonValueShare(ColumnAggregateMetricProvider):
    """Share of the most frequent non-null value (None for an empty column)."""

    metric_name = SHARE_METRIC

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        if len(column) == 0:
            return None
        return float(column.value_counts(normalize=True, sort=True).iloc[0])


class TableEdgefedColumnSummary(TableMetricProvider):
    """Per column: dtype, min, max (numeric columns) and null count, in one vectorised pass."""

    metric_name = SUMMARY_METRIC

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration
    ):
        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        numeric = df.select_dtypes(include="number")
        mins, maxs = numeric.min().to_dict(), numeric.max().to_dict()
        nulls = df.isna().sum().to_dict()
        return {
            "rows": len(df),
            "columns": {
                str(c): {
                    "dtype": str(t),
                    "min": _float_or_none(mins.get(c)),
                    "max": _float_or_none(maxs.get(c)),
                    "nulls": int(nulls.get(c, 0)),
                }
                for c, t in df.dtypes.items()
            },
        }


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


# ------------------------------------------------------------------------------------ expectations


def _template(template: str, params: dict[str, Any], runtime_configuration: dict | None) -> list[Any]:
    styling = (runtime_configuration or {}).get("styling")
    return [
        RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={"template": template, "params": params, "styling": styling},
        )
    ]


def _group_label(columns: Sequence[str]) -> str:
    cols = list(columns)
    return ", ".join(cols) if len(cols) <= 3 else f"{cols[0]} … {cols[-1]} ({len(cols)} columns)"


class ExpectColumnMostCommonValueShareToBeBetween(ColumnAggregateExpectation):
    """The share of the column's most frequent value lies between ``min_value`` and ``max_value``.

    edgefed uses it as a label-balance sanity bound (an edge that holds a single class, or almost).
    """

    min_value: float | None = None
    max_value: float | None = None
    metric_dependencies = (SHARE_METRIC,)
    success_keys = ("min_value", "max_value")
    args_keys = ("column", "min_value", "max_value")
    library_metadata: ClassVar[dict[str, Any]] = {"maturity": "experimental", "tags": ["edgefed"]}

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        return self._validate_metric_value_between(
            metric_name=SHARE_METRIC,
            metrics=metrics,
            runtime_configuration=runtime_configuration,
            execution_engine=execution_engine,
        )

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        params = {k: configuration.kwargs.get(k) for k in ("column", "min_value", "max_value")}
        parts = []
        if params["min_value"] is not None:
            parts.append("at least $min_value")
        if params["max_value"] is not None:
            parts.append("at most $max_value")
        share = " and ".join(parts) or "any share"
        template = f"The most frequent value of $column must make up {share} of the rows."
        return _template(template, params, runtime_configuration)


class _ColumnGroupExpectation(BatchExpectation):
    """An expectation over a column group: each subclass says which columns offend (:meth:`_offending`)."""

    column_list: list[str]
    metric_dependencies = (SUMMARY_METRIC,)

    def _offending(self, summary: dict[str, Any], rows: int) -> tuple[list[str], dict[str, Any]]:
        """The failing columns and details for GE's full result, from the per-column summary."""
        raise NotImplementedError

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        summary = metrics[SUMMARY_METRIC]
        bad, details = self._offending(summary["columns"], summary["rows"])
        return {
            "success": not bad,
            "result": {
                "observed_value": len(bad),
                "details": {
                    "unexpected_columns": bad[:MAX_NAMES],
                    "column_count": len(self.column_list),
                    **details,
                },
            },
        }


class ExpectColumnGroupValuesToBeOfType(_ColumnGroupExpectation):
    """Every column of ``column_list`` has dtype ``type_`` (observed: how many do not)."""

    type_: str
    success_keys = ("column_list", "type_")
    args_keys = ("column_list", "type_")

    def _offending(self, summary, rows):
        found = {c: summary[c]["dtype"] if c in summary else None for c in self.column_list}
        bad = [c for c, t in found.items() if t != self.type_]
        return bad, {"found_types": {c: found[c] for c in bad[:MAX_NAMES]}}

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        params = {
            "columns": _group_label(configuration.kwargs["column_list"]),
            "type_": configuration.kwargs["type_"],
        }
        return _template("Columns $columns must be of type $type_.", params, runtime_configuration)


class ExpectColumnGroupValuesToBeBetween(_ColumnGroupExpectation):
    """Every non-null value of every column of ``column_list`` lies in [``min_value``, ``max_value``].

    Checked through each column's minimum and maximum (observed: how many columns break a bound).
    """

    min_value: float | None = None
    max_value: float | None = None
    success_keys = ("column_list", "min_value", "max_value")
    args_keys = ("column_list", "min_value", "max_value")

    def _offending(self, summary, rows):
        bad: list[str] = []
        lows: dict[str, Any] = {}
        highs: dict[str, Any] = {}
        for c in self.column_list:
            info = summary.get(c)
            if info is None or (info["min"] is None and info["nulls"] < rows):
                bad.append(c)  # missing or not numeric
                continue
            if info["min"] is None:
                continue  # all null: the null-rate expectation reports it
            if self.min_value is not None and info["min"] < self.min_value:
                bad.append(c)
                lows[c] = info["min"]
            elif self.max_value is not None and info["max"] > self.max_value:
                bad.append(c)
                highs[c] = info["max"]
        return bad, {"observed_min": lows, "observed_max": highs}

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        kw = configuration.kwargs
        params = {
            "columns": _group_label(kw["column_list"]),
            "min_value": kw.get("min_value"),
            "max_value": kw.get("max_value"),
        }
        template = "Values of columns $columns must be between $min_value and $max_value."
        return _template(template, params, runtime_configuration)


class ExpectColumnGroupProportionOfNonNullValuesToBeBetween(_ColumnGroupExpectation):
    """In every column of ``column_list`` the share of non-null values is at least ``min_value``."""

    min_value: float = 1.0
    success_keys = ("column_list", "min_value")
    args_keys = ("column_list", "min_value")

    def _offending(self, summary, rows):
        bad, rates = [], {}
        for c in self.column_list:
            info = summary.get(c)
            if info is None:
                bad.append(c)
                continue
            non_null = 1.0 - info["nulls"] / rows if rows else 0.0
            if non_null < self.min_value:
                bad.append(c)
                rates[c] = round(non_null, 6)
        return bad, {"non_null_proportion": rates}

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        kw = configuration.kwargs
        params = {"columns": _group_label(kw["column_list"]), "min_value": kw.get("min_value", 1.0)}
        template = "Columns $columns must each have a non-null proportion of at least $min_value."
        return _template(template, params, runtime_configuration)
