"""The contract YAML as a pydantic document model: strict, every problem at once, each with its path.

The document (``data_contracts/<name>.yaml``, format in ``data_contracts/README.md``) is snake_case in
YAML and in Python. Unknown fields are refused; numbers are not coerced (``version: "2"``,
``count: true`` and ``rows.min: 1.5`` are errors); ``null`` in an optional section means "none". Every
problem is reported at once, as the task spec does (:mod:`edgefed.steps.documents`)::

    heart.yaml: columns[3].min: expected a finite number, found 'low'; label.column: expected one of
    the contract's columns, found 'nope'

Values are kept exactly as written (an ``int`` bound stays an ``int``): they become Great Expectations
keyword arguments as they are, and the contract's SHA-256 is computed over them
(:mod:`~edgefed.steps.contracts.expansion`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from edgefed.steps import documents
from edgefed.steps.contracts.errors import ContractError
from edgefed.steps.documents import FieldErrors

__all__ = [
    "DTYPES",
    "ColumnDefaults",
    "ColumnEntry",
    "ContractDocument",
    "LabelSpec",
    "RawExpectation",
    "RowsSpec",
    "parse_document",
]

_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
_EXPECTATION = re.compile(r"^expect_[a-z0-9_]+$")

#: The pandas dtype names a column's ``type`` may take.
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool", "object")


# ------------------------------------------------------------------------ values, in the house words


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"expected a lowercase name (letters, digits, '-', '_'), found {value!r}")
    return value


def _positive_int(value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"expected a positive integer, found {value!r}")
    return value


def _non_negative_int(value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"expected a non-negative integer, found {value!r}")
    return value


def _finite(value: Any) -> float:
    if not _is_finite(value):
        raise ValueError(f"expected a finite number, found {value!r}")
    return value


def _fraction(value: Any) -> float:
    if _finite(value) < 0 or value > 1:
        raise ValueError(f"expected a number in [0.0, 1.0], found {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, found {type(value).__name__}")
    return value


def _dtype(value: Any) -> str:
    if value not in DTYPES:
        raise ValueError(f"expected one of {', '.join(DTYPES)}, found {value!r}")
    return value


def _column_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a column name, found {value!r}")
    return value


def _values(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list of values, found {value!r}")
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        raise ValueError("expected numbers or strings")
    return value


def _expectation_type(value: Any) -> str:
    if not isinstance(value, str) or not _EXPECTATION.match(value):
        raise ValueError(f"expected a GE expectation type (expect_...), found {value!r}")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping, found {type(value).__name__}")
    return dict(value)


Name = Annotated[str, PlainValidator(_name)]
PositiveInt = Annotated[int, PlainValidator(_positive_int)]
NonNegativeInt = Annotated[int, PlainValidator(_non_negative_int)]
#: A finite int or float, kept as written.
Finite = Annotated[float, PlainValidator(_finite)]
#: A finite number in [0, 1].
Fraction = Annotated[float, PlainValidator(_fraction)]
Text = Annotated[str, PlainValidator(_text)]
#: One of :data:`DTYPES`.
DType = Annotated[str, PlainValidator(_dtype)]
ColumnName = Annotated[str, PlainValidator(_column_name)]
#: A non-empty list of numbers or strings (an allowed set).
Values = Annotated[list[Any], PlainValidator(_values)]
ExpectationType = Annotated[str, PlainValidator(_expectation_type)]
#: A mapping (``null`` is an empty one).
Kwargs = Annotated[dict[str, Any], PlainValidator(_mapping)]


class ContractModel(BaseModel):
    """Base of every section: unknown fields refused, frozen once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------- sections


class RowsSpec(ContractModel):
    """``rows``: bounds on the row count."""

    min: NonNegativeInt | None = None
    max: NonNegativeInt | None = None


class ColumnDefaults(ContractModel):
    """``column_defaults``: what every column entry has unless it says otherwise (``null``: no rule)."""

    type: DType | None = None
    max_null_rate: Fraction | None = None


class ColumnEntry(ContractModel):
    """One entry of ``columns``: a column, or a column group when ``count`` is set.

    A group's ``name`` is a :meth:`str.format` pattern in ``i`` (``px_{i:03d}``), expanded for ``i`` in
    ``start .. start + count - 1``.
    """

    name: ColumnName
    count: PositiveInt | None = None
    start: NonNegativeInt | None = None
    type: DType | None = None
    min: Finite | None = None
    max: Finite | None = None
    values: Values | None = None
    max_null_rate: Fraction | None = None

    @property
    def group(self) -> bool:
        return self.count is not None

    @property
    def names(self) -> list[str]:
        """The entry's column names (a group's, expanded)."""
        if self.count is None:
            return [self.name]
        start = self.start or 0
        return [self.name.format(i=i) for i in range(start, start + self.count)]

    def rule(self, key: str, defaults: ColumnDefaults) -> Any:
        """The entry's ``type`` or ``max_null_rate``: its own when written (even ``null``), else the default."""
        return getattr(self if key in self.model_fields_set else defaults, key)

    @model_validator(mode="after")
    def _consistent(self) -> ColumnEntry:
        problems: list[tuple[documents.Path, str]] = []
        if self.count is None:
            if self.start is not None:
                problems.append((("start",), "only allowed with count (a column group)"))
        elif "{i" not in self.name:
            pattern = (
                f"a column group's name is a pattern with {{i}}, e.g. 'px_{{i:03d}}'; found {self.name!r}"
            )
            problems.append((("name",), pattern))
        else:
            try:
                self.names  # noqa: B018 (formats every name)
            except (ValueError, KeyError, IndexError) as err:
                problems.append((("name",), f"pattern {self.name!r} cannot be formatted with i: {err}"))
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append(((), f"min {self.min} is above max {self.max}"))
        if self.group and self.values is not None:
            problems.append((("values",), "not supported for a column group; use min/max"))
        if problems:
            raise FieldErrors(problems)
        return self


