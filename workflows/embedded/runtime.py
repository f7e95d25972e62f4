"""The embedded runtime: SeaweedFS + the embedded engine + warm step workers, on one machine.

:class:`EmbeddedRuntime` is a :class:`~edgefed.workflows.driver.RoundExecutor`: it runs the very
Workflow document a cluster would run. What a cluster gets from Kubernetes, it supplies locally:

* Secrets: the document's ``secretKeyRef``s are resolved from the embedded store's generated
  credentials (edge Secret → that edge's identity, cloud Secret → the cloud identity);
* endpoints: the ``store`` and ``edges`` workflow parameters point at the local store, set the way
  ``argo submit -p`` would set them;
* pods: ``edgefed-step`` containers run in warm worker processes that imported TensorFlow once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefed.steps import layout
from edgefed.steps.interface import (
    CLOUD_SECRET,
    SECRET_ACCESS_KEY,
    SECRET_SECRET_KEY,
    STEP_COMMAND,
    Env,
    Outputs,
    Step,
    edge_secret,
    site_secret,
)
from edgefed.workflows.build.edges import edge_item, varying_fields
from edgefed.workflows.driver import RoundOutcome
from edgefed.workflows.embedded.engine import Engine, EngineOptions, WarmPythonRunner, WorkerPool
from edgefed.workflows.embedded.store import EmbeddedStore
from edgefed.workflows.embedded.warm import WARM_INITIALIZER, WARM_PRELOAD, WARM_TARGET
from edgefed.workflows.paths import default_home
from edgefed.workflows.phases import Phase
from edgefed.workflows.spec import FederatedTask


def default_parallelism() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class EmbeddedRuntime:
    """Store, engine and warm workers for running tasks on this machine. A context manager."""

    def __init__(
        self,
        home: Path | None = None,
        *,
        parallelism: int | None = None,
        store: EmbeddedStore | None = None,
        detach_store: bool = True,
        on_node: Callable[[Any], None] | None = None,
        step_target: str = WARM_TARGET,
    ) -> None:
        """``store``: use this running store (not started or stopped here) instead of ``<home>/store``.

        ``detach_store``: leave the store running after :meth:`close` for the next command.
        ``step_target``: the ``"module:function"`` the warm workers run for ``edgefed-step``
        (tests wrap the real one).
        """
        self.home = Path(home) if home else default_home()
        self.parallelism = parallelism or default_parallelism()
        self._owns_store = store is None
        self.store = store or EmbeddedStore(self.home / "store")
        self.detach_store = detach_store
        self.on_node = on_node
        self.step_target = step_target
        self._pool: WorkerPool | None = None
        #: WorkflowTemplates installed "on the cluster": documents with a workflowTemplateRef resolve here.
        self.templates: list[dict[str, Any]] = []
        self._secrets: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> EmbeddedRuntime:
        if self._owns_store:
            self.store.start(detach=self.detach_store)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._owns_store and not self.detach_store:
            self.store.stop()

    def pool(self) -> WorkerPool:
        """The warm workers, started on first use and kept for every later round and task."""
        if self._pool is None:
            self._pool = WorkerPool(size=self.parallelism, initializer=WARM_INITIALIZER, preload=WARM_PRELOAD)
        return self._pool

    # -- a task ----------------------------------------------------------------------------
    def prepare(self, task: FederatedTask) -> dict[str, str]:
        """Identities and buckets for ``task``'s edges; returns the workflow parameter overrides."""
        items = [edge_item(task, e) for e in task.spec.edges] if "store" in varying_fields(task) else None
        return self._provision(
            {e.name: (e.secret_name, e.site_secret_name) for e in task.spec.edges},
            task.spec.cloud_credentials_secret,
            items,
        )

    def prepare_document(self, document: dict[str, Any]) -> dict[str, str]:
        """:meth:`prepare` for a generated task or round Workflow document (``edgefed run out/task.yaml``):
        the edges from its ``edges`` parameter, the cloud Secret from its ``init``/``plan`` steps."""
        parameters = {
            p["name"]: p.get("value") for p in document["spec"].get("arguments", {}).get("parameters", [])
        }
        try:
            items = json.loads(parameters.get("edges") or "")
        except ValueError:
            raise ValueError(
                "the document has no JSON 'edges' parameter: is it a generated edgefed workflow?"
            ) from None
        secrets = {}
        for item in items:
            fields = item if isinstance(item, dict) else {"name": item}
            name = fields["name"]
            secrets[name] = (
                fields.get("secret", edge_secret(name)),
                fields.get("siteSecret", site_secret(name)),
            )
        cloud = CLOUD_SECRET
        for template in document["spec"].get("templates", []):
            if template.get("name") in (Step.INIT, Step.PLAN, Step.AGGREGATE):
                refs = [
                    e["valueFrom"]["secretKeyRef"]["name"]
                    for e in template["container"].get("env", [])
                    if "secretKeyRef" in e.get("valueFrom", {})
                ]
                cloud = refs[0] if refs else cloud
                break
        stores = [i for i in items if isinstance(i, dict) and "store" in i]
        return self._provision(secrets, cloud, items if stores else None)

    def _provision(
        self, edge_secrets: dict[str, tuple[str, str]], cloud_secret: str, items: list[Any] | None
    ) -> dict[str, str]:
        """Buckets and identities for the edges, their Secrets (cloud store's, site store's) mapped;
        ``items``: edge items that name stores of their own (here, all are the local one).

        Every edge's site store is this machine's store, reached as a cluster reaches the store on an
        edge's node: ``$(EDGEFED_NODE_IP)``, which the engine's downward API sets to this host."""
        names = list(edge_secrets)
        self.store.ensure_edges(names)
        self.store.provision(names)
        self._secrets[cloud_secret] = layout.CLOUD_IDENTITY
        for name, (secret, site) in edge_secrets.items():
            self._secrets[secret] = layout.edge_identity(name)
            self._secrets[site] = layout.site_identity(name)
        local = f"http://{self.store.endpoint}"
        port = self.store.endpoint.rpartition(":")[2]
        parameters = {"store": local, "site-store": f"http://$({Env.NODE_IP}):{port}"}
        if items is not None:
            local_items = [{**item, "store": local} for item in items]
            parameters["edges"] = json.dumps(local_items, separators=(",", ":"))
        return parameters

    def resolve_secret(self, name: str, key: str) -> str | None:
        identity = self._secrets.get(name)
        if identity is None:
            return None
        creds = self.store.credentials(identity)
        return {SECRET_ACCESS_KEY: creds.access_key, SECRET_SECRET_KEY: creds.secret_key}.get(key)

    def install_template(self, document: dict[str, Any]) -> None:
        """``argo template create`` (or update): documents with a workflowTemplateRef to it resolve here."""
        name = document["metadata"]["name"]
        self.templates = [t for t in self.templates if t["metadata"]["name"] != name] + [document]

    def engine(self, *, on_node: Callable[[Any], None] | None = None) -> Engine:
        """An engine on this machine's store, warm workers and installed templates.

        ``on_node``: node events (default: the runtime's own ``on_node``).
        """
        runner = WarmPythonRunner(pool=self.pool(), commands={STEP_COMMAND: self.step_target})
        return Engine(
            EngineOptions(
                parallelism=self.parallelism,
                run_dir=self.home / "runs",
                secret_resolver=self.resolve_secret,
                runner=runner,
                on_node=on_node or self.on_node,
                templates=tuple(self.templates),
            )
        )

    def execute(self, document: dict[str, Any], parameters: dict[str, str]) -> RoundOutcome:
        started = time.perf_counter()
        result = self.engine().run(document, parameters=parameters)
        seconds = time.perf_counter() - started
        train_seconds: dict[str, float] = {}
        for node in result.pods():
            if node.template_name == Step.TRAIN and node.phase == Phase.SUCCEEDED:
                value = (node.outputs.get("parameters") or {}).get(Outputs.TRAIN_SECONDS)
                if value:
                    train_seconds[node.inputs.get("edge", node.display_name)] = float(value)
        return RoundOutcome(
            workflow=result.name,
            succeeded=result.succeeded,
            message="" if result.succeeded else failure_message(result),
            outputs=dict(result.outputs),
            seconds=seconds,
            train_seconds=train_seconds,
        )


#: The steps of a round at which an edge sits out without failing the round (the aggregate decides).
EDGE_ROUND_STEPS = (Step.TRAIN, Step.SECAGG_KEYS, Step.SECAGG_SHARE, Step.SECAGG_UNMASK)


def last_log_line(node: Any) -> str:
    """A failed node's reason as a person reads it: the last non-empty line of its log, else its message."""
    path = node.log_path
    if path is not None and path.exists():
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return node.message


def deciding_failures(nodes: list[Any]) -> str:
    """``step: reason; ...`` for the failed pods that decided a run: not the edges that sat out, unless
    nothing else failed (e.g. every edge failed and nothing ran after them)."""
    failed = [n for n in nodes if Phase.is_failure(n.phase)]
    deciding = [n for n in failed if n.template_name not in EDGE_ROUND_STEPS] or failed
    return "; ".join(f"{n.display_name}: {last_log_line(n)}" for n in deciding)


def failure_message(result: Any) -> str:
    """Why a run failed: each failed step that decided it and its last log line."""
    return deciding_failures(result.pods()) or result.message


__all__ = [
    "EmbeddedRuntime",
    "deciding_failures",
    "default_home",
    "default_parallelism",
    "failure_message",
    "last_log_line",
]
