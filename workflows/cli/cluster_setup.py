"""``edgefed cluster setup TASK.yaml``: the task's Secrets and node labels made so, taints, ServiceAccounts
and WorkflowTemplates checked, through the Kubernetes API (current kube context, or in-cluster)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from edgefed.workflows.cli.common import ValuesOption, console, err_console, fail, fail_with, load_for_cluster
from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from edgefed.workflows.build.settings import ClusterSettings
    from edgefed.workflows.cluster.setup import Credentials, Row
    from edgefed.workflows.spec import FederatedTask

__all__ = ["cluster_setup", "register"]

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _task(path: Path, values: Path | None) -> tuple[FederatedTask, ClusterSettings]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        document = None  # load() says what is wrong
    if isinstance(document, dict) and document.get("kind") in ("Workflow", "WorkflowTemplate"):
        raise fail_with(
            f"{path} is an Argo {document['kind']}: cluster setup needs the FederatedTask file it was "
            "generated from (e.g. examples/heart-demo.yaml)",
            ExitCode.INVALID,
        )
    try:
        return load_for_cluster(path, values)
    except EdgefedError as err:
        raise fail(err) from None


def _clients(kubeconfig: Path | None, context: str | None, namespace: str | None) -> tuple[Any, str]:
    """An ``ApiClient`` and the namespace: in-cluster when ``KUBERNETES_SERVICE_HOST`` is set and no
    kubeconfig is given, else the kubeconfig's ``context`` (default: its current one)."""
    from kubernetes import client, config

    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            if namespace is None and _SA_NAMESPACE.is_file():
                namespace = _SA_NAMESPACE.read_text().strip()
            return client.ApiClient(configuration), namespace or "default"
        file = str(kubeconfig) if kubeconfig else None
        contexts, active = config.list_kube_config_contexts(config_file=file)
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if chosen is None:
            names = ", ".join(c["name"] for c in contexts)
            raise fail_with(
                f"--context {context}: no such context in the kubeconfig (found: {names})", ExitCode.INVALID
            )
        api = config.new_client_from_config(config_file=file, context=chosen["name"], persist_config=False)
        return api, namespace or chosen.get("context", {}).get("namespace") or "default"
    except config.ConfigException as err:
        raise fail_with(f"cannot load the Kubernetes configuration: {err}", ExitCode.INVALID) from None


def _table(rows: list[Row], title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("kind", "name", "result", "detail"):
        table.add_column(column)
    for row in rows:
        style = "red" if not row.ok else ""
        table.add_row(row.kind, escape(row.name), escape(row.action), escape(row.detail), style=style)
    console.print(table)


def _mc_lines(credentials: dict[str, Credentials], file: Path) -> None:
    from edgefed.workflows.policy import mc_alias

    console.print(
        f"Add these users to the stores (each secret key is in {file}, under <identity>.secretKey), then "
        "attach their policies (`edgefed generate` writes <task>-minio-policies.txt):",
        highlight=False,
    )
    for identity, keys in credentials.items():
        alias = mc_alias(identity)
        where = "on the cloud store" if alias == "CLOUD" else "on that edge's own store"
        console.print(
            f'  mc admin user add {alias} {keys.access_key} "<{identity}.secretKey from {file}>"   # {where}',
            highlight=False,
            markup=False,
        )


def cluster_setup(
    task_file: Annotated[Path, typer.Argument(help="the FederatedTask YAML (not a generated Workflow)")],
    credentials: Annotated[
        Path | None,
        typer.Option("--credentials", help="YAML {identity: {accessKey, secretKey}} of every identity"),
    ] = None,
    new_credentials: Annotated[
        Path | None,
        typer.Option(
            "--new-credentials", help="generate every identity's keys and write them to this new file (0600)"
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file (default ~/.kube/config)"),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="kube context (default: the current one)")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="namespace (default: the context's, else default)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the Secrets (redacted) and node patches; change nothing")
    ] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="with --dry-run: do not contact the cluster")
    ] = False,
    values: ValuesOption = None,
) -> None:
    """Create or update the task's Secrets, label its edge nodes, and check taints, ServiceAccounts and
    WorkflowTemplates; print a table of what was changed or found.

    Exit 0: all fine; 1: a check failed or a request was refused (the rest was still done); 2: bad input.
    """
    from edgefed.workflows.cluster import setup

    task, settings = _task(task_file, values)
    if offline and not dry_run:
        raise fail_with("--offline needs --dry-run (setup changes the cluster)", ExitCode.INVALID)
    if (credentials is None) == (new_credentials is None):
        raise fail_with("give exactly one of --credentials FILE and --new-credentials FILE", ExitCode.INVALID)
    plans = setup.secret_plans(task)
    identities = list(dict.fromkeys(p.identity for p in plans))
    try:
        if credentials is not None:
            keys = setup.load_credentials(credentials, identities)
        else:
            keys = setup.new_credentials(new_credentials, identities, write=not dry_run)  # type: ignore[arg-type]
    except EdgefedError as err:
        raise fail(err) from None
    if offline:
        ns = namespace or "default"
        api = None
    else:
        api, ns = _clients(kubeconfig, context, namespace)
    if dry_run:
        documents = [setup.secret_document(p, ns, keys[p.identity], redact=True) for p in plans]
        documents += [
            {"kind": "Node", "name": e.node, "patch": setup.node_patch(e.name)} for e in task.spec.edges
        ]
        typer.echo(yaml.safe_dump_all(documents, sort_keys=False), nl=False)
        if new_credentials is not None:
            err_console.print(f"note: dry run: {new_credentials} not written")
    if api is None:
        err_console.print("note: --offline: no check was run")
        return
    from kubernetes import client
    from urllib3.exceptions import HTTPError

    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    try:
        rows = setup.sync_secrets(core, ns, plans, keys, dry_run=dry_run)
        rows += setup.label_nodes(core, task, dry_run=dry_run)
        rows += setup.check_service_accounts(core, ns, settings)
        rows += setup.check_templates(custom, task, ns)
    except HTTPError as err:
        host = api.configuration.host
        code = ExitCode.OK if dry_run else ExitCode.FAILED
        if dry_run:
            err_console.print(
                f"note: the API server {host} cannot be reached ({type(err).__name__}): checks skipped"
            )
            raise typer.Exit(int(code)) from None
        raise fail_with(
            f"cannot reach the API server {host}: {type(err).__name__}", ExitCode.FAILED
        ) from None
    finally:
        api.close()
    _table(rows, f"cluster setup of task {task.name} (namespace {ns}){' — dry run' if dry_run else ''}")
    if new_credentials is not None and not dry_run:
        _mc_lines(keys, new_credentials)
    failed = [r for r in rows if not r.ok]
    if failed:
        raise fail_with(f"{len(failed)} problem(s); see the red rows", ExitCode.FAILED)


def register(app: typer.Typer) -> None:
    """Add ``cluster setup`` to ``app``."""
    cluster_app = typer.Typer(help="What a cluster needs of a task beside the chart.", no_args_is_help=True)
    cluster_app.command("setup")(cluster_setup)
    app.add_typer(cluster_app, name="cluster")
