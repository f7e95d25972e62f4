"""A contract document expanded into Great Expectations expectations, and its SHA-256.

Each shorthand of the document becomes one or more GE expectation configurations
(:class:`ExpectationSpec`), in this order: the column-order rule, the row count, per column entry its
type, null rate, range and allowed values, the label rules, then the verbatim ``expectations``.
The table of what becomes what is in ``data_contracts/README.md``. Ranges become
``expect_column_min_to_be_between``/``expect_column_max_to_be_between`` (one vectorised aggregate
each); a column group's rules become one ``expect_column_group_*`` expectation each (edgefed's own,
:mod:`~edgefed.steps.contracts.expectations`).

The SHA-256 covers the name, dataset, version and the expanded expectations (not the description, nor
how they were written): it keys the cached passing verdicts at the edge, so it must not change for an
unchanged contract.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgefed.steps.contracts.document import ColumnDefaults, ColumnEntry, ContractDocument, LabelSpec

__all__ = ["Contract", "ExpectationSpec", "display_name", "expand"]


@dataclass(frozen=True)
class ExpectationSpec:
    """One GE expectation: its snake_case type, keyword arguments and meta, and where it came from.

    ``origin`` is the contract field it was expanded from (``columns[3]``, ``label``,
    ``expectations[0]``), for error messages.
    """

    expectation: str
    kwargs: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str = ""

    @property
    def name(self) -> str:
        """Display name: the type and its domain, e.g. ``expect_column_min_to_be_between(column=age)``."""
        return display_name(self.expectation, self.kwargs)


@dataclass(frozen=True)
class Contract:
    """A loaded contract: the expected columns in order and the expanded GE expectations."""

    name: str
    dataset: str
    version: int
    description: str
    columns: tuple[str, ...]
    column_order: str
    expectations: tuple[ExpectationSpec, ...]
    source: str
    sha256: str

    @property
    def label_column(self) -> str | None:
        for spec in self.expectations:
            if spec.origin == "label":
                return str(spec.kwargs["column"])
        return None


def display_name(kind: str, kwargs: Mapping[str, Any]) -> str:
    """An expectation's name in a verdict: its type and the contract's names of its columns."""
    if "column" in kwargs:
        return f"{kind}(column={kwargs['column']})"
    if "column_A" in kwargs and "column_B" in kwargs:
        return f"{kind}(column_A={kwargs['column_A']}, column_B={kwargs['column_B']})"
    if "column_list" in kwargs and kind.startswith(
        ("expect_column_group_", "expect_multicolumn_", "expect_compound_", "expect_select_")
    ):
        cols = list(kwargs["column_list"])
        shown = ",".join(cols) if len(cols) <= 2 else f"{cols[0]}..{cols[-1]} ({len(cols)} columns)"
        return f"{kind}(column_list={shown})"
    return f"{kind}()"


def expand(document: ContractDocument, *, source: str) -> Contract:
    """The contract's expectations, in contract order, and its SHA-256."""
    columns = document.column_names
    specs: list[ExpectationSpec] = []
    if document.column_order == "exact":
        kwargs: dict[str, Any] = {"column_list": list(columns)}
        specs.append(ExpectationSpec("expect_table_columns_to_match_ordered_list", kwargs, origin="columns"))
    else:
        kwargs = {"column_set": list(columns), "exact_match": True}
        specs.append(ExpectationSpec("expect_table_columns_to_match_set", kwargs, origin="columns"))
    bounds = {"min_value": document.rows.min, "max_value": document.rows.max}
    rows = {k: v for k, v in bounds.items() if v is not None}
    if rows:
        specs.append(ExpectationSpec("expect_table_row_count_to_be_between", rows, origin="rows"))
    for i, entry in enumerate(document.columns):
        specs += _column(f"columns[{i}]", entry, document.column_defaults)
    if document.label is not None:
        specs += _label(document.label)
    for i, raw in enumerate(document.expectations):
        specs.append(ExpectationSpec(raw.expectation, dict(raw.kwargs), dict(raw.meta), f"expectations[{i}]"))
    body = [[s.expectation, s.kwargs, s.meta] for s in specs]
    identity = [document.contract, document.dataset, document.version, body]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return Contract(
        name=document.contract,
        dataset=document.dataset,
        version=document.version,
        description=document.description.strip(),
        columns=tuple(columns),
        column_order=document.column_order,
        expectations=tuple(specs),
        source=source,
        sha256=digest,
    )


def _column(where: str, entry: ColumnEntry, defaults: ColumnDefaults) -> list[ExpectationSpec]:
    domain: dict[str, Any] = {"column_list": entry.names} if entry.group else {"column": entry.name}
    prefix = "expect_column_group_" if entry.group else "expect_column_"
    out: list[ExpectationSpec] = []

    def add(kind: str, **kwargs: Any) -> None:
        out.append(ExpectationSpec(prefix + kind, {**domain, **kwargs}, origin=where))

    type_, rate = entry.rule("type", defaults), entry.rule("max_null_rate", defaults)
    if type_ is not None:
        add("values_to_be_of_type", type_=type_)
    if rate is not None and rate < 1:
        add("proportion_of_non_null_values_to_be_between", min_value=round(1.0 - float(rate), 12))
    low, high = entry.min, entry.max
    if entry.group:
        if low is not None or high is not None:
            add("values_to_be_between", min_value=low, max_value=high)
    else:
        if low is not None:
            add("min_to_be_between", min_value=low)
        if high is not None:
            add("max_to_be_between", max_value=high)
    if entry.values is not None:
        add("distinct_values_to_be_in_set", value_set=list(entry.values))
    return out


def _label(label: LabelSpec) -> list[ExpectationSpec]:
    domain = {"column": label.column}
    out: list[ExpectationSpec] = []
    if label.values is not None:
        kwargs = {**domain, "value_set": list(label.values)}
        out.append(ExpectationSpec("expect_column_distinct_values_to_be_in_set", kwargs, origin="label"))
    if label.min_distinct is not None:
        kwargs = {**domain, "min_value": label.min_distinct}
        out.append(ExpectationSpec("expect_column_unique_value_count_to_be_between", kwargs, origin="label"))
    if label.max_share is not None:
        kwargs = {**domain, "max_value": float(label.max_share)}
        out.append(
            ExpectationSpec("expect_column_most_common_value_share_to_be_between", kwargs, origin="label")
        )
    return out
