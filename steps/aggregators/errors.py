"""The aggregators' one exception base and its two refinements."""

from __future__ import annotations


class AggregatorError(ValueError):
    """A part's parameters, or a round's inputs, break one of its rules (the message says which).

    ``param``: the parameter (snake_case field) the rule is about, when there is one, so the spec can
    report the error at that field's path.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UpdateRejectedError(AggregatorError):
    """One update cannot be aggregated (wrong arrays, non-finite values); the round can go on without it."""


class ShapeMismatchError(UpdateRejectedError):
    """An update whose arrays do not match the model's (their number or a shape)."""


__all__ = ["AggregatorError", "ShapeMismatchError", "UpdateRejectedError"]
