"""The base of every part of the FederatedTask document: camelCase in YAML, snake_case in Python,
unknown fields refused (as a strict API server does), frozen once parsed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["SpecModel"]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)
