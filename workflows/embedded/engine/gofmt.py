"""Go's renderings of values, where Argo's output depends on them.

Argo is written in Go, so what it prints comes from Go's standard library; these helpers reproduce the
parts the engine needs, byte for byte:

* :func:`sprint` - ``fmt.Sprint``/``%v`` (expr-lang's ``string()``, sprig's ``toString``): ``1e+06``,
  ``[a b]``, ``map[k:v]``, ``<nil>``;
* :func:`to_json` - ``encoding/json``'s ``Marshal`` (Argo's ``toJson``, an expression tag's non-string
  result) and ``MarshalIndent`` (expr-lang's ``toJSON``): keys sorted, ``<``, ``>`` and ``&`` escaped as
  ``\\u003c``..., floats as Go writes them (``1e+21``, ``1e-7``);
* :func:`sprintf_int` - ``fmt.Sprintf(format, i)`` for one integer (``withSequence.format``, argo-workflows
  ``workflow/controller/operator.go`` ``expandSequence``), with Go's ``%!verb(int=5)`` and ``%!(EXTRA ...)``
  for formats that do not fit;
* :func:`parse_int`, :func:`atoi`, :func:`parse_float` - ``strconv.ParseInt(s, 0, 64)``, ``strconv.Atoi``
  and ``strconv.ParseFloat``, which accept less than Python's ``int()``/``float()`` (no spaces, no ``_``
  without a base prefix) and more (``0x1f``, ``010`` as octal, ``Inf``).

Values are Python's JSON types standing for Go's: ``int`` (Go ``int``), ``float`` (``float64``), ``str``,
``bool``, ``None`` (``nil``), ``list`` (``[]any``) and ``dict`` (``map[string]any``).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

__all__ = ["atoi", "format_float", "go_type", "parse_float", "parse_int", "sprint", "sprintf_int", "to_json"]

_INT64 = 1 << 63


def go_type(v: Any) -> str:
    """The Go type name of a value, as Go's ``%T`` prints it in error messages."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if callable(v):
        return "func"
    return type(v).__name__


def _digits(f: float) -> tuple[str, int]:
    """The shortest decimal digits of ``abs(f) > 0`` and where the point goes: ``0.<digits> x 10^dp``."""
    _sign, digits, exponent = Decimal(repr(abs(f))).normalize().as_tuple()
    text = "".join(map(str, digits))
    return text, len(text) + int(exponent)


def format_float(f: float, fmt: str) -> str:
    """``strconv.FormatFloat(f, fmt, -1, 64)`` for ``fmt`` in ``e``, ``f``, ``g`` (shortest digits)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + ("0e+00" if fmt == "e" else "0")
    digits, dp = _digits(f)
    if fmt == "g":  # strconv: %e below 1e-4 or from 1e6 on when the digits are the shortest (eprec = 6)
        fmt = "e" if dp - 1 < -4 or dp - 1 >= 6 else "f"
    if fmt == "e":
        exp = dp - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _json_float(f: float) -> str:
    """``encoding/json``: ``%f`` digits, ``%e`` below 1e-6 and from 1e21 on, ``e-07`` written ``e-7``."""
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {format_float(f, 'g')}")
    if f != 0 and (abs(f) < 1e-6 or abs(f) >= 1e21):
        return re.sub(r"e([-+])0(\d)$", r"e\1\2", format_float(f, "e"))
    return format_float(f, "f")


_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_RE = re.compile("[<>&\u2028\u2029]")


def _json_str(s: str) -> str:
    return _HTML_RE.sub(lambda m: _HTML[m.group()], json.dumps(s, ensure_ascii=False))


def to_json(v: Any, *, indent: str | None = None, _level: int = 0) -> str:
    """Go's ``json.Marshal(v)`` (``json.MarshalIndent(v, "", indent)`` with ``indent``)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, list | dict):
        if not v:
            return "[]" if isinstance(v, list) else "{}"
        if isinstance(v, list):
            parts = [to_json(x, indent=indent, _level=_level + 1) for x in v]
            open_, close = "[", "]"
        else:
            parts = [
                f"{_json_str(str(k))}:{' ' if indent is not None else ''}"
                + to_json(v[k], indent=indent, _level=_level + 1)
                for k in sorted(v)
            ]
            open_, close = "{", "}"
        if indent is None:
            return open_ + ",".join(parts) + close
        inner = "\n" + indent * (_level + 1)
        return open_ + inner + ("," + inner).join(parts) + "\n" + indent * _level + close
    raise ValueError(f"json: unsupported type: {go_type(v)}")


