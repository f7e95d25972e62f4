"""Argo's two small expression languages: DAG ``depends`` and the ``when`` condition.

Hand-written because no Python library implements them: Argo evaluates ``depends`` with expr-lang after
rewriting, and ``when`` with govaluate (Go). Both are tiny, so a tokenizer plus a recursive-descent parser
each is enough, and keeps ``eval`` out of the engine.

``depends`` (argo-workflows ``workflow/common/ancestry.go`` and ``workflow/controller/dag.go``
``evaluateDependsLogic``): operands are ``TASK`` or ``TASK.RESULT`` with RESULT one of Succeeded, Failed,
Errored, Skipped, Omitted, Daemoned, AnySucceeded, AllFailed; operators ``&&``, ``||``, ``!`` and
parentheses. A bare ``TASK`` means ``(TASK.Succeeded || TASK.Skipped || TASK.Daemoned)``.

``when`` (govaluate as used by argo-workflows ``shouldExecute``): after ``{{...}}`` substitution, comparisons
``== != < > <= >= =~ !~``, ``&& || !``, parentheses, numbers, quoted strings, ``true``/``false``; bare words
are compared as strings (Argo turns govaluate variables into string literals).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "DEPENDS_RESULTS",
    "DependsExpr",
    "ExpressionError",
    "TaskResults",
    "evaluate_when",
    "parse_depends",
]

DEPENDS_RESULTS = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)


class ExpressionError(ValueError):
    """A ``depends`` or ``when`` expression could not be parsed or evaluated."""


@dataclass(frozen=True)
class TaskResults:
    """What a ``depends`` expression can ask about one finished dependency (Argo's ``TaskResults``)."""

    succeeded: bool = False
    failed: bool = False
    errored: bool = False
    skipped: bool = False
    omitted: bool = False
    daemoned: bool = False
    any_succeeded: bool = False
    all_failed: bool = False

    def get(self, result: str) -> bool:
        attr = re.sub(r"(?<!^)([A-Z])", r"_\1", result).lower()
        return bool(getattr(self, attr))


# ----------------------------------------------------------------------------------------------- depends

_DEPENDS_TOKEN = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|([A-Za-z0-9_][A-Za-z0-9_\-]*)(?:\.([A-Za-z]+))?)")


@dataclass(frozen=True)
class _Atom:
    task: str
    result: str | None  # None: the bare form (Succeeded || Skipped || Daemoned)


@dataclass(frozen=True)
class _Not:
    operand: object


@dataclass(frozen=True)
class _BoolOp:
    op: str  # "&&" or "||"
    operands: tuple[object, ...]


class DependsExpr:
    """A parsed ``depends`` expression."""

    def __init__(self, text: str, tree: object) -> None:
        self.text = text
        self._tree = tree

    @property
    def tasks(self) -> list[str]:
        """The task names the expression refers to, in order of first appearance."""
        seen: dict[str, None] = {}
        for atom, _neg in self.atoms():
            seen.setdefault(atom.task, None)
        return list(seen)

    def atoms(self) -> Iterator[tuple[_Atom, bool]]:
        """Every operand with whether it sits under an odd number of ``!``."""

        def walk(node: object, neg: bool) -> Iterator[tuple[_Atom, bool]]:
            if isinstance(node, _Atom):
                yield node, neg
            elif isinstance(node, _Not):
                yield from walk(node.operand, not neg)
            elif isinstance(node, _BoolOp):
                for o in node.operands:
                    yield from walk(o, neg)

        yield from walk(self._tree, False)

    def references(self, task: str) -> list[tuple[str | None, bool]]:
        """(result, negated) for every operand naming ``task``."""
        return [(a.result, neg) for a, neg in self.atoms() if a.task == task]

    def evaluate(self, results: Mapping[str, TaskResults]) -> bool:
        def ev(node: object) -> bool:
            if isinstance(node, _Atom):
                r = results[node.task]
                if node.result is None:
                    return r.succeeded or r.skipped or r.daemoned
                return r.get(node.result)
            if isinstance(node, _Not):
                return not ev(node.operand)
            assert isinstance(node, _BoolOp)
            if node.op == "&&":
                return all(ev(o) for o in node.operands)
            return any(ev(o) for o in node.operands)

        return ev(self._tree)