class LabelSpec(ContractModel):
    """``label``: label sanity (the allowed labels, at least so many classes, the largest class's share)."""

    column: str = "label"
    values: Values | None = None
    min_distinct: PositiveInt | None = None
    max_share: Fraction | None = None

    @field_validator("column", mode="plain")
    @classmethod
    def _column(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected one of the contract's columns, found {value!r}")
        return value


class RawExpectation(ContractModel):
    """One entry of ``expectations``: a Great Expectations expectation, verbatim."""

    expectation: ExpectationType
    kwargs: Kwargs = {}
    meta: Kwargs = {}


# ---------------------------------------------------------------------------------------- document


class ContractDocument(ContractModel):
    """A whole contract document."""

    contract: Name
    dataset: Name
    version: PositiveInt = 1
    description: Text = ""
    rows: RowsSpec = RowsSpec()
    column_order: Literal["exact", "set"] = "exact"
    column_defaults: ColumnDefaults = ColumnDefaults()
    columns: list[ColumnEntry]
    label: LabelSpec | None = None
    expectations: list[RawExpectation] = []

    @property
    def column_names(self) -> list[str]:
        """Every column the contract names, in order (groups expanded)."""
        return [n for entry in self.columns for n in entry.names]

    @field_validator("rows", "column_defaults", "label", mode="before")
    @classmethod
    def _null_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("columns", mode="before")
    @classmethod
    def _column_list(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError("expected a non-empty list of column entries")
        return value

    @field_validator("expectations", mode="before")
    @classmethod
    def _expectation_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError("expected a list of {expectation, kwargs} entries")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _across_sections(cls, data: Any, handler: ModelWrapValidatorHandler[ContractDocument]) -> Any:
        """Duplicate column names and the label column, checked even when other fields are wrong.

        With errors elsewhere, pydantic runs no ``after`` validator; these rules are then checked
        against the sections that are valid on their own, so that every problem is still reported.
        """
        try:
            document = handler(data)
        except ValidationError as err:
            names, label = _valid_parts(data)
            problems = _cross_problems(names, label)
            if not problems:
                raise
            line = {"type": "value_error", "loc": (), "input": data, "ctx": {"error": FieldErrors(problems)}}
            raise ValidationError.from_exception_data(err.title, [*err.errors(), line]) from None
        problems = _cross_problems(document.column_names, document.label)
        if problems:
            raise FieldErrors(problems)
        return document


def _cross_problems(names: list[str], label: LabelSpec | None) -> list[tuple[documents.Path, str]]:
    problems: list[tuple[documents.Path, str]] = []
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append((("columns",), f"duplicate column names {duplicates[:10]}"))
    if label is not None and names and label.column not in names:
        message = f"expected one of the contract's columns, found {label.column!r}"
        problems.append((("label", "column"), message))
    return problems


def _valid_parts(data: Any) -> tuple[list[str], LabelSpec | None]:
    """The column names of the entries and the label section that are valid on their own."""
    if not isinstance(data, Mapping):
        return [], None
    names: list[str] = []
    entries = data.get("columns")
    for entry in entries if isinstance(entries, list) else []:
        try:
            names += ColumnEntry.model_validate(entry).names
        except ValidationError:  # a single column whose other fields are wrong still has its name
            if isinstance(entry, Mapping) and "count" not in entry and isinstance(entry.get("name"), str):
                names.append(entry["name"])
    if "label" not in data:
        return names, None
    try:
        return names, LabelSpec.model_validate(data["label"] or {})
    except ValidationError:
        return names, None


#: The model of each section, by its field name (for the list of allowed fields).
_SECTIONS: dict[str, type[ContractModel]] = {
    "rows": RowsSpec,
    "column_defaults": ColumnDefaults,
    "columns": ColumnEntry,
    "label": LabelSpec,
    "expectations": RawExpectation,
}


def _wording(error: Mapping[str, Any]) -> tuple[documents.Path, str] | None:
    """The contract's wording of pydantic's own errors (unknown field, not a mapping, not a choice)."""
    kind, loc, found = error["type"], error["loc"], error.get("input")
    if kind == "extra_forbidden":
        sections = [p for p in loc[:-1] if isinstance(p, str)]
        model = _SECTIONS[sections[-1]] if sections else ContractDocument
        return (), f"unknown field; allowed: {', '.join(sorted(model.model_fields))}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return (), f"expected a mapping, found {type(found).__name__}"
    if kind == "literal_error":
        return (), f"expected {error['ctx']['expected']}, found {found!r}"
    return None


def parse_document(document: Any, *, source: str) -> ContractDocument:
    """Validate a contract document; :class:`ContractError` lists every problem, ``source`` first."""
    if isinstance(document, Mapping):
        document = dict(document)
    try:
        return ContractDocument.model_validate(document)
    except ValidationError as err:
        raise ContractError(f"{source}: " + "; ".join(documents.problems(err, message=_wording))) from None
