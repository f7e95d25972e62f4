"""Argo's expression language: the ``{{=...}}`` tags and ``retryStrategy.expression``.

Argo evaluates these with expr-lang (``github.com/expr-lang/expr`` v1.17.8, Go). Hand-written because no
Python library implements expr-lang: :mod:`.exprparse` follows its ``parser/lexer/state.go`` and
``parser/parser.go``, this module (the evaluator) its ``vm`` and ``vm/runtime``, :mod:`.exprlib` its
functions; nothing calls Python's ``eval``.

The subset executed: literals (ints, also ``0x``/``0o``/``0b``; floats; ``'..'``, ``".."`` and
backquoted strings; ``true``, ``false``, ``nil``; arrays ``[1, 2]``; maps ``{a: 1, 'b-c': 2}``),
``!`` ``not`` ``-`` ``+``, ``** ^``, ``* / %``, ``+ -`` (``+`` also joins strings), ``..`` (ranges),
``== != < > <= >=`` (``a < b < c`` chains), ``in`` ``not in`` ``matches`` ``contains`` ``startsWith``
``endsWith`` (and their ``not`` forms), ``&& and``, ``|| or``, ``??``, ``c ? a : b`` and ``a ?: b``
(``a ? a : b``: ``a`` must be a boolean, as expr-lang's checker requires),
member access ``a.b``, ``a?.b``, ``a['x-y']``, indexing ``a[0]``/``a[-1]``, slices ``a[1:3]``, calls of
Argo's functions (``asInt``, ``asFloat``, ``toJson``, ``jsonpath``, ``sprig.*``) and of expr-lang's
built-ins, predicates (``filter(xs, {# > 1})``, ``map``, ``all``, ``any``, ``none``, ``one``, ``count``,
``sum``, ``find``..., ``reduce`` with ``#acc``/``#index``), comments. Refused, with a message saying so
(:class:`~.exprlib.ExprUnsupportedError`): ``let``, ``if {} else {}``, ``;`` sequences, the pipe ``|``,
``$env``, byte strings, method calls (``now().Year()``), ``::`` and the built-ins of
:data:`~.exprlib.UNSUPPORTED_BUILTINS`.

The variables (argo-workflows ``util/template/expression_template.go`` and ``util/expr/env``): the same
flat scope the ``{{...}}`` tags resolve from, expanded on its dots (``inputs.parameters.x`` becomes
``inputs`` -> ``parameters`` -> ``x``; a key with children, such as ``inputs.parameters`` next to
``inputs.parameters.x``, gives way to them, as ``util/expand`` does), plus the functions. Values are the
scope's strings: ``asInt(inputs.parameters.n) + 1``. A hyphenated name is reached by index:
``tasks['train-model'].outputs.result``. A tag's result is inserted as it is if it is a string, else as
Go's JSON (``[3]``, ``30``, ``true``). Before running, every variable the expression names is looked up
(not those guarded by ``??`` or ``?.``); a missing one is an error naming it where Argo resolves
strictly, and leaves the tag as written elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .exprlib import (
    BUILTINS,
    ENV_FUNCTIONS,
    PREDICATES,
    SPRIG,
    ExprError,
    ExprEvalError,
    ExprMissingError,
    ExprSyntaxError,
    ExprUnsupportedError,
    add,
    arith,
    compare,
    contains,
    equal,
    is_num,
    need_bool,
)
from .exprparse import (
    COMPARISONS,
    Array,
    Binary,
    Builtin,
    Call,
    Chain,
    Cond,
    Ident,
    Lit,
    Map,
    Member,
    Node,
    Pointer,
    Predicate,
    Slice,
    Unary,
    parse,
)
from .gofmt import go_type, to_json

__all__ = [
    "ExprError",
    "ExprEvalError",
    "ExprMissingError",
    "ExprSyntaxError",
    "ExprUnsupportedError",
    "Program",
    "check_expressions",
    "compile_expression",
    "environment",
    "evaluate_bool",
    "render_tag",
]

# -------------------------------------------------------------------------------------------- evaluator


class _NilChain(Exception):
    """An optional member (``?.``) met nil: the whole chain is nil."""


@dataclass(frozen=True, slots=True)
class _Frame:
    env: Mapping[str, Any]
    element: Any = None
    index: int = 0
    acc: Any = None


def _fetch(obj: Any, prop: Any) -> Any:
    if isinstance(obj, dict):
        if not isinstance(prop, str):
            raise ExprEvalError(f"cannot fetch {prop!r} from {go_type(obj)} (keys are strings)")
        return obj.get(prop)
    if isinstance(obj, list | str):
        if not is_num(prop):
            raise ExprEvalError(f"invalid operation: int({go_type(prop)})")
        i = int(prop)
        n = len(obj) if isinstance(obj, list) else len(obj.encode())
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise ExprEvalError(f"index out of range: {i} (array length is {n})")
        return obj[j] if isinstance(obj, list) else obj.encode()[j]
    raise ExprEvalError(f"cannot fetch {prop} from {go_type(obj)}")


def _slice(obj: Any, lo: Any, hi: Any) -> Any:
    if not isinstance(obj, list | str):
        raise ExprEvalError(f"cannot slice {go_type(obj)}")
    data = obj if isinstance(obj, list) else obj.encode()
    n = len(data)
    a = 0 if lo is None else int(lo) if is_num(lo) else None
    b = n if hi is None else int(hi) if is_num(hi) else None
    if a is None or b is None:
        raise ExprEvalError("invalid operation: slice indices must be numbers")
    a, b = max(0, a + n if a < 0 else a), max(0, b + n if b < 0 else b)
    b = min(b, n)
    a = min(a, b)
    part = data[a:b]
    return part if isinstance(obj, list) else part.decode("utf-8", "replace")


def _eval(node: Node, f: _Frame) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Ident):
        if node.name not in f.env:
            raise ExprMissingError(node.name, f"unknown name {node.name}")
        return f.env[node.name]
    if isinstance(node, Member):
        obj = _eval(node.obj, f)
        if obj is None and node.optional:
            raise _NilChain
        if obj is None:
            prop = _eval(node.prop, f)
            raise ExprEvalError(f"cannot fetch {prop} from <nil>")
        return _fetch(obj, _eval(node.prop, f))
    if isinstance(node, Chain):
        try:
            return _eval(node.node, f)
        except _NilChain:
            return None
    if isinstance(node, Binary):
        return _binary(node, f)
    if isinstance(node, Unary):
        v = _eval(node.node, f)
        if node.op in ("!", "not"):
            return not need_bool(v, f"{node.op} {go_type(v)}")
        if not is_num(v):
            raise ExprEvalError(f"invalid operation: {node.op} {go_type(v)}")
        return -v if node.op == "-" else v
    if isinstance(node, Cond):
        c = need_bool(_eval(node.cond, f), "non-bool condition of ?:")  # a ?: b is a ? a : b
        return (c if node.then is node.cond else _eval(node.then, f)) if c else _eval(node.other, f)
    if isinstance(node, Call):
        fn = _eval(node.callee, f)
        if not callable(fn):
            raise ExprEvalError(f"{go_type(fn)} is not a function")
        return fn(*(_eval(a, f) for a in node.args))
    if isinstance(node, Builtin):
        if node.name in PREDICATES:
            return _predicate_call(node, f)
        return BUILTINS[node.name](*(_eval(a, f) for a in node.args))
    if isinstance(node, Pointer):
        return f.index if node.name == "index" else f.acc if node.name == "acc" else f.element
    if isinstance(node, Array):
        return [_eval(x, f) for x in node.items]
    if isinstance(node, Map):
        out = {}
        for k, v in node.pairs:
            key = _eval(k, f)
            if not isinstance(key, str):
                raise ExprEvalError(f"map keys must be strings, got {go_type(key)}")
            out[key] = _eval(v, f)
        return out
    if isinstance(node, Slice):
        return _slice(
            _eval(node.obj, f),
            None if node.lo is None else _eval(node.lo, f),
            None if node.hi is None else _eval(node.hi, f),
        )
    raise ExprEvalError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover


def _binary(node: Binary, f: _Frame) -> Any:
    op = node.op
    if op == "??":
        left = _eval(node.left, f)
        return left if left is not None else _eval(node.right, f)
    if op in ("&&", "and"):
        return need_bool(_eval(node.left, f), op) and need_bool(_eval(node.right, f), op)
    if op in ("||", "or"):
        return need_bool(_eval(node.left, f), op) or need_bool(_eval(node.right, f), op)
    a, b = _eval(node.left, f), _eval(node.right, f)
    if op == "==":
        return equal(a, b)
    if op == "!=":
        return not equal(a, b)
    if op in COMPARISONS:
        return compare(op, a, b)
    if op == "in":
        return contains(a, b)
    if op in ("matches", "contains", "startsWith", "endsWith"):
        if not (isinstance(a, str) and isinstance(b, str)):
            raise ExprEvalError(f"invalid operation: {go_type(a)} {op} {go_type(b)}")
        if op == "matches":
            try:
                return re.search(b, a) is not None
            except re.error as exc:
                raise ExprEvalError(f"error parsing regexp {b!r}: {exc}") from None
        return b in a if op == "contains" else a.startswith(b) if op == "startsWith" else a.endswith(b)
    if op == "+":
        return add(a, b)
    if op == "..":
        if not (isinstance(a, int) and isinstance(b, int)) or isinstance(a, bool) or isinstance(b, bool):
            raise ExprEvalError(f"invalid operation: {go_type(a)} .. {go_type(b)}")
        return list(range(a, b + 1))
    return arith(op, a, b)


def _predicate_call(node: Builtin, f: _Frame) -> Any:
    name = node.name
    items = _eval(node.args[0], f)
    if not isinstance(items, list):
        raise ExprEvalError(f"cannot iterate over {go_type(items)} in {name}()")
    pred = node.args[1].body if len(node.args) > 1 and isinstance(node.args[1], Predicate) else None

    def run(i: int, x: Any, acc: Any = None) -> Any:
        assert pred is not None  # only called by the predicates that have one
        return _eval(pred, _Frame(f.env, x, i, acc))

    def test(i: int, x: Any) -> bool:
        return need_bool(run(i, x), f"predicate of {name}()")

    if name == "all":
        return all(test(i, x) for i, x in enumerate(items))
    if name == "none":
        return not any(test(i, x) for i, x in enumerate(items))
    if name == "any":
        return any(test(i, x) for i, x in enumerate(items))
    if name == "one":
        return sum(1 for i, x in enumerate(items) if test(i, x)) == 1
    if name == "filter":
        return [x for i, x in enumerate(items) if test(i, x)]
    if name == "map":
        return [run(i, x) for i, x in enumerate(items)]
    if name == "count":
        if pred is None:
            return sum(1 for x in items if need_bool(x, "element of count()"))
        return sum(1 for i, x in enumerate(items) if test(i, x))
    if name == "sum":
        values = [run(i, x) for i, x in enumerate(items)] if pred is not None else items
        total: Any = 0
        for v in values:
            total = arith("+", total, v)
        return total
    if name in ("find", "findLast", "findIndex", "findLastIndex"):
        order = list(enumerate(items))
        if name.startswith("findLast"):
            order.reverse()
        for i, x in order:
            if test(i, x):
                return i if name.endswith("Index") else x
        return -1 if name.endswith("Index") else None
    # reduce
    if len(node.args) > 2:
        acc, start = _eval(node.args[2], f), 0
    elif items:
        acc, start = items[0], 1
    else:
        raise ExprEvalError("reduce of empty array with no initial value")
    for i in range(start, len(items)):
        acc = run(i, items[i], acc)
    return acc


# ------------------------------------------------------------------------------------------- the program


def _member_path(node: Node) -> str | None:
    """``a.b['c-d']`` as ``a.b.c-d`` (argo ``getMemberPath``); None if it is not a constant chain."""
    parts: list[str] = []
    while isinstance(node, Member):
        if node.optional or not isinstance(node.prop, Lit) or not isinstance(node.prop.value, str):
            return None
        parts.append(node.prop.value)
        node = node.obj
    if not isinstance(node, Ident):
        return None
    return ".".join([node.name, *reversed(parts)])


class Program:
    """A parsed expression: :meth:`run` it in an environment, or ask which variables it names."""

    def __init__(self, text: str, tree: Node) -> None:
        self.text = text
        self._tree = tree
        self.variables = self._variables()

    def _variables(self) -> tuple[str, ...]:
        """The variables named, post-order like ``ast.Walk``, without those guarded by ``??`` / ``?.``."""
        guarded: set[int] = set()

        def mark(node: Node) -> None:
            if isinstance(node, Member):
                guarded.add(id(node))
            for child in node.children():
                mark(child)

        def guard(node: Node) -> None:
            if isinstance(node, Binary) and node.op == "??":
                mark(node.left)
            if isinstance(node, Member) and node.optional and isinstance(node.obj, Member):
                guarded.add(id(node.obj))
            for child in node.children():
                guard(child)

        found: dict[str, None] = {}

        def visit(node: Node) -> None:
            for child in node.children():
                visit(child)
            if id(node) in guarded:
                return
            if isinstance(node, Ident):
                found.setdefault(node.name, None)
            elif isinstance(node, Member) and (path := _member_path(node)):
                found.setdefault(path, None)

        guard(self._tree)
        visit(self._tree)
        return tuple(found)

    def missing(self, env: Mapping[str, Any]) -> list[str]:
        """The named variables not in ``env`` (argo ``hasVarInEnv``)."""
        return [v for v in self.variables if not _has(env, v)]

    def run(self, env: Mapping[str, Any]) -> Any:
        try:
            return _eval(self._tree, _Frame(env))
        except _NilChain:
            return None
        except RecursionError:
            raise ExprEvalError("expression nested too deeply") from None


def _has(env: Mapping[str, Any], path: str) -> bool:
    current: Any = env
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> Program:
    """Parse ``text``; :class:`ExprSyntaxError` or :class:`ExprUnsupportedError` if it cannot run here.

    Also refuses what would fail for certain when run: a call of a function Argo's environment does not
    have, and a sprig function the engine does not execute.
    """
    program = Program(text, parse(text))
    _check_calls(program._tree)
    return program


def _check_calls(node: Node) -> None:
    if isinstance(node, Call):
        callee = node.callee
        if isinstance(callee, Ident) and callee.name not in ENV_FUNCTIONS:
            raise ExprSyntaxError(
                f"unknown function {callee.name}() (Argo's expressions offer expr-lang's built-ins and "
                f"{', '.join(n for n in ENV_FUNCTIONS if n != 'sprig')}, sprig.*)"
            )
        if isinstance(callee, Member) and isinstance(callee.prop, Lit) and callee.prop.value not in SPRIG:
            raise ExprUnsupportedError(
                f"sprig.{callee.prop.value}() is not supported by the embedded engine (supported: "
                f"{', '.join(sorted(SPRIG))})"
            )
    for child in node.children():
        _check_calls(child)


# ------------------------------------------------------------------------------------------ environment


def _expand(scope: Mapping[str, Any]) -> dict[str, Any]:
    """argo ``util/expand.Expand``: flat dotted keys into nested maps, a parent key giving way to its
    children (``removeConflicts`` drops ``k`` when the next key in sorted order starts with ``k.``)."""
    keys = sorted(scope)
    env: dict[str, Any] = {}
    for i, key in enumerate(keys):
        if i + 1 < len(keys) and keys[i + 1].startswith(key + "."):
            continue
        parts = key.split(".")
        node = env
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = scope[key]
    return env


def environment(scope: Mapping[str, Any]) -> dict[str, Any]:
    """What an expression sees: ``scope`` expanded on its dots, plus Argo's functions (``GetFuncMap``)."""
    env = _expand(scope)
    env.update(ENV_FUNCTIONS)
    return env


