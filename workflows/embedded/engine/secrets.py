"""Secret resolution for ``env[].valueFrom.secretKeyRef``.

The engine is given a :data:`SecretResolver`: any callable ``(name, key) -> str | None`` (``None`` means
"no such secret/key"). :class:`StaticSecretResolver` serves values from a mapping, and
:func:`load_secret_manifests` reads Kubernetes ``v1 Secret`` manifests (multi-document YAML, ``stringData``
and base64 ``data``) as the CLI's ``--secrets FILE`` does. Values never appear in ``repr``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from .errors import WorkflowInvalidError

__all__ = ["SecretResolver", "StaticSecretResolver", "load_secret_manifests"]

SecretResolver = Callable[[str, str], "str | None"]


class StaticSecretResolver:
    """Resolve secrets from ``{secret_name: {key: value}}``."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        self._secrets = {name: dict(keys) for name, keys in secrets.items()}

    def __call__(self, name: str, key: str) -> str | None:
        return self._secrets.get(name, {}).get(key)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._secrets))
        return f"StaticSecretResolver(<values hidden> for secrets: {names})"


def load_secret_manifests(path: str | Path) -> StaticSecretResolver:
    """Read ``kind: Secret`` documents from a (multi-document) YAML file into a resolver."""
    secrets: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as fh:
        docs = list(yaml.safe_load_all(fh))
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict) or doc.get("kind") != "Secret":
            raise WorkflowInvalidError(f"{path}: document {i} is not a v1 Secret")
        name = (doc.get("metadata") or {}).get("name")
        if not name:
            raise WorkflowInvalidError(f"{path}: document {i} has no metadata.name")
        values = secrets.setdefault(str(name), {})
        for key, raw in (doc.get("data") or {}).items():
            try:
                values[str(key)] = base64.b64decode(str(raw), validate=True).decode("utf-8")
            except ValueError as exc:
                raise WorkflowInvalidError(f"{path}: secret '{name}' data.{key} is not valid base64") from exc
        for key, value in (doc.get("stringData") or {}).items():
            values[str(key)] = str(value)
    return StaticSecretResolver(secrets)
