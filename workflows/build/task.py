"""The task Workflow: the whole federated task as one Argo Workflow, each round a child Workflow.

``argo submit`` it and it runs init, every round and the stop::

    task (steps)     init ──► chain(since)
    chain (steps)    rounds(budget=S) ──► chain  when the chain's first plan went ahead
    rounds (steps)   plan ──► round ‖ progress ──► rounds(budget-1)  when plan says go  (round: the
                     step running the round-workflow template)
      plan           edgefed-step plan: from the model registry alone, go on or stop, which round,
                     which (sampled) edges, the child Workflow's name; the task's outputs (globalName)
      round-workflow resource create: the round Workflow ``<task>-r00007-a1`` from ``<task>-round``,
                     owned by the task Workflow, waited for until Succeeded / Failed / Error
      progress       resource patch of the task Workflow's own title/description (Argo UI progress)

Why chains: Argo refuses templates nested more than 100 deep (``maxAllowedStackDepth``), and each
recursive ``rounds`` is one level. A chain runs at most ``settings.rounds_per_chain`` rounds; the next
chain starts from the top-level ``chain`` recursion, so a task of R rounds nests about
R/S + S levels (S = 40: up to 2,280 rounds; the spec allows 2,000).

Why a failed round does not fail the task at once (``continueOn``): the round's model may be
committed with only its evaluation failed; the next plan, reading the registry, goes on if so and
fails the task (exit 5) if the round committed nothing.

Every round Workflow gets the task Workflow's parameters (``-p`` overrides reach every round). JSON
values are YAML block scalars in the manifests: Argo substitutes ``{{...}}`` as text, and quoting a JSON
value would break on its quotes.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import Container, Parameter, RawArtifact, Resource, Step, Steps
from hera.workflows import models as m

from edgefed.steps.interface import EDGES_FILE, Flag, Outputs, flag
from edgefed.steps.interface import Step as StepName
from edgefed.workflows.build.names import (
    DESCRIPTION,
    KIND_ROUND,
    LABEL_KIND,
    LABEL_ROUND,
    LABEL_TASK,
    ROUND_TEMPLATE,
    TITLE,
    TaskOutputs,
    WorkflowOutputs,
    template_name,
)
from edgefed.workflows.build.pods import off_edge_nodes
from edgefed.workflows.build.settings import ClusterSettings
from edgefed.workflows.build.templates import (
    add_init_template,
    cloud_step,
    output,
    task_args,
)
from edgefed.workflows.spec import FederatedTask

__all__ = ["ROUND_OUTPUTS", "TASK_PARAMETERS", "add_task_templates", "task_parameters"]

#: The task Workflow's parameters: the round's, less what each round gets from the plan.
TASK_PARAMETERS = ("task", "edges", "config", "store", "site-store", "dataset-key")
#: What the round step reads back from its child Workflow (``status.outputs.parameters``).
ROUND_OUTPUTS = (
    WorkflowOutputs.MODEL_VERSION,
    WorkflowOutputs.ACCURACY,
    WorkflowOutputs.LOSS,
    WorkflowOutputs.CONTRIBUTORS,
    WorkflowOutputs.MISSING_EDGES,
)
_PLAN = "{{steps.plan.outputs.parameters.%s}}"


def task_parameters(parameters: list[Parameter]) -> list[Parameter]:
    """The round's workflow parameters that the task Workflow has too."""
    return [p for p in parameters if p.name in TASK_PARAMETERS]


def _block(value: str, indent: int) -> str:
    """A YAML block scalar holding ``value`` (one line of JSON or text, substituted by Argo)."""
    return "|-\n" + " " * indent + value