def render_tag(text: str, scope: Mapping[str, str], *, strict: bool) -> str | None:
    """The replacement of the tag ``{{=text}}``, or None to leave it as written (not ``strict`` only).

    Argo's ``expressionReplaceCore``: a string result is inserted as it is, anything else as JSON;
    ``nil`` is an error. With ``strict`` a missing variable or a failure raises :class:`ExprError`.
    """
    try:
        program = compile_expression(text)
    except ExprError:
        if not strict:
            return None
        raise
    env = environment(scope)
    missing = program.missing(env)
    if missing:
        if not strict:
            return None
        raise ExprMissingError(missing[0], f"failed to evaluate expression: {missing[0]} is missing")
    try:
        result = program.run(env)
    except ExprError as exc:
        if not strict:
            return None
        raise ExprEvalError(f"failed to evaluate expression: {exc}") from None
    if result is None:
        if not strict:
            return None
        raise ExprEvalError(f"failed to evaluate expression {text!r}: the result is nil")
    if isinstance(result, str):
        return result
    try:
        return to_json(result)
    except ValueError as exc:
        if not strict:
            return None
        raise ExprEvalError(f"failed to marshal evaluated expression: {exc}") from None


def evaluate_bool(text: str, variables: Mapping[str, Any]) -> bool:
    """argo ``argoexpr.EvalBool``: ``text`` with ``variables`` (flat, dotted) and the functions."""
    program = compile_expression(text)
    result = program.run(environment(variables))
    if not isinstance(result, bool):
        raise ExprEvalError(f"unable to cast expression result '{result}' to bool")
    return result