def parse_depends(text: str) -> DependsExpr:
    """Parse a ``depends`` string; raise :class:`ExpressionError` if it is malformed."""
    tokens: list[tuple[str, str, str | None]] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _DEPENDS_TOKEN.match(stripped, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"invalid depends expression {text!r}: unexpected {stripped[pos:]!r}")
        if m.group(1):
            tokens.append(("op", m.group(1), None))
        else:
            result = m.group(3)
            if result is not None and result not in DEPENDS_RESULTS:
                raise ExpressionError(
                    f"invalid depends expression {text!r}: unknown result '.{result}' "
                    f"(expected one of {', '.join(DEPENDS_RESULTS)})"
                )
            tokens.append(("name", m.group(2), result))
        pos = m.end()
    if not tokens:
        raise ExpressionError("empty depends expression")
    i = 0

    def peek() -> str | None:
        return tokens[i][1] if i < len(tokens) and tokens[i][0] == "op" else None

    def parse_or() -> object:
        nonlocal i
        ops = [parse_and()]
        while peek() == "||":
            i += 1
            ops.append(parse_and())
        return ops[0] if len(ops) == 1 else _BoolOp("||", tuple(ops))

    def parse_and() -> object:
        nonlocal i
        ops = [parse_unary()]
        while peek() == "&&":
            i += 1
            ops.append(parse_unary())
        return ops[0] if len(ops) == 1 else _BoolOp("&&", tuple(ops))

    def parse_unary() -> object:
        nonlocal i
        if i >= len(tokens):
            raise ExpressionError(f"invalid depends expression {text!r}: unexpected end")
        kind, value, result = tokens[i]
        if kind == "op" and value == "!":
            i += 1
            return _Not(parse_unary())
        if kind == "op" and value == "(":
            i += 1
            inner = parse_or()
            if peek() != ")":
                raise ExpressionError(f"invalid depends expression {text!r}: missing ')'")
            i += 1
            return inner
        if kind == "name":
            i += 1
            return _Atom(value, result)
        raise ExpressionError(f"invalid depends expression {text!r}: unexpected {value!r}")

    tree = parse_or()
    if i != len(tokens):
        raise ExpressionError(f"invalid depends expression {text!r}: unexpected {tokens[i][1]!r}")
    return DependsExpr(text, tree)


# -------------------------------------------------------------------------------------------------- when

_WHEN_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>&&|\|\||==|!=|<=|>=|=~|!~|<|>|!|\(|\))
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![A-Za-z_\-.:/])
      | (?P<word>[^\s()!=<>&|"']+)
    )""",
    re.VERBOSE,
)

_COMPARATORS = ("==", "!=", "<", ">", "<=", ">=", "=~", "!~")


def _tokenize_when(text: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _WHEN_TOKEN.match(stripped, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"invalid 'when' expression {text!r} at {stripped[pos:]!r}")
        if m.group("op"):
            out.append(("op", m.group("op")))
        elif m.group("str") is not None:
            raw = m.group("str")[1:-1]
            out.append(("val", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("num") is not None:
            num = m.group("num")
            # A leading '-' is a sign only where an operand is expected (start, after an operator).
            out.append(("val", float(num)))
        else:
            word = m.group("word")
            if word == "true":
                out.append(("val", True))
            elif word == "false":
                out.append(("val", False))
            else:
                out.append(("val", word))
        pos = m.end()
    return out


def evaluate_when(text: str) -> bool:
    """Evaluate an already-substituted ``when`` condition; raise :class:`ExpressionError` if invalid."""
    if not text or not text.strip():
        return True
    tokens = _tokenize_when(text)
    i = 0

    def peek() -> object:
        return tokens[i][1] if i < len(tokens) and tokens[i][0] == "op" else None

    def need_bool(v: object) -> bool:
        if not isinstance(v, bool):
            raise ExpressionError(f"invalid 'when' expression {text!r}: {v!r} is not a boolean")
        return v

    def parse_or() -> object:
        nonlocal i
        v = parse_and()
        while peek() == "||":
            i += 1
            rhs = parse_and()
            v = need_bool(v) or need_bool(rhs)
        return v

    def parse_and() -> object:
        nonlocal i
        v = parse_not()
        while peek() == "&&":
            i += 1
            rhs = parse_not()
            v = need_bool(v) and need_bool(rhs)
        return v

    def parse_not() -> object:
        nonlocal i
        if peek() == "!":
            i += 1
            return not need_bool(parse_not())
        return parse_cmp()

    def parse_cmp() -> object:
        nonlocal i
        lhs = parse_primary()
        op = peek()
        if op in _COMPARATORS:
            i += 1
            rhs = parse_primary()
            return _compare(text, lhs, str(op), rhs)
        return lhs

    def parse_primary() -> object:
        nonlocal i
        if i >= len(tokens):
            raise ExpressionError(f"invalid 'when' expression {text!r}: unexpected end")
        kind, value = tokens[i]
        if kind == "op" and value == "(":
            i += 1
            v = parse_or()
            if peek() != ")":
                raise ExpressionError(f"invalid 'when' expression {text!r}: missing ')'")
            i += 1
            return v
        if kind == "val":
            i += 1
            return value
        raise ExpressionError(f"invalid 'when' expression {text!r}: unexpected {value!r}")

    result = parse_or()
    if i != len(tokens):
        raise ExpressionError(f"invalid 'when' expression {text!r}: unexpected {tokens[i][1]!r}")
    if not isinstance(result, bool):
        raise ExpressionError(f"expected boolean evaluation for 'when' expression {text!r}, got {result!r}")
    return result


def _compare(text: str, lhs: object, op: str, rhs: object) -> bool:
    if op in ("=~", "!~"):
        try:
            found = re.search(str(rhs), str(lhs)) is not None
        except re.error as exc:
            raise ExpressionError(f"invalid regular expression in {text!r}: {exc}") from exc
        return found if op == "=~" else not found
    if op in ("==", "!="):
        equal = type(lhs) is type(rhs) and lhs == rhs
        return equal if op == "==" else not equal
    both_num = isinstance(lhs, float) and isinstance(rhs, float)
    both_str = isinstance(lhs, str) and isinstance(rhs, str)
    if not (both_num or both_str):
        raise ExpressionError(f"cannot compare {lhs!r} {op} {rhs!r} in 'when' expression {text!r}")
    a, b = lhs, rhs
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]
