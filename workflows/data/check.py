"""``edgefed data check``: run the data contracts of a task's edges in-process, without training.

For every edge of a FederatedTask (or one, ``edge=``), read its dataset
(``spec.edges[i].dataset.bucket/key``) with that edge's client and check it against the task's
contract (by default the one named like ``spec.dataset``), exactly as the ``validate`` step does at the
edge. Nothing is written anywhere; the verdicts come back to the caller, and :func:`render_table`
shows them as edges x failed expectations. An edge whose dataset cannot be read gets a failed verdict
whose single entry is ``dataset_readable(url=...)``, so one missing object does not hide the others.

Wired by the CLI as ``edgefed data check TASK.yaml [--edge NAME]`` (exit 1 if any edge fails).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from minio import Minio
from rich.table import Table

from edgefed.steps.contracts import (
    Contract,
    ContractError,
    FailedExpectation,
    Verdict,
    check,
    load_contract,
)
from edgefed.steps.store import StepError, read_frame
from edgefed.workflows.errors import EdgefedError, ExitCode
from edgefed.workflows.spec import FederatedTask

__all__ = ["CheckError", "check_task", "render_table"]

_SHOWN_KEYS = (
    "unexpected_percent",
    "observed_value",
    "unexpected_column_count",
    "failing_column_count",
    "unexpected_value_count",
)


class CheckError(EdgefedError):
    """The check itself could not run (unknown edge, unknown or malformed contract)."""

    exit_code = ExitCode.INVALID


def check_task(
    task: FederatedTask,
    *,
    clients_for_edge: Callable[[str], Minio],
    edge: str | None = None,
    contract: str | Contract | Mapping[str, Any] | None = None,
) -> dict[str, Verdict]:
    """Verdict per edge (in spec order) of the task's edges' datasets against their contract.

    ``clients_for_edge(name)`` returns a client of that edge's store acting as the edge (or admin).
    ``contract`` defaults to the contract named like the task's dataset (``data_contracts/<dataset>.yaml``).
    """
    edges = list(task.spec.edges)
    if edge is not None:
        edges = [e for e in edges if e.name == edge]
        if not edges:
            known = ", ".join(e.name for e in task.spec.edges)
            raise CheckError(f"edge {edge!r} is not an edge of task {task.name} (edges: {known})")
    try:
        loaded = contract if isinstance(contract, Contract) else load_contract(contract or task.spec.dataset)
    except ContractError as err:
        raise CheckError(str(err)) from None
    verdicts: dict[str, Verdict] = {}
    for spec in edges:
        ref = spec.dataset
        try:
            frame = read_frame(clients_for_edge(spec.name), ref.bucket, ref.key)
        except StepError as err:
            verdicts[spec.name] = _unreadable(ref.url, str(err), loaded)
            continue
        try:
            verdicts[spec.name] = check(frame, loaded)
        except ContractError as err:
            raise CheckError(str(err)) from None
    return verdicts


def _unreadable(url: str, reason: str, contract: Contract) -> Verdict:
    failed = [FailedExpectation(f"dataset_readable(url={url})", {"error": reason})]
    return Verdict(False, failed, 0, {"contract": contract.name, "dataset": contract.dataset})


def _observed_text(observed: Mapping[str, Any]) -> str:
    parts = []
    for key in _SHOWN_KEYS:
        if key in observed:
            parts.append(f"{key}={observed[key]}")
    for key in ("missing_columns", "failing_columns"):
        if observed.get(key):
            parts.append(
                f"{key}={','.join(map(str, observed[key][:3]))}{'…' if len(observed[key]) > 3 else ''}"
            )
    if observed.get("violated") == "no_value":
        parts.append("no non-null value")
    elif "violated" in observed:
        parts.append(f"violates {observed['violated']} {observed.get('bound')}")
    if "error" in observed:
        parts.append(str(observed["error"]))
    return "; ".join(parts)


def render_table(verdicts: Mapping[str, Verdict]) -> Table:
    """Edges x failed expectations: one row per edge, its verdict, rows and what failed (with summaries)."""
    contracts = sorted({str(v.summary.get("contract", "?")) for v in verdicts.values()})
    table = Table(title=f"data contract {', '.join(contracts)}")
    table.add_column("edge", style="bold")
    table.add_column("verdict")
    table.add_column("rows", justify="right")
    table.add_column("failed expectation")
    table.add_column("observed (summary values only)")
    for edge, verdict in verdicts.items():
        status = "[green]PASS[/]" if verdict.passed else "[red]FAIL[/]"
        failed = verdict.failed or [None]
        for i, item in enumerate(failed):
            first = i == 0
            table.add_row(
                edge if first else "",
                status if first else "",
                str(verdict.rows) if first else "",
                item.name if item else "-",
                (_observed_text(item.observed) or "-") if item else "",
                end_section=i == len(failed) - 1,
            )
    return table