# ------------------------------------------------------------------------------------ the document check

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)  # params.TAG_RE: fasttemplate's first '}}' ends a tag
#: Fields that hold a whole expression rather than tags: (parent key, key).
_EXPRESSION_FIELDS = {("retryStrategy", "expression"), ("exit", "expression")}


def check_expressions(obj: Any, path: str = "") -> tuple[list[str], list[str]]:
    """(unsupported, invalid) problems of every expression in a document, each with its field path.

    Every ``{{=...}}`` tag is parsed, and so are ``retryStrategy.expression`` and ``hooks.exit.expression``
    (with their ``{{...}}`` tags blanked out, since they are substituted first).
    """
    unsupported: list[str] = []
    invalid: list[str] = []

    def check(text: str, where: str, shown: str) -> None:
        try:
            compile_expression(text)
        except ExprUnsupportedError as exc:
            unsupported.append(f"{where}: expression {shown}: {exc}")
        except ExprError as exc:
            invalid.append(f"{where}: invalid expression {shown}: {exc}")

    def walk(o: Any, where: str, parent: str, key: str) -> None:
        if isinstance(o, str):
            if (parent, key) in _EXPRESSION_FIELDS and "{{=" not in o:
                check(_TAG.sub("nil", o), where, repr(o))
            for m in _TAG.finditer(o):
                if m.group(1).startswith("="):
                    check(m.group(1)[1:], where, repr(m.group(0)))
        elif isinstance(o, list):
            for i, x in enumerate(o):
                label = f"{where}[{i}]" + (
                    f" (name: {x['name']})" if isinstance(x, dict) and "name" in x else ""
                )
                walk(x, label, key, key)
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{where}.{k}" if where else str(k), key, str(k))

    walk(obj, path, "", "")
    return unsupported, invalid
