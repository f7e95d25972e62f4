"""Argo's two small expression languages: DAG ``depends`` and the ``when`` condition.

(The third, expr-lang of ``{{=...}}`` tags and ``retryStrategy.expression``, is :mod:`.expr`.)

Hand-written because no Python library implements them: Argo evaluates ``depends`` with expr-lang after
rewriting, and ``when`` with govaluate (Go). Both are tiny, so a tokenizer plus a recursive-descent parser
each is enough, and keeps ``eval`` out of the engine.

``depends`` (argo-workflows ``workflow/common/ancestry.go`` and ``workflow/controller/dag.go``
``evaluateDependsLogic``): operands are ``TASK`` or ``TASK.RESULT`` with RESULT one of Succeeded, Failed,
Errored, Skipped, Omitted, Daemoned, AnySucceeded, AllFailed; operators ``&&``, ``||``, ``!`` and
parentheses. A bare ``TASK`` means ``(TASK.Succeeded || TASK.Skipped || TASK.Daemoned)``. Task names are
written bare, of letters, digits and '-' (Argo's ``taskNameRegex``): Argo has no quoted form. This one
parser serves the engine and the conformance lint (``tests/conformance``), so both accept what Argo does.

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
    "DependsError",
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

#: A task name as Argo's ``taskNameRegex`` (``workflow/common/ancestry.go``) reads it in ``depends``: the
#: DAG task name format of ``validate.go`` (letters, digits, '-'). Quotes, '_' and spaces are not part of
#: it: Argo extracts dependencies with that regex and evaluates the rest with expr-lang, where a quoted
#: ``'my task'`` is a string literal, never a task, and '-' is rewritten to '_' (so '_' would collide).
_DEPENDS_NAME = re.compile(r"[A-Za-z0-9][-A-Za-z0-9]*")
_DEPENDS_RESULT = re.compile(r"\.([A-Za-z]+)")
_DEPENDS_OPERATOR = re.compile(r"&&|\|\||!|\(|\)")
#: Characters people try in task names, and why Argo does not take them.
_DEPENDS_HINTS = {
    "'": "quoted task names are not part of Argo's depends syntax (expr reads a quoted name as a string)",
    '"': "quoted task names are not part of Argo's depends syntax (expr reads a quoted name as a string)",
    "`": "quoted task names are not part of Argo's depends syntax",
    "_": "task names consist of letters, digits and '-' ('_' is not allowed)",
}


class DependsError(ExpressionError):
    """A ``depends`` expression Argo would reject: ``detail`` says why, ``position`` where (None: at the end)."""

    def __init__(self, text: str, detail: str, *, position: int | None) -> None:
        self.text = text
        self.detail = detail
        self.position = position
        super().__init__(f"invalid depends expression {text!r}: {detail}")


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


_Token = tuple[str, str, str | None, int]  # (kind "op" | "name", text, result, position)


def _tokenize_depends(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        op = _DEPENDS_OPERATOR.match(text, pos)
        if op:
            tokens.append(("op", op.group(), None, pos))
            pos = op.end()
            continue
        name = _DEPENDS_NAME.match(text, pos)
        if not name:
            hint = _DEPENDS_HINTS.get(text[pos])
            raise DependsError(
                text,
                f"unexpected {text[pos]!r} at position {pos}" + (f": {hint}" if hint else ""),
                position=pos,
            )
        result: str | None = None
        end = name.end()
        dotted = _DEPENDS_RESULT.match(text, end)
        if dotted:
            result = dotted.group(1)
            if result not in DEPENDS_RESULTS:
                raise DependsError(
                    text,
                    f"unknown result '.{result}' at position {end}: task result '{name.group()}.{result}' "
                    f"is invalid (expected one of {', '.join(DEPENDS_RESULTS)})",
                    position=end,
                )
            end = dotted.end()
        tokens.append(("name", name.group(), result, pos))
        pos = end
    return tokens


def parse_depends(text: str) -> DependsExpr:
    """Parse a ``depends`` string as Argo reads it; raise :class:`DependsError` if Argo would reject it.

    Operands are ``TASK`` or ``TASK.RESULT`` (task names of letters, digits and '-', RESULT one of
    :data:`DEPENDS_RESULTS`), combined with ``&&``, ``||``, ``!`` and parentheses.
    """
    tokens = _tokenize_depends(text)
    if not tokens:
        raise DependsError(text, "empty depends expression", position=None)
    i = 0

    def peek() -> str | None:
        return tokens[i][1] if i < len(tokens) and tokens[i][0] == "op" else None

    def fail(expected: str) -> DependsError:
        if i >= len(tokens):
            return DependsError(text, f"expected {expected} at the end", position=None)
        _kind, value, _result, at = tokens[i]
        return DependsError(text, f"unexpected {value!r} at position {at} (expected {expected})", position=at)

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
            raise fail("a task name")
        kind, value, result, _at = tokens[i]
        if kind == "op" and value == "!":
            i += 1
            return _Not(parse_unary())
        if kind == "op" and value == "(":
            i += 1
            inner = parse_or()
            if peek() != ")":
                raise fail("')'")
            i += 1
            return inner
        if kind == "name":
            i += 1
            return _Atom(value, result)
        raise fail("a task name")

    tree = parse_or()
    if i != len(tokens):
        _kind, value, _result, at = tokens[i]
        raise DependsError(text, f"unexpected {value!r} at position {at}", position=at)
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
