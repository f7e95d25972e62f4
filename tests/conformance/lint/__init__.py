"""Argo's semantic validation, which no schema expresses: :func:`lint_manifest`.

Modules by concern: ``context`` (what the rules share), ``names`` (metadata and names), ``calls``
(templates called, arguments passed), ``variables`` (``{{tags}}``), ``graphs`` (DAGs and steps),
``templates`` (one template), ``workflow`` (the document).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..argo import kind_of
from ..problems import Problem
from .context import Lint
from .templates import MAX_ARG_STRLEN
from .workflow import run


def lint_manifest(
    doc: Mapping[str, Any], *, templates: Iterable[Mapping[str, Any]] | None = None
) -> list[Problem]:
    """Argo's semantic rules, which neither schema expresses. Needs no schema files.

    ``templates``: WorkflowTemplate / ClusterWorkflowTemplate documents that ``templateRef`` and
    ``workflowTemplateRef`` may name; when ``None``, such references are warnings (not checked).

    Sources are Argo v4's ``workflow/validate/validate.go`` (VG), ``workflow/common/ancestry.go`` (AN),
    the Kubernetes API server's ObjectMeta validation (K8S) and the CRDs' CEL rules (CEL):

    * metadata: ``name`` or ``generateName`` (K8S); name a DNS-1123 subdomain (K8S) of at most 63
      characters, 52 for a CronWorkflow (VG); ``generateName`` a DNS-1123 prefix (K8S); label keys and
      values, annotation keys (K8S).
    * names: templates, steps and DAG tasks match ``[a-zA-Z0-9][-a-zA-Z0-9]*`` (<= 128) and are unique;
      parameter and artifact names match ``[-a-zA-Z0-9_]+`` and are unique (VG). Templates that run a
      pod must also be lower-case: v2 pod names embed them (argo-workflows#9670).
    * entrypoint required (Workflow, CronWorkflow) and defined; every template a task, step, ``onExit``
      or hook calls is defined; ``templateRef`` resolved against ``templates`` when given, else a
      warning (VG). Entrypoint/onExit inputs without a default must be in ``spec.arguments`` (VG).
    * exactly one template type; ``activeDeadlineSeconds``/``timeout`` only on leaf templates,
      ``parallelism`` only on steps/dag; timeouts carry a unit; valid ``retryPolicy``; container and
      script images (VG, CEL).
    * DAG: at least one task; ``depends`` parsed by the engine's parser, which takes what Argo takes
      (bare task names of letters, digits and '-', ``.Result``, ``&&``, ``||``, ``!``, parentheses), and
      every target and ``dependencies`` entry exists; ``.AnySucceeded``/``.AllFailed`` only on a task
      that fans out; no ``depends`` with ``dependencies`` or ``continueOn`` in one DAG; names of such
      tasks do not start with a digit; no cycles (graphlib); ``target`` names exist (VG, AN).
    * loops: one of ``withItems``/``withParam``/``withSequence``; ``{{item...}}`` only in a task or step
      that fans out, and matching the items' keys (VG); a ``withParam`` fed by a literal (or a workflow
      parameter's literal value) must be a JSON list whose items have the keys used (edgefed).
    * variables: every ``{{inputs.parameters.X}}`` declared by its template; every
      ``{{workflow.parameters.X}}`` declared in ``spec.arguments`` (for a WorkflowTemplate, its own;
      Argo is laxer there, edgefed is not); ``{{tasks.T...}}`` / ``{{steps.S...}}`` name an existing
      task that is an ancestor (step: an earlier group) and an output its template declares (VG).
    * arguments: each needs a value (VG); names only inputs the called template declares (edgefed);
      every input without a default is supplied (VG ``ProcessArgs``); output parameters well-formed (VG).
    * CronWorkflow: ``schedules`` non-empty and parseable (robfig/cron), time zone known (VG).
    * exec limits: a container's command/args/env string, after substituting literal workflow
      parameter values, fits Linux's ``MAX_ARG_STRLEN`` (128 KiB), and all of them ``ARG_MAX`` (edgefed:
      Argo substitutes verbatim, and the pod then fails to start with E2BIG).
    """
    kind, problems = kind_of(doc)
    if kind is None:
        return problems
    return run(Lint(doc, templates))


__all__ = ["MAX_ARG_STRLEN", "lint_manifest"]
