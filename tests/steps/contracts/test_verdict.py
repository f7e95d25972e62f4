"""The allowlist of what leaves the edge, on GE-shaped results written by hand (no GE needed)."""

from __future__ import annotations

from edgefed.steps.contracts.verdict import MAX_NAMES, TRAVELS, observed

AGE = {"column": "age", "max_value": 1.2}


def test_a_bound_travels_and_the_observed_extreme_does_not() -> None:
    result = {
        "observed_value": 1.2345678,
        "partial_unexpected_list": [1.2345678],
        "details": {"x": 1.2345678},
    }
    assert observed("expect_column_max_to_be_between", AGE, result, False, {"age"}) == {
        "violated": "max_value",
        "bound": 1.2,
    }


def test_counts_travel_for_every_kind_and_lists_of_rows_never() -> None:
    result = {
        "element_count": 10,
        "unexpected_count": 2,
        "unexpected_percent": 20.0,
        "unexpected_list": [7, 9],
    }
    regex = {"column": "age", "regex": "^0"}
    out = observed("expect_column_values_to_match_regex", regex, result, False, {"age"})
    assert out == {"element_count": 10, "unexpected_count": 2, "unexpected_percent": 20.0}


def test_a_missing_column_is_named_from_the_contract_and_nothing_else_travels() -> None:
    out = observed("expect_column_max_to_be_between", AGE, {"observed_value": 3.0}, True, {"agee"})
    assert out == {"missing_columns": ["age"], "missing_column_count": 1}


def test_an_exception_travels_as_a_fixed_sentence() -> None:
    out = observed("expect_column_max_to_be_between", AGE, {}, True, {"age"})
    assert set(out) == {"error"} and "stays in the full result" in out["error"]


def test_the_data_s_column_names_are_only_counted() -> None:
    kwargs = {"column_list": ["age", "chol"]}
    result = {"observed_value": ["age", "0.87654321"]}
    out = observed("expect_table_columns_to_match_ordered_list", kwargs, result, False, {"age", "0.87654321"})
    assert out == {
        "missing_columns": ["chol"],
        "missing_column_count": 1,
        "unexpected_column_count": 1,
        "column_count": 2,
    }


def test_values_outside_an_allowed_set_are_only_counted() -> None:
    kwargs = {"column": "label", "value_set": [0, 1]}
    out = observed(
        "expect_column_distinct_values_to_equal_set", kwargs, {"observed_value": [0, 7]}, False, {"label"}
    )
    assert out == {"distinct_value_count": 2, "unexpected_value_count": 1, "missing_value_count": 1}


def test_a_group_names_at_most_max_names_of_its_failing_columns() -> None:
    columns = [f"px_{i:03d}" for i in range(784)]
    result = {
        "observed_value": 30,
        "details": {"unexpected_columns": columns[:30], "observed_max": {"px_000": 255.0}},
    }
    out = observed(
        "expect_column_group_values_to_be_between", {"column_list": columns}, result, False, set(columns)
    )
    assert out == {"failing_column_count": 30, "failing_columns": columns[:MAX_NAMES], "column_count": 784}


def test_every_key_that_travels_is_in_the_table() -> None:
    assert all(isinstance(text, str) and text for text in TRAVELS.values())