def _round_manifest(task: FederatedTask, *, sampled: bool) -> str:
    """The round Workflow the ``round`` step creates (text: Argo substitutes it, then parses it)."""
    edges = "{{inputs.parameters.edges}}" if sampled else "{{workflow.parameters.edges}}"
    arguments = [
        ("round", '"{{inputs.parameters.round}}"'),
        ("evaluate", '"{{inputs.parameters.evaluate}}"'),
        ("parent", _block("{{inputs.parameters.parent}}", 10)),
        *(
            (name, _block(f"{{{{workflow.parameters.{name}}}}}", 10))
            for name in TASK_PARAMETERS
            if name != "edges"
        ),
        ("edges", _block(edges, 10)),
    ]
    parameters = "".join(f"      - name: {name}\n        value: {value}\n" for name, value in arguments)
    return (
        "apiVersion: argoproj.io/v1alpha1\n"
        "kind: Workflow\n"
        "metadata:\n"
        "  name: {{inputs.parameters.name}}\n"
        "  labels:\n"
        f"    {LABEL_TASK}: {task.name}\n"
        f'    {LABEL_ROUND}: "{{{{inputs.parameters.round}}}}"\n'
        f"    {LABEL_KIND}: {KIND_ROUND}\n"
        "  annotations:\n"
        f'    {TITLE}: "{task.name}: round {{{{inputs.parameters.round}}}} of {task.spec.last_round}"\n'
        f'    {DESCRIPTION}: "round {{{{inputs.parameters.round}}}} of task {task.name}, '
        'started by {{workflow.name}}"\n'
        "spec:\n"
        "  workflowTemplateRef:\n"
        f"    name: {template_name(task.name)}\n"
        "  arguments:\n"
        "    parameters:\n"
        f"{parameters}"
    )


_PROGRESS_MANIFEST = (
    "apiVersion: argoproj.io/v1alpha1\n"
    "kind: Workflow\n"
    "metadata:\n"
    "  name: {{workflow.name}}\n"
    "  annotations:\n"
    f'    {TITLE}: "{{{{inputs.parameters.title}}}}"\n'
    f'    {DESCRIPTION}: "{{{{inputs.parameters.description}}}}"\n'
)


def _plan_template(task: FederatedTask, settings: ClusterSettings) -> Container:
    def global_output(name: str, global_name: str) -> Parameter:
        return output(name, global_name=global_name)

    return cloud_step(
        StepName.PLAN,
        image=task.spec.image,
        cloud_secret=task.spec.cloud_credentials_secret,
        args=[
            *task_args(),
            flag(Flag.EDGES_FILE, EDGES_FILE),
            flag(Flag.BUDGET, "{{inputs.parameters.budget}}"),
            flag(Flag.SINCE, "{{inputs.parameters.since}}"),
            flag(Flag.WORKFLOW_UID, "{{workflow.uid}}"),
        ],
        inputs=[
            Parameter(name="budget"),
            Parameter(name="since"),
            # The edge list can exceed what one command-line argument may hold: a file.
            RawArtifact(name="edges", path=EDGES_FILE, data="{{workflow.parameters.edges}}"),
        ],
        outputs=[
            output(Outputs.GO),
            output(Outputs.NEXT_ROUND),
            output(Outputs.EVALUATE),
            output(Outputs.EDGES),
            output(Outputs.NAME),
            output(Outputs.PARENT),
            output(Outputs.BUDGET),
            output(Outputs.TITLE),
            output(Outputs.DESCRIPTION),
            global_output(Outputs.MODEL_VERSION, TaskOutputs.MODEL_VERSION),
            global_output(Outputs.ACCURACY, TaskOutputs.ACCURACY),
            global_output(Outputs.LAST_ROUND, TaskOutputs.LAST_ROUND),
            global_output(Outputs.ROUNDS_RUN, TaskOutputs.ROUNDS_RUN),
            global_output(Outputs.STOP_REASON, TaskOutputs.STOP_REASON),
        ],
        settings=settings,
        deadline_seconds=settings.plan_deadline_seconds,
    )


