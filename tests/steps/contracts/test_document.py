"""The contract document model: strict values, every problem at once with its path, the expansion and
its SHA-256. No Great Expectations needed (nor imported)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from edgefed.steps.contracts import DEFAULT_CONTRACTS_DIR, ContractError, load_contract, parse_contract

BASE: dict[str, Any] = {"contract": "x", "dataset": "heart", "columns": [{"name": "a"}, {"name": "label"}]}


def problems(**fields: Any) -> str:
    """The error message of BASE with ``fields`` replaced (``x.yaml: ...``)."""
    with pytest.raises(ContractError) as info:
        parse_contract({**BASE, **fields}, source="x.yaml")
    message = str(info.value)
    assert message.startswith("x.yaml: ")
    return message.removeprefix("x.yaml: ")


def test_importing_the_package_does_not_import_great_expectations() -> None:
    code = "import sys, edgefed.steps.contracts; print('great_expectations' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"version": "2"}, "version: expected a positive integer, found '2'"),
        ({"version": True}, "version: expected a positive integer, found True"),
        ({"version": 1.0}, "version: expected a positive integer, found 1.0"),
        ({"rows": {"min": 1.5}}, "rows.min: expected a non-negative integer, found 1.5"),
        ({"columns": [{"name": "p{i}", "count": True}]}, "columns[0].count: expected a positive integer, found True"),
        ({"columns": [{"name": "a", "min": "0"}]}, "columns[0].min: expected a finite number, found '0'"),
        ({"columns": [{"name": "a", "max": float("inf")}]}, "columns[0].max: expected a finite number, found inf"),
        ({"columns": [{"name": "a", "values": [True]}]}, "columns[0].values: expected numbers or strings"),
        ({"label": {"max_share": 1.5}}, "label.max_share: expected a number in [0.0, 1.0], found 1.5"),
        ({"column_order": "any"}, "column_order: expected 'exact' or 'set', found 'any'"),
        ({"rows": [20]}, "rows: expected a mapping, found list"),
        ({"columns": [3]}, "columns[0]: expected a mapping, found int"),
        ({"columns": []}, "columns: expected a non-empty list of column entries"),
    ],
)  # fmt: skip
def test_values_are_not_coerced(fields: dict[str, Any], expected: str) -> None:
    assert problems(**fields) == expected


def test_unknown_fields_are_named_with_the_allowed_ones() -> None:
    message = problems(
        colour="red",
        columns=[{"name": "a", "size": 1}, {"name": "label"}],
        label={"col": "label"},
        expectations=[{"expectation": "expect_x", "args": {}}],
    )
    assert message == "; ".join(
        [
            "columns[0].size: unknown field; allowed: count, max, max_null_rate, min, name, start, type, values",
            "label.col: unknown field; allowed: column, max_share, min_distinct, values",
            "expectations[0].args: unknown field; allowed: expectation, kwargs, meta",
            "colour: unknown field; allowed: column_defaults, column_order, columns, contract, dataset, "
            "description, expectations, label, rows, version",
        ]
    )


def test_a_bad_default_is_reported_once_where_it_is_written() -> None:
    assert problems(column_defaults={"type": "int9"}) == (
        "column_defaults.type: expected one of float16, float32, float64, int8, int16, int32, int64, uint8, "
        "bool, object, found 'int9'"
    )


def test_rules_across_sections_are_checked_even_when_a_section_is_wrong() -> None:
    message = problems(
        rows={"min": -1},
        columns=[{"name": "a", "min": 2, "max": 1}, {"name": "a", "type": "int9"}, {"name": "p", "count": 2}],
        label={"column": "nope"},
    )
    assert message == "; ".join(
        [
            "rows.min: expected a non-negative integer, found -1",
            "columns[0]: min 2 is above max 1",
            "columns[1].type: expected one of float16, float32, float64, int8, int16, int32, int64, uint8, bool, "
            "object, found 'int9'",
            "columns[2].name: a column group's name is a pattern with {i}, e.g. 'px_{i:03d}'; found 'p'",
            "columns: duplicate column names ['a']",
            "label.column: expected one of the contract's columns, found 'nope'",
        ]
    )


def test_a_column_can_switch_a_default_rule_off() -> None:
    contract = parse_contract(
        {
            **BASE,
            "column_defaults": {"type": "float32", "max_null_rate": 0.0},
            "columns": [{"name": "a", "type": None}, {"name": "label", "max_null_rate": None}],
        }
    )
    rules = {(e.expectation, e.kwargs.get("column")) for e in contract.expectations}
    assert ("expect_column_values_to_be_of_type", "a") not in rules
    assert ("expect_column_proportion_of_non_null_values_to_be_between", "a") in rules
    assert ("expect_column_values_to_be_of_type", "label") in rules
    assert ("expect_column_proportion_of_non_null_values_to_be_between", "label") not in rules


def test_values_keep_their_written_type_in_the_expectations() -> None:
    contract = parse_contract({**BASE, "columns": [{"name": "a", "min": 0, "max": 1.5}, {"name": "label"}]})
    low, high = (e.kwargs for e in contract.expectations if e.kwargs.get("column") == "a")
    assert type(low["min_value"]) is int and type(high["max_value"]) is float


def test_the_sha256_follows_the_rules_not_how_they_are_written() -> None:
    heart = yaml.safe_load((DEFAULT_CONTRACTS_DIR / "heart.yaml").read_text())
    shipped = load_contract("heart")
    defaults = heart.pop("column_defaults")
    rewritten = {
        **heart,
        "description": "the same rules, written out",
        "columns": [{**defaults, **entry} for entry in heart["columns"]],
    }
    assert parse_contract(rewritten).sha256 == shipped.sha256
    stricter = {**heart, "column_defaults": defaults, "rows": {"min": 21}}
    assert parse_contract(stricter).sha256 != shipped.sha256
