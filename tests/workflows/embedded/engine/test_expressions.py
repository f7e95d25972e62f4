"""depends and when expression languages."""

from __future__ import annotations

import pytest

from edgefed.workflows.embedded.engine.expressions import (
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