def sprint(v: Any) -> str:
    """``fmt.Sprint(v)``, i.e. ``%v``."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format_float(v, "g")
    if isinstance(v, list):
        return "[" + " ".join(sprint(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{sprint(v[k])}" for k in sorted(v)) + "]"
    return str(v)


# ------------------------------------------------------------------------------------- fmt.Sprintf(f, i)

_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.)?", re.DOTALL)
_INT_VERBS = {"d": 10, "v": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}


def _int_verb(i: int, flags: str, width: int | None, prec: int | None, verb: str) -> str:
    if verb in _INT_VERBS:
        digits = format(abs(i), {2: "b", 8: "o", 10: "d", 16: "x"}[_INT_VERBS[verb]])
        if verb == "X":
            digits = digits.upper()
        if prec is not None:
            digits = digits.zfill(prec) if prec or i else ""
        prefix = ""
        if ("#" in flags and verb in "box") or verb == "O":
            prefix = {"b": "0b", "o": "0", "x": "0x", "O": "0o"}[verb]
        if "#" in flags and verb == "X":
            prefix = "0X"
        sign = "-" if i < 0 else "+" if "+" in flags else " " if " " in flags else ""
        body = prefix + digits
        if width is not None and "0" in flags and "-" not in flags and prec is None:
            body = body.zfill(width - len(sign))
        text = sign + body
    elif verb == "c":
        text = chr(i) if 0 <= i <= 0x10FFFF else "\ufffd"
    elif verb == "q":
        text = "'" + (chr(i) if 0 <= i <= 0x10FFFF else "\ufffd") + "'"
    elif verb == "U":
        text = f"U+{i:04X}"
    else:
        return f"%!{verb}(int={i})"
    if width is not None and len(text) < width:
        text = text.ljust(width) if "-" in flags else text.rjust(width)
    return text


def sprintf_int(fmt: str, i: int) -> str:
    """Go's ``fmt.Sprintf(fmt, i)`` for one ``int``: verbs ``d v b o O x X c q U``, flags ``-+# 0``, width,
    precision; ``%%``; a verb that does not take an int gives ``%!s(int=5)``, a second verb
    ``%!d(MISSING)``, no verb at all ``...%!(EXTRA int=5)``, as Go does."""
    out: list[str] = []
    used = False
    pos = 0
    while (at := fmt.find("%", pos)) != -1:
        out.append(fmt[pos:at])
        m = _VERB.match(fmt, at)
        assert m is not None  # the pattern matches any '%', with every group optional
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        pos = m.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        if used:
            out.append(f"%!{verb}(MISSING)")
            continue
        used = True
        out.append(
            _int_verb(
                i, flags, int(width) if width else None, (int(prec or 0) if prec is not None else None), verb
            )
        )
    out.append(fmt[pos:])
    text = "".join(out)
    return text if used else f"{text}%!(EXTRA int={i})"


# ------------------------------------------------------------------------------------------------ strconv

_ATOI = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(
    r"[+-]?(?:(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?|0[xX][\da-fA-F_.]+[pP][+-]?\d+|inf(?:inity)?|nan)",
    re.IGNORECASE,
)


def atoi(s: str) -> int:
    """``strconv.Atoi``: decimal digits with an optional sign, nothing else; ValueError otherwise."""
    if not _ATOI.fullmatch(s):
        raise ValueError(f'strconv.Atoi: parsing "{s}": invalid syntax')
    value = int(s)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f'strconv.Atoi: parsing "{s}": value out of range')
    return value


def parse_int(s: str) -> int:
    """``strconv.ParseInt(s, 0, 64)``: a sign, then ``0x``/``0o``/``0b``, a leading ``0`` (octal) or decimal."""
    m = re.fullmatch(r"([+-]?)(0[xX][\da-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][\d_]*)", s)
    if not m or "__" in s or s.endswith("_"):
        raise ValueError(f'strconv.ParseInt: parsing "{s}": invalid syntax')
    body = m.group(2)
    if "_" in body and not re.match(r"0[xXoObB]?", body):
        raise ValueError(f'strconv.ParseInt: parsing "{s}": invalid syntax')
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
        body = "0o" + body[1:]
    value = int(m.group(1) + body, 0)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f'strconv.ParseInt: parsing "{s}": value out of range')
    return value


def parse_float(s: str) -> float:
    """``strconv.ParseFloat(s, 64)``; ValueError for anything Go would not parse."""
    if not _FLOAT.fullmatch(s) or s.lower().lstrip("+-") in ("infinit", "infini"):
        raise ValueError(f'strconv.ParseFloat: parsing "{s}": invalid syntax')
    text = s.replace("_", "")
    if "x" in text.lower() and "p" in text.lower():
        return float.fromhex(text)
    value = float(text)
    if math.isinf(value) and "inf" not in text.lower():
        raise ValueError(f'strconv.ParseFloat: parsing "{s}": value out of range')
    return value
