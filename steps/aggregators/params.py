"""Parameters declared once: type, range, default and description in one annotated dataclass field.

A configurable part of the aggregation (an aggregator, a strategy) is a keyword-only dataclass; a
field whose annotation carries a pydantic ``Field`` is one of its *parameters*::

    beta: Annotated[float, Field(ge=0, lt=0.5, description="fraction trimmed at each end")] = 0.1

That one line is the whole declaration. :func:`problems` checks an instance against it (the steps'
check; messages such as ``beta=0.5 breaks 0 <= beta < 0.5``); :func:`declared` lists the parameters,
and the spec's ``aggregation`` section is derived from that list (``edgefed.workflows.spec.aggregation``),
so pydantic enforces the same ranges with the same defaults. A field without a ``Field`` is internal:
set by the code that builds the part, never by a spec. :data:`NESTED` marks a parameter holding a
nested section (a strategy's ``aggregator``), which its owner validates by building it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import Field
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from edgefed.steps.aggregators.errors import AggregatorError

#: The usual ranges. ``Annotated[Positive, Field(description=...)]`` adds a description.
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
UnitInterval = Annotated[float, Field(ge=0, lt=1)]


class _Nested:
    """Marks a parameter whose value is a nested section (a mapping its owner turns into a part)."""

    def __repr__(self) -> str:
        return "NESTED"


NESTED = _Nested()


@dataclasses.dataclass(frozen=True)
class Param:
    """One declared parameter: its field name, full annotation (``Field`` metadata included) and default."""

    name: str
    annotation: Any
    default: Any
    nested: bool
    #: ``ge``/``gt``/``le``/``lt`` bounds, as declared
    bounds: dict[str, float]
    description: str | None

    @property
    def camel(self) -> str:
        return to_camel(self.name)


@functools.cache
def declared(cls: type) -> tuple[Param, ...]:
    """The parameters of dataclass ``cls`` in declaration order (base classes' first)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if not f.init or get_origin(hint) is not Annotated:
            continue
        meta = hint.__metadata__
        infos = [m for m in meta if isinstance(m, FieldInfo)]
        if not infos:
            continue
        bounds = {
            key: getattr(m, key)
            for info in infos
            for m in info.metadata
            for key in ("ge", "gt", "le", "lt")
            if isinstance(m, getattr(annotated_types, key.capitalize()))
        }
        description = next((i.description for i in reversed(infos) if i.description), None)
        out.append(Param(f.name, hint, f.default, any(m is NESTED for m in meta), bounds, description))
    return tuple(out)


def undeclared(cls: type) -> list[str]:
    """``cls``'s constructor fields that are not declared parameters (a strategy must have none)."""
    names = {p.name for p in declared(cls)}
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in names]


def problems(obj: Any) -> Iterator[tuple[str, str]]:
    """``(parameter, message)`` for each declared parameter of ``obj`` whose value breaks its declaration."""
    for param in declared(type(obj)):
        if not param.nested:
            message = _problem(param, getattr(obj, param.name))
            if message is not None:
                yield param.name, message


def values_of(obj: Any, cls: type) -> dict[str, Any]:
    """``obj``'s values of the fields dataclass ``cls`` declares (a strategy's values of the parameters
    it shares with the aggregator it builds)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls) if f.init}


def kwargs_from(cls: type, config: Mapping[str, Any], *, where: str, skip: tuple[str, ...] = ()) -> dict:
    """Constructor arguments of ``cls`` from a spec section (camelCase or snake_case keys); a key that
    names no parameter raises :class:`AggregatorError` listing the parameters."""
    params = declared(cls)
    aliases = {p.camel: p.name for p in params} | {p.name: p.name for p in params}
    kwargs = {}
    for key, value in config.items():
        if key in skip:
            continue
        if key not in aliases:
            known = ", ".join(p.camel for p in params) or "none"
            raise AggregatorError(f"{where}: unknown parameter {key!r} (parameters: {known})")
        kwargs[aliases[key]] = value
    return kwargs


# -- the check ------------------------------------------------------------------------------------


def _problem(param: Param, value: Any) -> str | None:
    kinds = _kinds(get_args(param.annotation)[0])
    name = param.name
    if value is None:
        return None if type(None) in kinds else f"{name}=None: a value is required"
    literals = [k for k in kinds if get_origin(k) is Literal]
    if literals:
        options = [o for lit in literals for o in get_args(lit)]
        if value in options:
            return None
        spelled = [repr(o) for o in options]
        return f"{name}={value!r}: expected {', '.join(spelled[:-1])} or {spelled[-1]}"
    if bool in kinds:
        return None if isinstance(value, bool) else f"{name}={value!r}: expected true or false"
    if int in kinds and float not in kinds:
        return _integer_problem(param, value)
    if float in kinds:
        return _range_problem(param, value)
    return None


def _kinds(annotation: Any) -> list[Any]:
    """The alternatives of ``annotation`` (``float | None`` -> ``[float, NoneType]``), Annotated stripped."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        return [k for a in get_args(annotation) for k in _kinds(a)]
    return [annotation]


def _integer_problem(param: Param, value: Any) -> str | None:
    low = param.bounds.get("ge", param.bounds["gt"] + 1 if "gt" in param.bounds else None)
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value >= low
    if ok or ("le" in param.bounds or "lt" in param.bounds):
        return None if ok else _range_problem(param, value)
    what = f"an integer: {param.description}" if param.description else "an integer"
    rule = f"{param.name} >= {low} " if low is not None else ""
    return f"{param.name}={value!r} breaks {rule}({what})"


def _range_problem(param: Param, value: Any) -> str | None:
    """``low <(=) value <(=) high`` (bounds optional); a non-finite value breaks every range."""
    b = param.bounds
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number:
        return f"{param.name}={value!r}: expected a number"
    ok = math.isfinite(value)
    low, low_open = (b["gt"], True) if "gt" in b else (b.get("ge"), False)
    high, high_open = (b["lt"], True) if "lt" in b else (b.get("le"), False)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return None
    left = "" if low is None else f"{low} {'<' if low_open else '<='} "
    right = "" if high is None else f" {'<' if high_open else '<='} {high}"
    return f"{param.name}={value} breaks {left}{param.name}{right}"


__all__ = [
    "NESTED",
    "NonNegative",
    "Param",
    "Positive",
    "UnitInterval",
    "declared",
    "kwargs_from",
    "problems",
    "undeclared",
    "values_of",
]
