"""Variables: what each ``{{tag}}`` may name where it is used (``validate.go`` ``resolveAllVariables``,
``addItemsToScope``); expression tags ``{{=...}}`` are not checked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ..problems import format_path, short
from .context import (
    HAS_RESULT,
    LEAF_POD_TYPES,
    UNKNOWN,
    Items,
    Lint,
    Node,
    Path,
    Scope,
    Template,
    as_dict,
    as_list,
    as_str,
    hint,
)

# validate.go: paramRegex (a value that is itself a {{variable}})
PARAM_REF = re.compile(r"{{[-a-zA-Z0-9]+(\.[-a-zA-Z0-9_]+)*}}")
# common.GlobalVarValidWorkflowVariablePrefix: only tags with these prefixes are checked by Argo
_CHECKED_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
# resolveAllVariables: resolved at run time, accepted by prefix
_RUNTIME_PREFIXES = ("outputs.", "workflow.creationTimestamp", "workflow.scheduledTime", "workflow.duration")
_RUNTIME_EXACT = ("tasks.name", "steps.name")
_TAG = re.compile(r"{{(.*?)}}", re.S)
_WORKFLOW_PARAM_ONLY = re.compile(r"\s*{{\s*workflow\.parameters\.([-a-zA-Z0-9_]+)\s*}}\s*")
_RETRY_VARIABLES = (
    "retries",
    "retries.lastExitCode",
    "retries.lastStatus",
    "retries.lastDuration",
    "retries.lastMessage",
)


def template_scope(lint: Lint, t: Template, kind: str | None) -> Scope:
    """The workflow's globals plus what the template itself declares."""
    exact = set(lint.globals)
    params = [as_str(p.get("name")) for p in t.input_params()]
    exact |= {f"inputs.parameters.{n}" for n in params}
    if params:
        exact.add("inputs.parameters")
    leaf = kind not in ("dag", "steps")
    for a in t.input_artifacts():
        exact.add(f"inputs.artifacts.{as_str(a.get('name'))}")
        if leaf:
            exact.add(f"inputs.artifacts.{as_str(a.get('name'))}.path")
    if kind in LEAF_POD_TYPES:
        exact.add("pod.name")
    if t.body.get("retryStrategy") is not None:
        exact |= set(_RETRY_VARIABLES)
    return Scope(
        exact=exact,
        where=f"template {t.name!r}",
        inputs_of=format_path((*t.path, "inputs", "parameters")),
        any_workflow_output=lint.any_workflow_output,
    )


def node_scope(
    base: Scope,
    prefix: str,
    nodes: dict[str, Node],
    *,
    visible: set[str] | None,
    items: tuple[Items, str] = (None, ""),
) -> Scope:
    """``base`` inside a DAG (``prefix="tasks"``) or steps template, seeing ``visible`` of ``nodes``."""
    return Scope(
        exact=base.exact,
        where=base.where,
        inputs_of=base.inputs_of,
        prefix=prefix,
        nodes=nodes,
        visible=visible,
        items=items[0],
        item_note=items[1],
        any_workflow_output=base.any_workflow_output,
    )


def item_scope(lint: Lint, holder: dict[str, Any], path: Path) -> tuple[Items, str]:
    """validate.go addItemsToScope, plus: a withParam fed by a literal workflow parameter is parsed."""
    items = holder.get("withItems")
    if isinstance(items, list) and items:
        return _item_tags(items), "withItems"
    if holder.get("withSequence") is not None:
        return {"item"}, "withSequence"
    param = holder.get("withParam")
    if not isinstance(param, str) or not param:
        return None, ""
    literal: str | None = param if "{{" not in param else None
    source = "withParam"
    m = _WORKFLOW_PARAM_ONLY.fullmatch(param)
    if m:
        for p in as_list(as_dict(lint.spec().get("arguments")).get("parameters")):
            if as_dict(p).get("name") == m.group(1) and isinstance(as_dict(p).get("value"), str):
                literal = p["value"]
                source = f"the value of workflow parameter {m.group(1)!r}"
    if literal is None:
        return "any", "withParam"
    try:
        value = json.loads(literal)
    except ValueError:
        value = None
    if not isinstance(value, list):
        lint.error((*path, "withParam"), f"withParam needs a JSON list; {source} is not one")
        return "any", "withParam"
    if not value:
        return "any", source
    return _item_tags(value), source


def refs(lint: Lint, value: Any, path: Path, scope: Scope) -> None:
    """Check every ``{{tag}}`` in the strings under ``value``."""
    if isinstance(value, str):
        if "{{" not in value:
            return
        for tag in _tags(value):
            if tag is None:
                lint.error(path, f"unterminated '{{{{' in {short(value)}")
                continue
            problem = resolve_tag(tag.strip(), scope)
            if problem:
                lint.error(path, problem)
    elif isinstance(value, dict):
        for k, v in value.items():
            refs(lint, v, (*path, k), scope)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            refs(lint, v, (*path, i), scope)


