"""Embedded engine: executes an Argo Workflow document on this machine.

    from edgefed.workflows.embedded.engine import Engine, EngineOptions, WarmPythonRunner, WorkerPool

    with WorkerPool(size=2, initializer="edgefed.steps.cli:warm_up") as pool:
        runner = WarmPythonRunner(pool=pool, commands={"edgefed-step": "edgefed.steps.cli:run"})
        result = Engine(EngineOptions(parallelism=4, runner=runner)).run(document, parameters={"round": "3"})
    print(render_report(result))

Modules: ``document`` (load + up-front feature check), ``expressions`` (depends / when), ``params``
(``{{...}}`` substitution and the ``/tmp`` mapping), ``executor`` (the run: entrypoint, exit handler,
workflow phase), ``nodes`` (Node, the node record, WorkflowResult), ``scope`` (variables and parameters),
``pods`` (prepare, run, outputs, retries, deadlines, pendingTimeout), ``resource`` (resource templates on
Workflow manifests, with ``conditions`` and ``jsonpath`` for their success/failure conditions and
outputs), ``objects`` (the store of Workflow objects, ``EngineOptions.workflows``), ``mutex``
(``synchronization.mutexes``), ``dag`` and ``steps`` (scheduling), ``fanout``
(withItems/withParam/withSequence, continueOn, exit hooks and the template's failFast, shared by both),
``expr`` with ``exprlib`` and ``exprpath`` (Argo's ``{{=...}}`` expression language, its functions and
its ``jsonpath()``), ``gofmt`` (Go's renderings of values), ``runners`` and ``pool`` (how
container/script nodes run), ``secrets``, ``report`` (``argo get``-style output). The CLI is
``edgefed.workflows.cli.engine_run``.
"""

from .document import check_document, load_document, resolve_template_ref
from .errors import (
    EngineError,
    NodeDeadlineExceededError,
    RunnerError,
    UnresolvedVariableError,
    UnsupportedFeatureError,
    WorkflowInvalidError,
)
from .executor import Engine, EngineOptions
from .nodes import Node, NodeCallback, NodeType, WorkflowResult
from .objects import WorkflowExistsError, WorkflowNotFoundError, WorkflowObjects
from .pool import WorkerPool
from .report import node_line, render_report, render_tree
from .runners import LocalProcessRunner, NodeExecution, Runner, WarmPythonRunner
from .secrets import SecretResolver, StaticSecretResolver, load_secret_manifests

__all__ = [
    "Engine",
    "EngineError",
    "EngineOptions",
    "LocalProcessRunner",
    "Node",
    "NodeCallback",
    "NodeDeadlineExceededError",
    "NodeExecution",
    "NodeType",
    "Runner",
    "RunnerError",
    "SecretResolver",
    "StaticSecretResolver",
    "UnresolvedVariableError",
    "UnsupportedFeatureError",
    "WarmPythonRunner",
    "WorkerPool",
    "WorkflowExistsError",
    "WorkflowInvalidError",
    "WorkflowNotFoundError",
    "WorkflowObjects",
    "WorkflowResult",
    "check_document",
    "load_document",
    "load_secret_manifests",
    "node_line",
    "render_report",
    "render_tree",
    "resolve_template_ref",
]
