"""Argo v4.1 template fields that Hera 7's models (generated from Argo 4.0.5) do not have yet.

* ``pendingTimeout`` (v4.1): how long a pod may stay Pending (unscheduled, e.g. its edge node is down)
  before the controller fails it. A round uses it so a lost edge sits the round out in minutes
  rather than holding it for the whole ``activeDeadlineSeconds``.

Hera builds a template through ``_build_template``; :class:`Container` returns a subclass of its
``Template`` model carrying the field, and :func:`dump` serializes templates as what they are
(``serialize_as_any``), so the field reaches the document. Delete this module once Hera's models have it.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import Container as HeraContainer
from hera.workflows import models as m
from pydantic import Field, PrivateAttr

__all__ = ["Container", "dump"]


class _Template(m.Template):
    pending_timeout: str | None = Field(default=None, alias="pendingTimeout")


class Container(HeraContainer):
    """Hera's Container with Argo v4.1's ``pendingTimeout`` (``Container(...).pending(seconds)``)."""

    _pending_timeout: str | None = PrivateAttr(default=None)

    def pending(self, seconds: int | None) -> Container:
        self._pending_timeout = None if seconds is None else f"{seconds}s"
        return self

    def _build_template(self) -> m.Template:
        template = super()._build_template()
        if self._pending_timeout is None:
            return template
        return _Template(**dict(template), pendingTimeout=self._pending_timeout)


def dump(obj: Any) -> dict[str, Any]:
    """``obj.to_dict()``, keeping the fields of this module's templates."""
    return obj.build().model_dump(exclude_none=True, by_alias=True, serialize_as_any=True)
