"""The run-time side of Argo's expression language: values, operators and functions (see :mod:`.expr`).

Why this module is long: it is the function library of one language, and each function is a few lines
that must follow its Go original (expr-lang v1.17.8 ``builtin/``, ``vm/runtime``; Argo's
``util/expr/env/env.go``; sprig v3.3.0 ``functions.go``, ``defaults.go``, ``numeric.go``, ``strings.go``);
split, the same Go conventions (``int`` vs ``float64``, ``nil``, ``%v``) would be spread over modules.

Values are Python's JSON types standing for Go's (see :mod:`.gofmt`). Operators follow
``vm/runtime/helpers[generated].go``: ``int`` arithmetic stays ``int`` (64-bit, wrapping), ``/`` always
gives a float, ``%`` needs ints, ``==`` compares numbers by value and everything else by type and value
(``[1] == [1.0]`` is false), ``<`` needs two numbers or two strings. The environment an expression sees
(:data:`ENV_FUNCTIONS`) is Argo's: expr-lang's built-ins plus ``asInt``/``asFloat`` (expr-lang's
``int``/``float``), ``toJson``, ``jsonpath`` and ``sprig`` - of which a subset (:data:`SPRIG`) is executed
here; any other sprig function, and the built-ins of :data:`UNSUPPORTED_BUILTINS` (dates, bit operations,
``groupBy``...), are refused when the document is checked.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from .errors import NodeError
from .exprpath import JSONPathError, load_json, query
from .gofmt import atoi, go_type, parse_float, parse_int, sprint, to_json

__all__ = [
    "BUILTINS",
    "ENV_FUNCTIONS",
    "PREDICATES",
    "SPRIG",
    "UNSUPPORTED_BUILTINS",
    "ExprError",
    "ExprEvalError",
    "ExprMissingError",
    "ExprSyntaxError",
    "ExprUnsupportedError",
    "add",
    "arith",
    "compare",
    "contains",
    "equal",
    "need_bool",
]


class ExprError(NodeError):
    """An expression that cannot be evaluated: the node that needed it errors."""


class ExprSyntaxError(ExprError):
    """Not valid expr-lang (Argo would fail to compile it)."""


class ExprUnsupportedError(ExprError):
    """Valid expr-lang that the embedded engine does not execute (``let``, pipes, date functions...)."""


class ExprEvalError(ExprError):
    """The expression failed while running (a type mismatch, a bad conversion, a function's error)."""


class ExprMissingError(ExprEvalError):
    """The expression names a variable that is not in scope (Argo: ``<name> is missing``)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


_INT64 = 1 << 63


def _wrap(i: int) -> int:
    """Go's 64-bit ``int`` overflow."""
    return ((i + _INT64) % (2 * _INT64)) - _INT64


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def need_bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ExprEvalError(f"invalid operation: {what} (type {go_type(v)} is not bool)")
    return v


# ------------------------------------------------------------------------------------------- operators


def _deep_equal(a: Any, b: Any) -> bool:
    """Go's ``reflect.DeepEqual`` on unmarshalled values: types must match, ``1`` and ``1.0`` differ."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def equal(a: Any, b: Any) -> bool:
    """expr-lang's ``runtime.Equal``."""
    if is_num(a) and is_num(b):
        return bool(a == b)
    if isinstance(a, str | bool) or isinstance(b, str | bool):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return a is None and b is None
    return _deep_equal(a, b)


def compare(op: str, a: Any, b: Any) -> bool:
    """``< > <= >=`` on two numbers or two strings."""
    if not ((is_num(a) and is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        raise ExprEvalError(f"invalid operation: {go_type(a)} {op} {go_type(b)}")
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    return bool(a >= b)


def contains(needle: Any, haystack: Any) -> bool:
    """The ``in`` operator (``runtime.In``)."""
    if haystack is None:
        return False
    if isinstance(haystack, list):
        return any(equal(x, needle) for x in haystack)
    if isinstance(haystack, dict):
        if not isinstance(needle, str):
            raise ExprEvalError(f"cannot use {go_type(needle)} as a key of {go_type(haystack)}")
        return needle in haystack
    raise ExprEvalError(f'operator "in" not defined on {go_type(haystack)}')


def add(a: Any, b: Any) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    return arith("+", a, b)


def arith(op: str, a: Any, b: Any) -> Any:
    """``+ - * / % **`` on numbers, as ``runtime.Add``... do."""
    if not (is_num(a) and is_num(b)):
        raise ExprEvalError(f"invalid operation: {go_type(a)} {op} {go_type(b)}")
    if op in ("**", "^"):
        try:
            return math.pow(a, b)
        except (OverflowError, ValueError):
            return math.inf if a else math.nan
    if op == "/":
        if b == 0:
            return math.nan if a == 0 else math.copysign(math.inf, a) * math.copysign(1, b)
        return float(a) / float(b)
    if op == "%":
        if not (isinstance(a, int) and isinstance(b, int)):
            raise ExprEvalError(f"invalid operation: {go_type(a)} % {go_type(b)}")
        if b == 0:
            raise ExprEvalError("runtime error: integer divide by zero")
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    result = a + b if op == "+" else a - b if op == "-" else a * b
    return _wrap(result) if isinstance(result, int) else result


# ------------------------------------------------------------------------------------ expr-lang built-ins


def _args(name: str, args: Sequence[Any], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise ExprEvalError(f"invalid number of arguments for {name} (expected {expected}, got {len(args)})")


def _str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ExprEvalError(f"invalid argument for {name} (type {go_type(v)}, expected string)")
    return v


def _list(name: str, v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise ExprEvalError(f"invalid argument for {name} (type {go_type(v)}, expected array)")
    return v


def _int_arg(name: str, v: Any) -> int:
    if not is_num(v):
        raise ExprEvalError(f"invalid argument for {name} (type {go_type(v)}, expected int)")
    return int(v)


def to_int(v: Any) -> int:
    """expr-lang's ``int()`` (Argo's ``asInt``): numbers truncated, strings by ``strconv.Atoi``."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ExprEvalError(f"invalid operation: int({go_type(v)})")
    if isinstance(v, str):
        try:
            return atoi(v)
        except ValueError:
            raise ExprEvalError(f"invalid operation: int({v})") from None
    if isinstance(v, float) and not math.isfinite(v):
        return -_INT64
    return _wrap(int(v))


def to_float(v: Any) -> float:
    """expr-lang's ``float()`` (Argo's ``asFloat``): strings by ``strconv.ParseFloat``."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ExprEvalError(f"invalid operation: float({go_type(v)})")
    if isinstance(v, str):
        try:
            return parse_float(v)
        except ValueError:
            raise ExprEvalError(f"invalid operation: float({v})") from None
    return float(v)


def _round(name: str, v: Any) -> float:
    if not is_num(v):
        raise ExprEvalError(f"invalid argument for {name} (type {go_type(v)})")
    if isinstance(v, int):
        return float(v)
    if not math.isfinite(v):
        return v
    if name == "ceil":
        return float(math.ceil(v))
    if name == "floor":
        return float(math.floor(v))
    return math.copysign(math.floor(abs(v) + 0.5), v)  # Go's math.Round: half away from zero


def _len(v: Any) -> int:
    if not isinstance(v, list | dict | str):
        raise ExprEvalError(f"invalid argument for len (type {go_type(v)})")
    return len(v)


def _type(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "map"
    return "func"


def _abs(v: Any) -> Any:
    if not is_num(v):
        raise ExprEvalError(f"invalid argument for abs (type {go_type(v)})")
    return abs(v)


_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _trim(*args: Any) -> str:
    _args("trim", args, 1, 2)
    s = _str("trim", args[0])
    return s.strip(_GO_SPACE) if len(args) == 1 else s.strip(_str("trim", args[1]))


def _trim_prefix(*args: Any) -> str:
    _args("trimPrefix", args, 1, 2)
    s, p = _str("trimPrefix", args[0]), _str("trimPrefix", args[1]) if len(args) == 2 else " "
    return s.removeprefix(p)


def _trim_suffix(*args: Any) -> str:
    _args("trimSuffix", args, 1, 2)
    s, p = _str("trimSuffix", args[0]), _str("trimSuffix", args[1]) if len(args) == 2 else " "
    return s.removesuffix(p)


def _go_split(s: str, sep: str, n: int) -> list[str]:
    """Go's ``strings.SplitN``."""
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        return chars if n < 0 or n >= len(chars) else [*chars[: n - 1], "".join(chars[n - 1 :])]
    return s.split(sep) if n < 0 else s.split(sep, n - 1)


def _split(*args: Any) -> list[Any]:
    _args("split", args, 2, 3)
    n = _int_arg("split", args[2]) if len(args) == 3 else -1
    return list(_go_split(_str("split", args[0]), _str("split", args[1]), n))


def _replace(*args: Any) -> str:
    _args("replace", args, 3, 4)
    s, old, new = (_str("replace", a) for a in args[:3])
    n = _int_arg("replace", args[3]) if len(args) == 4 else -1
    return s.replace(old, new, n)


def _repeat(s: Any, n: Any) -> str:
    count = _int_arg("repeat", n)
    if count < 0:
        raise ExprEvalError(f"invalid argument for repeat (expected positive integer, got {count})")
    if count > 1_000_000:
        raise ExprEvalError("memory budget exceeded")
    return _str("repeat", s) * count


def _join(*args: Any) -> str:
    _args("join", args, 1, 2)
    glue = _str("join", args[1]) if len(args) == 2 else ""
    return glue.join(_str("join", x) for x in _list("join", args[0]))


def _index_of(s: Any, sub: Any, last: bool = False) -> int:
    """Go's ``strings.Index``/``LastIndex``: a *byte* offset."""
    hay, needle = _str("indexOf", s).encode(), _str("indexOf", sub).encode()
    return hay.rfind(needle) if last else hay.find(needle)


def _flat_numbers(name: str, args: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for a in args:
        if isinstance(a, list):
            out.extend(_flat_numbers(name, a))
        elif is_num(a):
            out.append(a)
        else:
            raise ExprEvalError(f"invalid argument for {name} (type {go_type(a)})")
    return out


def _min_max(name: str, args: Sequence[Any]) -> Any:
    if len(args) == 1 and not isinstance(args[0], list) and not is_num(args[0]):
        return args[0]
    values = _flat_numbers(name, args)
    if not values:
        return None
    pick = values[0]
    for v in values[1:]:
        if (v > pick) if name == "max" else (v < pick):
            pick = v
    return pick


def _mean(*args: Any) -> float:
    values = _flat_numbers("mean", args)
    return float(sum(values)) / len(values) if values else 0.0


def _median(*args: Any) -> float:
    values = sorted(float(v) for v in _flat_numbers("median", args))
    if not values:
        return 0.0
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _to_json_indent(v: Any) -> str:
    try:
        return to_json(v, indent="  ")
    except ValueError as exc:
        raise ExprEvalError(str(exc)) from None


def _from_json(s: Any) -> Any:
    try:
        return load_json(_str("fromJSON", s))
    except ValueError as exc:
        raise ExprEvalError(str(exc)) from None


def _from_base64(s: Any) -> str:
    try:
        return base64.b64decode(_str("fromBase64", s), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        raise ExprEvalError(f"illegal base64 data: {exc}") from None


def _first(v: Any) -> Any:
    items = _list("first", v)
    return items[0] if items else None


def _last(v: Any) -> Any:
    items = _list("last", v)
    return items[-1] if items else None


def _get(v: Any, key: Any) -> Any:
    if isinstance(v, list | str):
        if not is_num(key):
            return None
        i = int(key)
        i = i + len(v) if i < 0 else i
        if not 0 <= i < len(v):
            return None
        return v[i] if isinstance(v, list) else v.encode()[i]
    if isinstance(v, dict):
        return v.get(key) if isinstance(key, str) else None
    return None


def _take(v: Any, n: Any) -> list[Any]:
    return _list("take", v)[: max(0, _int_arg("take", n))]


def _keys(v: Any) -> list[Any]:
    if not isinstance(v, dict):
        raise ExprEvalError(f"cannot get keys from {go_type(v)}")
    return sorted(v)  # Go's map order is random; sorted is one of the orders Argo may give


def _values(v: Any) -> list[Any]:
    if not isinstance(v, dict):
        raise ExprEvalError(f"cannot get values from {go_type(v)}")
    return [v[k] for k in sorted(v)]


def _uniq(v: Any) -> list[Any]:
    out: list[Any] = []
    for x in _list("uniq", v):
        if not any(equal(x, y) for y in out):
            out.append(x)
    return out


def _concat(*args: Any) -> list[Any]:
    out: list[Any] = []
    for a in args:
        out.extend(_list("concat", a))
    return out


def _flatten(v: Any) -> list[Any]:
    out: list[Any] = []
    for x in _list("flatten", v):
        out.extend(_flatten(x) if isinstance(x, list) else [x])
    return out


def _sort(*args: Any) -> list[Any]:
    _args("sort", args, 1, 2)
    items = list(_list("sort", args[0]))
    order = _str("sort", args[1]) if len(args) == 2 else "asc"
    if order not in ("asc", "desc"):
        raise ExprEvalError(f"unknown order {order}, use asc or desc")
    if not (all(is_num(x) for x in items) or all(isinstance(x, str) for x in items)):
        raise ExprEvalError("sort: the array must hold only numbers or only strings")
    return sorted(items, reverse=order == "desc")


def _fixed(fn: Callable[..., Any], name: str, count: int) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        _args(name, args, count)
        return fn(*args)

    return call


#: expr-lang built-ins executed here (the predicates are in :data:`PREDICATES`, run by the evaluator).
BUILTINS: dict[str, Callable[..., Any]] = {
    "len": _fixed(_len, "len", 1),
    "type": _fixed(_type, "type", 1),
    "abs": _fixed(_abs, "abs", 1),
    "ceil": _fixed(lambda v: _round("ceil", v), "ceil", 1),
    "floor": _fixed(lambda v: _round("floor", v), "floor", 1),
    "round": _fixed(lambda v: _round("round", v), "round", 1),
    "int": _fixed(to_int, "int", 1),
    "float": _fixed(to_float, "float", 1),
    "string": _fixed(sprint, "string", 1),
    "trim": _trim,
    "trimPrefix": _trim_prefix,
    "trimSuffix": _trim_suffix,
    "upper": _fixed(lambda s: _str("upper", s).upper(), "upper", 1),
    "lower": _fixed(lambda s: _str("lower", s).lower(), "lower", 1),
    "split": _split,
    "replace": _replace,
    "repeat": _fixed(_repeat, "repeat", 2),
    "join": _join,
    "indexOf": _fixed(_index_of, "indexOf", 2),
    "lastIndexOf": _fixed(lambda s, sub: _index_of(s, sub, last=True), "lastIndexOf", 2),
    "hasPrefix": _fixed(lambda s, p: _str("hasPrefix", s).startswith(_str("hasPrefix", p)), "hasPrefix", 2),
    "hasSuffix": _fixed(lambda s, p: _str("hasSuffix", s).endswith(_str("hasSuffix", p)), "hasSuffix", 2),
    "max": lambda *a: _min_max("max", a),
    "min": lambda *a: _min_max("min", a),
    "mean": _mean,
    "median": _median,
    "toJSON": _fixed(_to_json_indent, "toJSON", 1),
    "fromJSON": _fixed(_from_json, "fromJSON", 1),
    "toBase64": _fixed(lambda s: base64.b64encode(_str("toBase64", s).encode()).decode(), "toBase64", 1),
    "fromBase64": _fixed(_from_base64, "fromBase64", 1),
    "first": _fixed(_first, "first", 1),
    "last": _fixed(_last, "last", 1),
    "get": _fixed(_get, "get", 2),
    "take": _fixed(_take, "take", 2),
    "keys": _fixed(_keys, "keys", 1),
    "values": _fixed(_values, "values", 1),
    "reverse": _fixed(lambda v: _list("reverse", v)[::-1], "reverse", 1),
    "uniq": _fixed(_uniq, "uniq", 1),
    "concat": _concat,
    "flatten": _fixed(_flatten, "flatten", 1),
    "sort": _sort,
}

#: expr-lang's predicate built-ins: (argument kinds) with "e" an expression, "p" a predicate, "?" optional.
PREDICATES: dict[str, tuple[str, ...]] = {
    "all": ("e", "p"),
    "none": ("e", "p"),
    "any": ("e", "p"),
    "one": ("e", "p"),
    "filter": ("e", "p"),
    "map": ("e", "p"),
    "count": ("e", "p?"),
    "sum": ("e", "p?"),
    "find": ("e", "p"),
    "findIndex": ("e", "p"),
    "findLast": ("e", "p"),
    "findLastIndex": ("e", "p"),
    "groupBy": ("e", "p"),
    "sortBy": ("e", "p", "e?"),
    "reduce": ("e", "p", "e?"),
}

#: expr-lang built-ins that parse as such but are not executed by the embedded engine.
UNSUPPORTED_BUILTINS = frozenset(
    {
        "now",
        "duration",
        "date",
        "timezone",
        "splitAfter",
        "toPairs",
        "fromPairs",
        "groupBy",
        "sortBy",
        "bitand",
        "bitor",
        "bitxor",
        "bitnand",
        "bitnot",
        "bitshl",
        "bitshr",
        "bitushr",
    }
)


# ------------------------------------------------------------------------------- Argo's own functions


def _json_path(text: Any, path: Any) -> Any:
    """``jsonpath(json, path)`` (``util/expr/env/env.go`` ``jsonPath``)."""
    try:
        return query(_str("jsonpath", path), load_json(_str("jsonpath", text)))
    except (JSONPathError, ValueError) as exc:
        raise ExprEvalError(f"jsonpath: {exc}") from None


def _to_json_compact(v: Any) -> str:
    try:
        return to_json(v)
    except ValueError as exc:
        raise ExprEvalError(str(exc)) from None


# ------------------------------------------------------------------------------------------------ sprig


def _cast_int(v: Any) -> int:
    """spf13/cast ``ToInt64`` (sprig's ``int``, ``int64``, arithmetic): 0 when it cannot convert."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return _wrap(int(v)) if math.isfinite(v) else 0
    if isinstance(v, str):
        text = re.sub(r"\.0*$", "", v) if re.fullmatch(r"[^.]*\.0+", v) else v  # cast's trimZeroDecimal
        try:
            return parse_int(text)
        except ValueError:
            return 0
    return 0


def _cast_float(v: Any) -> float:
    """spf13/cast ``ToFloat64`` (sprig's ``float64``): 0 when it cannot convert."""
    if isinstance(v, bool | int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return parse_float(v)
        except ValueError:
            return 0.0
    return 0.0


def _empty(v: Any) -> bool:
    """sprig's ``empty``: nil, false, 0, and empty strings, arrays and maps."""
    if v is None or v is False:
        return True
    if is_num(v):
        return v == 0
    if isinstance(v, str | list | dict):
        return len(v) == 0
    return False


def _strval(v: Any) -> str:
    return v if isinstance(v, str) else sprint(v)


def _title(s: Any) -> str:
    """Go's deprecated ``strings.Title``: upper-case the first letter after every separator."""
    out, prev_sep = [], True
    for ch in _str("title", s):
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _go_quote(s: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``)."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _b64dec(s: Any) -> str:
    try:
        return base64.b64decode(_str("b64dec", s), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return f"illegal base64 data at input byte {exc!s}"  # sprig returns the error text


def _int_div(a: Any, b: Any, mod: bool) -> int:
    x, y = _cast_int(a), _cast_int(b)
    if y == 0:
        raise ExprEvalError("runtime error: integer divide by zero")
    q = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)  # Go truncates toward zero
    return x - q * y if mod else q


def _substr(start: Any, end: Any, s: Any) -> str:
    data, a, b = _str("substr", s).encode(), _cast_int(start), _cast_int(end)
    if a < 0:
        return data[:b].decode("utf-8", "replace")
    if b < 0 or b > len(data):
        return data[a:].decode("utf-8", "replace")
    return data[a:b].decode("utf-8", "replace")


def _trunc(n: Any, s: Any) -> str:
    c, text = _cast_int(n), _str("trunc", s)
    if c < 0 and len(text) + c > 0:
        return text[len(text) + c :]
    if c >= 0 and len(text) > c:
        return text[:c]
    return text


def _from_json_sprig(s: Any) -> Any:
    try:
        return load_json(_str("fromJson", s))
    except ValueError:
        return None


def _to_json_sprig(v: Any) -> str:
    try:
        return to_json(v)
    except ValueError:
        return ""


def _sprig_list_strings(v: Any) -> list[str]:
    if isinstance(v, list):
        return [_strval(x) for x in v if x is not None]
    return [_strval(v)] if v is not None else []


#: sprig's functions (``sprig.GenericFuncMap()``) that the embedded engine executes.
SPRIG: dict[str, Callable[..., Any]] = {
    "trim": lambda s: _str("trim", s).strip(_GO_SPACE),
    "trimAll": lambda cut, s: _str("trimAll", s).strip(_str("trimAll", cut)),
    "trimPrefix": lambda p, s: _str("trimPrefix", s).removeprefix(_str("trimPrefix", p)),
    "trimSuffix": lambda p, s: _str("trimSuffix", s).removesuffix(_str("trimSuffix", p)),
    "upper": lambda s: _str("upper", s).upper(),
    "lower": lambda s: _str("lower", s).lower(),
    "title": _title,
    "replace": lambda old, new, s: _str("replace", s).replace(_str("replace", old), _str("replace", new)),
    "substr": _substr,
    "trunc": _trunc,
    "repeat": lambda n, s: _str("repeat", s) * max(0, _cast_int(n)),
    "contains": lambda sub, s: _str("contains", sub) in _str("contains", s),
    "hasPrefix": lambda p, s: _str("hasPrefix", s).startswith(_str("hasPrefix", p)),
    "hasSuffix": lambda p, s: _str("hasSuffix", s).endswith(_str("hasSuffix", p)),
    "quote": lambda *a: " ".join(_go_quote(_strval(x)) for x in a if x is not None),
    "squote": lambda *a: " ".join(f"'{sprint(x)}'" for x in a if x is not None),
    "cat": lambda *a: " ".join(sprint(x) for x in a if x is not None),
    "toString": _strval,
    "atoi": lambda s: _atoi_or_zero(_str("atoi", s)),
    "int": _cast_int,
    "int64": _cast_int,
    "float64": _cast_float,
    "add": lambda *a: _wrap(sum(_cast_int(x) for x in a)),
    "add1": lambda a: _wrap(_cast_int(a) + 1),
    "sub": lambda a, b: _wrap(_cast_int(a) - _cast_int(b)),
    "mul": lambda a, *v: _wrap(math.prod([_cast_int(a), *(_cast_int(x) for x in v)])),
    "div": lambda a, b: _int_div(a, b, mod=False),
    "mod": lambda a, b: _int_div(a, b, mod=True),
    "max": lambda a, *v: max([_cast_int(a), *(_cast_int(x) for x in v)]),
    "min": lambda a, *v: min([_cast_int(a), *(_cast_int(x) for x in v)]),
    "default": lambda d, *given: d if not given or _empty(given[0]) else given[0],
    "empty": _empty,
    "coalesce": lambda *a: next((x for x in a if not _empty(x)), None),
    "ternary": lambda vt, vf, cond: vt if need_bool(cond, "ternary") else vf,
    "b64enc": lambda s: base64.b64encode(_str("b64enc", s).encode()).decode(),
    "b64dec": _b64dec,
    "toJson": _to_json_sprig,
    "fromJson": _from_json_sprig,
    "list": lambda *a: list(a),
    "join": lambda sep, v: _str("join", sep).join(_sprig_list_strings(v)),
    "splitList": lambda sep, s: _go_split(_str("splitList", s), _str("splitList", sep), -1),
}


def _atoi_or_zero(s: str) -> int:
    try:
        return atoi(s)
    except ValueError:
        return 0


def _sprig_call(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except TypeError as exc:  # wrong number of arguments
            raise ExprEvalError(f"sprig.{name}: {exc}") from None

    call.__name__ = f"sprig.{name}"
    return call


#: What Argo adds to every expression's environment (``GetFuncMap``).
ENV_FUNCTIONS: dict[str, Any] = {
    "asInt": _fixed(to_int, "asInt", 1),
    "asFloat": _fixed(to_float, "asFloat", 1),
    "jsonpath": _fixed(_json_path, "jsonpath", 2),
    "toJson": _fixed(_to_json_compact, "toJson", 1),
    "sprig": {name: _sprig_call(name, fn) for name, fn in SPRIG.items()},
}
