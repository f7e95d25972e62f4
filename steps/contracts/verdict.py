"""The verdict of a check: the one thing of a data contract check that leaves the edge.

What may leave the edge
    A verdict carries: passed or not, the row count, a summary (the contract's name, version and
    SHA-256, expectation counts, timings, the GE version) and, per failed expectation, its display
    name (its type and the *contract's* column names) and ``observed``: summary values drawn from
    GE's result by :func:`observed`. ``observed`` may hold only the keys of :data:`TRAVELS`, the
    table below; anything else is dropped. Which key an expectation gets depends on its kind:

    ======================================  ==========================================================
    expectation kind                        ``observed`` keys
    ======================================  ==========================================================
    every kind                              the row counts and percentages of :data:`COUNT_KEYS`
    a column the data lacks                 ``missing_columns``, ``missing_column_count`` only
    raised an exception                     ``error`` (a fixed sentence, never GE's message)
    :data:`SAFE_OBSERVED`                   ``observed_value`` (a count, a proportion or a dtype)
    column group (``expect_column_group_``) ``failing_column_count``, ``failing_columns``,
                                            ``column_count``
    :data:`COLUMN_SET` (column order/set)   ``missing_columns`` (the contract's names),
                                            ``missing_column_count``, ``unexpected_column_count``,
                                            ``column_count``, ``order_differs``
    :data:`DISTINCT_SET` (allowed values)   ``distinct_value_count``, ``unexpected_value_count``,
                                            ``missing_value_count``
    any other kind with a bound             ``violated`` (which bound), ``bound`` (the contract's)
    ======================================  ==========================================================

    Never a data value: no ``unexpected_list``/``partial_unexpected_list``/``unexpected_index_list``,
    no observed minimum, maximum or mean (a column's extreme is one patient's value), no distinct
    values outside an allowed set (only how many), no exception message (it may quote a value), and
    no column name found in the data but not in the contract (only how many: an export that lost its
    header row turns a patient's values into column names). GE's full result, which names all of
    these, stays at the edge (:func:`~edgefed.steps.contracts.runtime.full_result_json`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COLUMN_SET",
    "COUNT_KEYS",
    "DISTINCT_SET",
    "MAX_NAMES",
    "SAFE_OBSERVED",
    "TRAVELS",
    "FailedExpectation",
    "Verdict",
    "observed",
]

#: Every key a failed expectation's ``observed`` may carry out of the edge, and what it is.
TRAVELS: dict[str, str] = {
    "element_count": "rows the expectation looked at",
    "missing_count": "rows with a null in the column",
    "missing_percent": "percentage of rows with a null",
    "unexpected_count": "rows (or, for an allowed set, distinct values) that broke the rule",
    "unexpected_percent": "percentage of rows that broke the rule",
    "unexpected_percent_total": "the same, of all rows",
    "unexpected_percent_nonmissing": "the same, of the non-null rows",
    "observed_value": "a count, a proportion or a dtype: only for SAFE_OBSERVED kinds",
    "missing_columns": "the contract's names of columns the data lacks (at most MAX_NAMES)",
    "missing_column_count": "how many columns the data lacks",
    "unexpected_column_count": "how many columns the data has that the contract does not name",
    "column_count": "how many columns the rule covers (found, for the column-order rule)",
    "order_differs": "the right columns in another order",
    "failing_columns": "the contract's names of a group's failing columns (at most MAX_NAMES)",
    "failing_column_count": "how many columns of a group fail",
    "distinct_value_count": "how many distinct values the column holds",
    "unexpected_value_count": "how many distinct values lie outside the allowed set",
    "missing_value_count": "how many allowed values never occur",
    "violated": "which bound was broken: min_value, max_value, or no_value (nothing to compare)",
    "bound": "the contract's value of that bound",
    "error": "a fixed sentence: the expectation raised (its message stays at the edge)",
}
#: Result keys that are counts or percentages of rows: allowed in a verdict for every expectation.
COUNT_KEYS = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
#: Expectations whose ``observed_value`` is a count, a proportion or a dtype -- never a row's value.
SAFE_OBSERVED = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
        "expect_column_proportion_of_non_null_values_to_be_between",
        "expect_column_proportion_of_unique_values_to_be_between",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_most_common_value_share_to_be_between",
    }
)
#: Expectations on a column's distinct values: only how many travel, never which.
DISTINCT_SET = frozenset(
    {
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
    }
)
#: Expectations on the table's columns: the contract's names travel, the data's are only counted.
COLUMN_SET = frozenset({"expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set"})
#: Column names listed per failed expectation.
MAX_NAMES = 20


@dataclass(frozen=True)
class FailedExpectation:
    """A failed expectation's display name and summary values (counts, proportions, schema facts)."""

    name: str
    observed: dict[str, Any]


