"""depends and when expression languages."""

from __future__ import annotations

import pytest

from edgefed.workflows.embedded.engine.expressions import (
    DependsError,
    ExpressionError,
    TaskResults,
    evaluate_when,
    parse_depends,
)

OK = TaskResults(succeeded=True)
FAILED = TaskResults(failed=True)
SKIPPED = TaskResults(skipped=True)
GROUP_PARTIAL = TaskResults(failed=True, any_succeeded=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", True),
        ("b", False),
        ("s", True),  # bare = Succeeded || Skipped || Daemoned
        ("a.Succeeded && b.Failed", True),
        ("a.Failed || b.Succeeded", False),
        ("!b.Succeeded", True),
        ("!(a && b)", True),
        ("(a || b) && !s.Skipped", False),
        ("g.AnySucceeded && g.Failed && !g.AllFailed", True),
        ("a.Errored || a.Omitted || a.Daemoned", False),
        ("a&&b.Failed", True),
    ],
)
def test_depends_evaluation(text: str, expected: bool) -> None:
    expr = parse_depends(text)
    results = {"a": OK, "b": FAILED, "s": SKIPPED, "g": GROUP_PARTIAL}
    assert expr.evaluate({t: results[t] for t in expr.tasks}) is expected


def test_depends_tasks_and_references() -> None:
    expr = parse_depends("train-x.AnySucceeded || (!train-x.Succeeded && prep)")
    assert expr.tasks == ["train-x", "prep"]
    assert expr.references("train-x") == [("AnySucceeded", False), ("Succeeded", True)]


@pytest.mark.parametrize("text", ["a.Finished", "a &&", "(a", "a b", "&& a", ""])
def test_depends_invalid(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_depends(text)


def test_depends_task_names_are_argo_dag_task_names() -> None:
    """Letters, digits and '-' (Argo's taskNameRegex), a digit first included (validate.go rejects such
    names for tasks of a DAG using depends; the expression itself parses)."""
    expr = parse_depends("5B && a- && A-b-9.Failed && !x9.Omitted")
    assert expr.tasks == ["5B", "a-", "A-b-9", "x9"]


@pytest.mark.parametrize(
    ("text", "detail", "position"),
    [
        # what the engine accepted and Argo does not: '_' is no task-name character
        ("a_b.Succeeded", "unexpected '_' at position 1: task names consist of letters, digits and '-'", 1),
        # quoted names: expr reads 'my task' as a string literal, never a task
        ("'my task'.Failed", "unexpected \"'\" at position 0: quoted task names are not part of Argo's", 0),
        ('a || "b".Failed', "unexpected '\"' at position 5: quoted task names", 5),
        # result names are Argo's TaskResult constants, case included
        (
            "a.Bogus",
            "unknown result '.Bogus' at position 1: task result 'a.Bogus' is invalid (expected one of",
            1,
        ),
        ("a.succeeded", "unknown result '.succeeded'", 1),
        ("a .Succeeded", "unexpected '.' at position 2", 2),
        ("a.", "unexpected '.' at position 1", 1),
        ("a and b", "unexpected 'and' at position 2", 2),
        ("a ||| b", "unexpected '|' at position 4", 4),
        ("(a || b", "expected ')' at the end", None),
        ("a &&", "expected a task name at the end", None),
        ("&& a", "unexpected '&&' at position 0 (expected a task name)", 0),
        ("  ", "empty depends expression", None),
    ],
)
def test_depends_errors_say_what_and_where(text: str, detail: str, position: int | None) -> None:
    with pytest.raises(DependsError) as err:
        parse_depends(text)
    assert err.value.detail.startswith(detail), err.value.detail
    assert err.value.position == position
    assert isinstance(err.value, ExpressionError) and str(err.value).startswith(
        f"invalid depends expression {text!r}"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("heads == heads", True),
        ("heads == tails", False),
        ("heads != tails", True),
        ("'a b' == \"a b\"", True),
        ("8 > 5", True),
        ("10 < 9", False),
        ("3 >= 3 && 2 <= 1", False),
        ("3 >= 3 || 2 <= 1", True),
        ("!(1 == 2)", True),
        ("true", True),
        ("false || true && false", False),
        ("1.5 == 1.50", True),
        ("abc < abd", True),
        ("Succeeded == Succeeded && (x != y)", True),
        ("5 == '5'", False),
        ("hello-world =~ '^hello'", True),
        ("hello !~ 'x'", True),
        ("-1 < 0", True),
        ("", True),
    ],
)
def test_when(text: str, expected: bool) -> None:
    assert evaluate_when(text) is expected


@pytest.mark.parametrize("text", ["heads", "1 == ", "(true", "1 < a", "true && x", "a == b == c"])
def test_when_invalid(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate_when(text)
