"""``submit_task``: a FederatedTask as one task Workflow on a cluster, through the Argo server (the API
behind ``edgefed submit``).

1. The task's two WorkflowTemplates are created or updated: its round (``<task>-round``, which each
   round's child Workflow references) and the task (``<task>-task``).
2. A task Workflow of the task that is still Pending or Running is watched instead of creating
   another. Else one is created from the task template, ``-p`` overrides set; it resumes on its own
   after the last round committed in the model registry (its ``plan`` step reads it), whatever
   Argo still keeps of earlier runs.
3. The task Workflow is watched to its end (:func:`~.watch.watch_task`) unless ``detach``.

Task Workflows created here are named ``<task>-run-<n>``, and a name is never used twice: the task
WorkflowTemplate's ``edgefed.io/last-run`` annotation keeps the highest ``n`` created (raised by
compare-and-swap after each create), so a run deleted by TTL or ``argo delete`` leaves its number
taken (a task Workflow's steps may key state by its name). ``n`` is one more than that counter or
the highest listed, whichever is higher; when the last one still runs it is watched. The server's
list may lag a just-created workflow and the counter is raised only after the create, so two
submits at once pick the same name: the API server refuses the second (409), which then watches
the first's workflow. (The task Workflow's mutex keeps even two runs from training a round twice;
this keeps a second one from being created at all.)
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefed.workflows.build.names import KIND_TASK, LABEL_KIND, LABEL_TASK
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings
from edgefed.workflows.cluster.client import (
    ArgoClient,
    apply_parameters,
    created_order,
    failure_message,
    phase_of,
)
from edgefed.workflows.cluster.errors import ArgoConflictError, ArgoError, ArgoRejectedError, TaskFailedError
from edgefed.workflows.cluster.view import task_selector
from edgefed.workflows.cluster.watch import Snapshot, watch_task
from edgefed.workflows.phases import Phase

if TYPE_CHECKING:
    from hera.workflows.models import Workflow as WorkflowModel

    from edgefed.workflows.spec import FederatedTask

__all__ = ["LAST_RUN", "Submission", "ensure_templates", "start_task", "submit_task", "task_run_name"]

log = logging.getLogger(__name__)

#: Names tried after a 409 before giving up (each 409 names a workflow the list did not show).
_NAME_TRIES = 20
#: Annotation of the task WorkflowTemplate: the highest run number created (never goes down).
LAST_RUN = "edgefed.io/last-run"


def task_run_name(task: str, number: int) -> str:
    """The ``number``-th task Workflow created by ``edgefed submit``: ``<task>-run-<number>``."""
    return f"{task}-run-{number}"


def _run_number(task: str, name: str) -> int:
    found = re.fullmatch(rf"{re.escape(task)}-run-(\d+)", name)
    return int(found.group(1)) if found else 0


@dataclass(frozen=True, kw_only=True)
class Submission:
    """The task Workflow a submit watches: ``created`` here, or ``adopted`` (one already running)."""

    task: str
    workflow: str
    namespace: str
    created: bool


def ensure_templates(
    task: FederatedTask, client: ArgoClient, *, settings: ClusterSettings = DEFAULT_SETTINGS
) -> list[str]:
    """Create or update the task's round and task WorkflowTemplates (the task's keeps its run
    counter); their names."""
    from edgefed.workflows.build import round_template, task_template, to_document

    names = []
    for template in (round_template(task, settings=settings), task_template(task, settings=settings)):
        doc = client.ensure_template(to_document(template), keep_annotations=(LAST_RUN,))
        names.append(doc["metadata"]["name"])
    return names


def _live(workflows: list[WorkflowModel]) -> WorkflowModel | None:
    """The newest of ``workflows`` that has not ended."""
    running = [w for w in workflows if not Phase.is_terminal(phase_of(w))]
    return max(running, key=created_order) if running else None


def _create(client: ArgoClient, document: dict[str, Any], templates: list[str]) -> WorkflowModel:
    """``create_workflow``, retried (with the client's backoff) while the server's template cache does
    not show the templates just created yet: its validation then answers 404 for them."""
    for attempt in itertools.count():
        try:
            return client.create_workflow(document)
        except ArgoRejectedError as err:
            unseen = err.status == 404 and any(f'"{name}"' in err.detail for name in templates)
            if not unseen or attempt >= client.options.retries:
                raise
            log.info("the server does not see the templates yet (%s); retry %d", err.detail, attempt + 1)
            client.wait(client.options.backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _last_run(task: FederatedTask, client: ArgoClient, listed: list[WorkflowModel]) -> int:
    """The highest run number known: the task template's counter, or a listed run's."""
    from edgefed.workflows.build.names import task_template_name

    template = client.get_template(task_template_name(task.name)) or {}
    counter = ((template.get("metadata") or {}).get("annotations") or {}).get(LAST_RUN, "0")
    numbers = [_run_number(task.name, w.metadata.name or "") for w in listed]
    return max([int(counter) if counter.isdigit() else 0, *numbers])


def start_task(
    task: FederatedTask,
    client: ArgoClient,
    *,
    parameters: Mapping[str, str] | None = None,
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> Submission:
    """Adopt the task's live task Workflow, or create one (templates first); see the module docstring."""
    from edgefed.workflows.build import task_submission, to_document
    from edgefed.workflows.build.names import task_template_name

    def adopted(workflow: WorkflowModel) -> Submission:
        name = workflow.metadata.name or ""
        log.info(
            "task %s: watching %s, already %s, instead of creating another",
            task.name,
            name,
            phase_of(workflow),
        )
        return Submission(task=task.name, workflow=name, namespace=client.namespace, created=False)

    listed = list(client.list_workflows(task_selector(task.name)))
    live = _live(listed)
    if live is not None:
        return adopted(live)
    number = _last_run(task, client, listed)
    if number > 0:  # the last run created, which a lagging list may not show
        last = client.get_workflow(task_run_name(task.name, number))
        if last is not None and not Phase.is_terminal(phase_of(last)):
            return adopted(last)
    templates = ensure_templates(task, client, settings=settings)
    document: dict[str, Any] = apply_parameters(
        to_document(task_submission(task, settings=settings)), parameters or {}
    )
    meta = document.setdefault("metadata", {})
    meta.pop("generateName", None)
    meta.setdefault("labels", {}).update({LABEL_TASK: task.name, LABEL_KIND: KIND_TASK})
    for _ in range(_NAME_TRIES):
        number += 1
        meta["name"] = task_run_name(task.name, number)
        try:
            created = _create(client, document, templates)
        except ArgoConflictError:
            existing = client.get_workflow(meta["name"])
            if existing is not None and not Phase.is_terminal(phase_of(existing)):
                return adopted(existing)  # a submit the list did not show yet
            continue  # an older run the list did not show: the next number
        try:
            client.raise_annotation(task_template_name(task.name), LAST_RUN, number)
        except ArgoError as err:  # the run exists: only a later reuse of its name is less guarded
            log.warning("task %s: cannot record run %d on its template: %s", task.name, number, err)
        return Submission(
            task=task.name,
            workflow=created.metadata.name or meta["name"],
            namespace=client.namespace,
            created=True,
        )
    raise ArgoError(
        f"cannot create a task Workflow for task {task.name}: "
        f"{task_run_name(task.name, number - _NAME_TRIES + 1)} to {meta['name']} all exist already"
    )


def submit_task(
    task: FederatedTask,
    client: ArgoClient,
    *,
    parameters: Mapping[str, str] | None = None,
    detach: bool = False,
    settings: ClusterSettings = DEFAULT_SETTINGS,
    on_submitted: Callable[[Submission], None] | None = None,
    on_update: Callable[[Snapshot], None] | None = None,
) -> tuple[Submission, Snapshot | None]:
    """Start (or adopt) ``task``'s task Workflow and, unless ``detach``, watch it to its end.

    Raises :class:`TaskFailedError` when it ends Failed or Error (the message names the failed
    round's Workflow and its failed nodes).
    """
    submission = start_task(task, client, parameters=parameters, settings=settings)
    if on_submitted is not None:
        on_submitted(submission)
    if detach:
        return submission, None
    final = watch_task(client, task.name, submission.workflow, on_update=on_update)
    if final.run.phase != Phase.SUCCEEDED:
        raise TaskFailedError(task.name, submission.workflow, final.run.phase, _why(client, final))
    return submission, final


def _why(client: ArgoClient, final: Snapshot) -> str:
    """The failed round (its Workflow's failed nodes) if one failed, else the task Workflow's own message."""
    failed = [r for r in final.rounds if Phase.is_failure(r.phase)]
    if not failed:
        return final.run.message or f"workflow {final.run.phase}"
    row = failed[-1]
    message = row.message
    child = client.get_workflow(row.workflow) if row.workflow else None
    if child is not None:  # listed without its nodes: read them now
        message = failure_message(child)
    where = f"round {row.round}" + (f" (workflow {row.workflow})" if row.workflow else "")
    return f"{where} {row.phase.lower()}: {message or 'no message'}"
