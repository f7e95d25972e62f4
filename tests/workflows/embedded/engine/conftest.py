"""Fixtures for the embedded-engine tests: run the workflows in ``workflows/`` for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import Engine, EngineOptions, WorkflowResult
from tests.workflows.embedded.engine.helpers import load


@pytest.fixture
def run_workflow(tmp_path: Path) -> Callable[..., WorkflowResult]:
    """``run_workflow(name_or_doc, parameters=None, **engine_options)`` -> WorkflowResult."""

    def run(
        doc: str | dict[str, Any], parameters: dict[str, Any] | None = None, **opts: Any
    ) -> WorkflowResult:
        document = load(doc) if isinstance(doc, str) else doc
        opts.setdefault("run_dir", tmp_path / "runs")
        return Engine(EngineOptions(**opts)).run(document, parameters=parameters)

    return run