@dataclass
class Verdict:
    """The outcome of one check. Everything but ``result`` may travel (see :meth:`to_json`).

    ``result`` is GE's full ``ExpectationSuiteValidationResult`` (it names offending values): it stays
    at the edge, through ``full_result_json`` and ``data_docs_html``.
    """

    passed: bool
    failed: list[FailedExpectation]
    rows: int
    summary: dict[str, Any]
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def failed_names(self) -> list[str]:
        return [f.name for f in self.failed]

    def to_dict(self) -> dict[str, Any]:
        """The travelling form: verdict, row count, failed names with summary values, summary."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "failed": [{"name": f.name, "observed": f.observed} for f in self.failed],
            "summary": self.summary,
        }

    def to_json(self, **extra: Any) -> str:
        """:meth:`to_dict` (plus ``extra`` top-level fields, e.g. the edge) as JSON."""
        return json.dumps({**extra, **self.to_dict()}, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        failed = [FailedExpectation(str(f["name"]), dict(f.get("observed") or {})) for f in data["failed"]]
        return cls(bool(data["passed"]), failed, int(data["rows"]), dict(data.get("summary") or {}))


def observed(
    kind: str, kwargs: Mapping[str, Any], result: Mapping[str, Any], raised: bool, frame_columns: set[str]
) -> dict[str, Any]:
    """The summary values of one failed expectation that may leave the edge (keys of :data:`TRAVELS`).

    ``result`` is GE's result of the expectation, ``raised`` whether it raised, ``frame_columns`` the
    data's column names (only to tell which of the contract's columns are missing).
    """
    return {k: v for k, v in _observed(kind, kwargs, result, raised, frame_columns).items() if k in TRAVELS}


def _observed(
    kind: str, kwargs: Mapping[str, Any], result: Mapping[str, Any], raised: bool, frame_columns: set[str]
) -> dict[str, Any]:
    whole_table = kind in COLUMN_SET or kind.startswith("expect_column_group_")
    missing = [] if whole_table else [c for c in _referenced_columns(kwargs) if c not in frame_columns]
    if missing:  # a renamed or dropped column: GE raises for some kinds, reports no value for others
        return {"missing_columns": missing[:MAX_NAMES], "missing_column_count": len(missing)}
    if raised:
        return {"error": "the expectation raised an exception; the message stays in the full result"}
    out: dict[str, Any] = {k: _summary_number(result[k]) for k in COUNT_KEYS if result.get(k) is not None}
    value = result.get("observed_value")
    if kind.startswith("expect_column_group_"):
        details = result.get("details") or {}
        out["failing_column_count"] = _summary_number(value)
        out["failing_columns"] = [str(n) for n in (details.get("unexpected_columns") or [])[:MAX_NAMES]]
        out["column_count"] = len(kwargs.get("column_list") or [])
    elif kind in SAFE_OBSERVED:
        safe = value if isinstance(value, str) else _summary_number(value)
        if safe is not None:
            out["observed_value"] = safe
    elif kind in COLUMN_SET:
        expected = [str(c) for c in (kwargs.get("column_list") or kwargs.get("column_set") or [])]
        found = [str(c) for c in (value or [])]
        missing = [c for c in expected if c not in set(found)]
        extra = [c for c in found if c not in set(expected)]
        out["missing_columns"] = missing[:MAX_NAMES]  # names from the contract
        out["missing_column_count"] = len(missing)
        # Only counted: names found in the data may be data (an export that lost its header row).
        out["unexpected_column_count"] = len(extra)
        out["column_count"] = len(found)
        if kind == "expect_table_columns_to_match_ordered_list" and not missing and not extra:
            out["order_differs"] = True
    elif kind in DISTINCT_SET:
        allowed = set(kwargs.get("value_set") or [])
        if isinstance(value, list | set | tuple):
            found_values = set(value)
            out["distinct_value_count"] = len(found_values)
            out["unexpected_value_count"] = len(found_values - allowed)
            if kind != "expect_column_distinct_values_to_be_in_set":
                out["missing_value_count"] = len(allowed - found_values)
        elif "unexpected_count" in out:  # GE >= 1.x in_set: the count of distinct values outside the set
            out["unexpected_value_count"] = out.pop("unexpected_count")
    elif "min_value" in kwargs or "max_value" in kwargs:
        side = _violated_bound(value, kwargs)
        if side is not None:
            out["violated"] = side
            if side != "no_value":
                out["bound"] = _summary_number(kwargs.get(side))
    return out


def _summary_number(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    try:  # numpy scalars
        return _summary_number(value.item())
    except AttributeError:
        return None


def _referenced_columns(kwargs: Mapping[str, Any]) -> list[str]:
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    return [str(c) for c in cols + list(kwargs.get("column_list") or [])]


def _violated_bound(value: Any, kwargs: Mapping[str, Any]) -> str | None:
    """Which bound a scalar observation violates (computed here; only the bound's name travels)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "no_value" if value is None else None
    if math.isnan(number):
        return "no_value"
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and (number < low or (kwargs.get("strict_min") and number == low)):
        return "min_value"
    if high is not None and (number > high or (kwargs.get("strict_max") and number == high)):
        return "max_value"
    return None