def _round_template(task: FederatedTask, settings: ClusterSettings) -> Resource:
    sampled = task.spec.sampling is not None
    return Resource(
        name=ROUND_TEMPLATE,
        action="create",
        set_owner_reference=True,
        success_condition="status.phase == Succeeded",
        failure_condition="status.phase in (Failed, Error)",
        manifest=_round_manifest(task, sampled=sampled),
        inputs=[
            Parameter(name=n)
            for n in ("name", "round", "evaluate", "parent", *(("edges",) if sampled else ()))
        ],
        outputs=[
            Parameter(name="phase", value_from=m.ValueFrom(json_path="{.status.phase}")),
            *(
                Parameter(
                    name=name,
                    value_from=m.ValueFrom(
                        json_path=f'{{.status.outputs.parameters[?(@.name=="{name}")].value}}'
                    ),
                )
                for name in ROUND_OUTPUTS
            ),
        ],
        active_deadline_seconds=settings.round_deadline_seconds,
        **driver_pod(settings),
    )


def driver_pod(settings: ClusterSettings) -> dict[str, Any]:
    """A resource step's pod (Argo's ``argoexec resource``): the driver ServiceAccount, which alone
    may create and read Workflows, and never on an edge node."""
    return {"service_account_name": settings.service_accounts.driver, "affinity": off_edge_nodes()}


def add_task_templates(task: FederatedTask, settings: ClusterSettings) -> None:
    """Create the task Workflow's templates inside the current Hera Workflow/WorkflowTemplate context."""
    sampled = task.spec.sampling is not None
    init = add_init_template(task, settings)
    plan = _plan_template(task, settings)
    round_ = _round_template(task, settings)
    progress = Resource(
        name="progress",
        action="patch",
        merge_strategy="merge",
        manifest=_PROGRESS_MANIFEST,
        inputs=[Parameter(name="title"), Parameter(name="description")],
        **driver_pod(settings),
    )
    go = f"{_PLAN % Outputs.GO} == true"
    with Steps(
        name="rounds",
        inputs=[Parameter(name="budget"), Parameter(name="since")],
        outputs=[Parameter(name="go", value_from=m.ValueFrom(parameter=_PLAN % Outputs.GO))],
    ) as rounds:
        plan(
            name="plan",
            arguments={"budget": "{{inputs.parameters.budget}}", "since": "{{inputs.parameters.since}}"},
        )
        with rounds.parallel():
            arguments: dict[str, Any] = {
                "name": _PLAN % Outputs.NAME,
                "round": _PLAN % Outputs.NEXT_ROUND,
                "evaluate": _PLAN % Outputs.EVALUATE,
                "parent": _PLAN % Outputs.PARENT,
            }
            if sampled:
                arguments["edges"] = _PLAN % Outputs.EDGES
            round_(
                name="round", when=go, arguments=arguments, continue_on=m.ContinueOn(failed=True, error=True)
            )
            # Progress is for people: a refused patch must not stop the task.
            progress(
                name="progress",
                arguments={"title": _PLAN % Outputs.TITLE, "description": _PLAN % Outputs.DESCRIPTION},
                continue_on=m.ContinueOn(failed=True, error=True),
            )
        Step(
            name="more",
            template="rounds",
            when=go,
            arguments={"budget": _PLAN % Outputs.BUDGET, "since": "{{inputs.parameters.since}}"},
        )
    with Steps(name="chain", inputs=[Parameter(name="since")]):
        Step(
            name="rounds",
            template="rounds",
            arguments={"budget": str(settings.rounds_per_chain), "since": "{{inputs.parameters.since}}"},
        )
        Step(
            name="next",
            template="chain",
            when="{{steps.rounds.outputs.parameters.go}} == true",
            arguments={"since": "{{inputs.parameters.since}}"},
        )
    with Steps(name="task"):
        init(name=StepName.INIT)
        Step(
            name="chain",
            template="chain",
            arguments={"since": f"{{{{steps.{StepName.INIT}.outputs.parameters.{Outputs.LAST_ROUND}}}}}"},
        )
