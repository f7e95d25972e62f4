"""What the lint rules share while one document is checked: templates, nodes, scopes, the problems found."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..argo import TEMPLATE_TYPES, has
from ..problems import Problem, format_path

Path = tuple[str | int, ...]
#: The {{item...}} tags a place may use: a set, "any" (withParam of unknown shape), None (no fan-out).
Items = set[str] | Literal["any"] | None

#: Template types that run a pod, and those whose node has ``outputs.result`` / ``exitCode``.
LEAF_POD_TYPES = ("container", "containerSet", "script", "resource", "data")
HAS_RESULT = ("container", "containerSet", "script", "data", "http", "plugin")


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else ``{}`` (the schema layers report the wrong type)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else ``[]``."""
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def hint(name: str, names: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``names``, or nothing."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class Template:
    """A template as a task or step sees it: where it is defined and what it declares."""

    name: str
    body: dict[str, Any]
    path: Path
    origin: str = "spec.templates"

    @property
    def type(self) -> str | None:
        for t in TEMPLATE_TYPES:
            if has(self.body, t):
                return t
        return None

    def _declared(self, section: str, kind: str) -> list[dict[str, Any]]:
        return [x for x in as_list(as_dict(self.body.get(section)).get(kind)) if isinstance(x, dict)]

    def input_params(self) -> list[dict[str, Any]]:
        return self._declared("inputs", "parameters")

    def input_artifacts(self) -> list[dict[str, Any]]:
        return self._declared("inputs", "artifacts")

    def output_params(self) -> list[str]:
        return [as_str(p.get("name")) for p in self._declared("outputs", "parameters")]

    def output_artifacts(self) -> list[str]:
        return [as_str(a.get("name")) for a in self._declared("outputs", "artifacts")]


#: A template reference that cannot be checked (dynamic, or templateRef without templates given).
UNKNOWN = Template("", {}, ())


@dataclass
class Node:
    """A DAG task or step that others may reference as ``tasks.NAME`` / ``steps.NAME``."""

    name: str
    template: Template | None  # None: the reference itself is broken (already reported)
    fans_out: bool
    daemon: bool = False


@dataclass
class Scope:
    """What ``{{...}}`` may name at one place (validate.go ``resolveAllVariables``)."""

    exact: set[str]
    where: str  # for messages: "template 'train'"
    inputs_of: str  # path of the inputs declaring inputs.parameters
    prefix: str = ""  # "tasks" or "steps" when inside a DAG / steps template
    nodes: dict[str, Node] = field(default_factory=dict)  # all tasks/steps of the template
    visible: set[str] | None = None  # nodes this place may reference (None: all)
    items: Items = None  # None: not fanning out
    item_note: str = ""
    any_workflow_output: bool = False


class Lint:
    """One document being linted: what it is, the WorkflowTemplates it may reference, what was found."""

    def __init__(self, doc: Mapping[str, Any], templates: Iterable[Mapping[str, Any]] | None) -> None:
        self.doc = doc
        self.kind = as_str(doc.get("kind"))
        self.problems: list[Problem] = []
        #: (kind, name) -> spec of the given WorkflowTemplates; None: none given (refs are out of scope).
        self.index: dict[tuple[str, str], dict[str, Any]] | None = None
        if templates is not None:
            self.index = {}
            for t in templates:
                if isinstance(t, Mapping) and t.get("kind") in (
                    "WorkflowTemplate",
                    "ClusterWorkflowTemplate",
                ):
                    self.index[(t["kind"], as_str(as_dict(t.get("metadata")).get("name")))] = as_dict(
                        t.get("spec")
                    )
        self.ref_warned: set[str] = set()
        #: Workflow parameters with a literal value, substituted when sizing a container's argv.
        self.literal_params: dict[str, str] = {}
        #: This document's templates by name.
        self.templates: dict[str, Template] = {}
        #: The workflow-level variables every template may use.
        self.globals: set[str] = set()
        #: Some template exports an output whose globalName is itself a variable.
        self.any_workflow_output = False
        #: Whether templateDefaults gives container / script an image.
        self.default_images: dict[str, bool] = {}

    def error(self, path: Path, message: str) -> None:
        self.problems.append(Problem(format_path(path), message))

    def warn(self, path: Path, message: str) -> None:
        self.problems.append(Problem(format_path(path), message, severity="warning"))

    def names_hint(self, name: str) -> str:
        return hint(name, self.templates)

    def spec(self) -> dict[str, Any]:
        """The WorkflowSpec (a CronWorkflow's ``workflowSpec``)."""
        spec = as_dict(self.doc.get("spec"))
        return as_dict(spec.get("workflowSpec")) if self.kind == "CronWorkflow" else spec


__all__ = [
    "HAS_RESULT",
    "LEAF_POD_TYPES",
    "UNKNOWN",
    "Items",
    "Lint",
    "Node",
    "Path",
    "Scope",
    "Template",
    "as_dict",
    "as_list",
    "as_str",
    "hint",
]