def resolve_tag(tag: str, scope: Scope) -> str | None:
    """Why ``{{tag}}`` cannot be resolved in ``scope``, or ``None``."""
    ref = f"{{{{{tag}}}}}"
    if tag == "item" or tag.startswith("item."):
        if scope.items is None:
            return (
                f"{ref} is only defined in a DAG task or step that fans out (withItems/withParam/withSequence); "
                + ("pass the value in as an input parameter" if not scope.prefix else "this one does not")
            )
        if scope.items == "any" or tag in scope.items:
            return None
        keys = ", ".join(sorted(scope.items))
        return f"{ref} does not match the items of {scope.item_note} (which give: {keys})"
    if not tag.startswith(_CHECKED_PREFIXES) or tag in scope.exact or tag in _RUNTIME_EXACT:
        return None
    if tag.startswith(_RUNTIME_PREFIXES):
        return None
    if (
        tag.startswith(("workflow.outputs.parameters.", "workflow.outputs.artifacts."))
        and scope.any_workflow_output
    ):
        return None
    if tag.startswith("inputs.parameters."):
        return f"{ref}: input parameter {tag.split('.', 2)[2]!r} is not declared in {scope.inputs_of}"
    if tag.startswith("inputs.artifacts."):
        return f"{ref}: input artifact {tag.split('.', 2)[2]!r} is not declared in {scope.where}'s inputs"
    if tag.startswith("workflow.parameters."):
        return (
            f"{ref}: workflow parameter {tag.split('.', 2)[2]!r} is not declared in spec.arguments.parameters"
        )
    if tag.startswith("workflow.outputs."):
        return f"{ref}: no template exports this globalName"
    if tag.startswith(("tasks.", "steps.")):
        return _resolve_node_tag(tag, scope)
    if tag == "pod.name":
        return f"{ref} is only defined in templates that run a pod"
    return f"{ref} cannot be resolved in {scope.where}"


def _resolve_node_tag(tag: str, scope: Scope) -> str | None:
    ref = f"{{{{{tag}}}}}"
    prefix, _, rest = tag.partition(".")
    name, _, attr = rest.partition(".")
    noun = "task" if prefix == "tasks" else "step"
    if prefix != scope.prefix:
        return (
            f"{ref}: {prefix}.* is only defined inside a {'DAG' if prefix == 'tasks' else 'steps'} template"
        )
    node = scope.nodes.get(name)
    if node is None:
        return f"{ref}: {noun} {name!r} does not exist in {scope.where}{hint(name, scope.nodes)}"
    if scope.visible is not None and name not in scope.visible:
        if prefix == "tasks":
            return f"{ref}: task {name!r} is not a dependency (direct or indirect) of this task; add it to depends"
        return f"{ref}: step {name!r} does not run in an earlier step group"
    t = node.template
    if t is None or t is UNKNOWN:
        return None
    if attr in ("id", "startedAt", "finishedAt", "hostNodeName", "status"):
        return None
    if attr == "ip":
        return None if node.daemon else f"{ref}: {noun} {name!r} is not a daemon"
    if attr in ("outputs.result", "exitCode"):
        return None if t.type in HAS_RESULT else f"{ref}: template {t.name!r} ({t.type}) has no result"
    if attr == "outputs.parameters":
        return (
            None if node.fans_out else f"{ref}: only a {noun} that fans out has aggregated outputs.parameters"
        )
    if attr.startswith("outputs.parameters."):
        out = attr.split(".", 2)[2]
        declared = t.output_params()
        if out in declared:
            return None
        return f"{ref}: template {t.name!r} of {noun} {name!r} declares no output parameter {out!r} (it declares: {', '.join(declared) or 'none'})"
    if attr.startswith("outputs.artifacts."):
        out = attr.split(".", 2)[2]
        if out in t.output_artifacts():
            return None
        return f"{ref}: template {t.name!r} of {noun} {name!r} declares no output artifact {out!r}"
    return f"{ref}: {noun}s have no attribute {attr!r}"


def _tags(text: str) -> Iterator[str | None]:
    """The simple ``{{tags}}`` in ``text`` (``None`` for an unterminated ``{{``), as fasttemplate finds them."""
    end = 0
    for m in _TAG.finditer(text):
        end = m.end()
        tag = m.group(1)
        if not tag.lstrip().startswith("="):
            yield tag
    if "{{" in text[end:]:
        yield None


def _item_tags(items: Sequence[Any]) -> set[str]:
    tags: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            tags |= {f"item.{k}" for k in item}
        elif isinstance(item, list):
            tags |= {f"item.[{i}]" for i in range(len(item))}
        else:
            tags.add("item")
    return tags


__all__ = ["PARAM_REF", "item_scope", "node_scope", "refs", "resolve_tag", "template_scope"]
