"""``edgefed data put|ls`` and ``edgefed contract draft``: a user's own data, into the edges' own stores.

``data put EDGE FILE --dataset NAME`` writes a CSV or Parquet file as the edge's dataset with the edge's own
site identity (never the cloud's); ``data ls`` lists every edge's datasets; ``contract draft FILE`` proposes a
data contract from a sample, checked against it, for the user to edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgefed.workflows.cli.common import HomeOption, console, fail, fail_with
from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = ["contract_draft", "data_ls", "data_put", "data_put_test"]

OutputOption = Annotated[str, typer.Option("--output", "-o", help="table or json")]


def data_put(
    edge: Annotated[str, typer.Argument(help="the edge whose store gets the file")],
    file: Annotated[Path, typer.Argument(help="a .csv or .parquet file")],
    dataset: Annotated[
        str, typer.Option("--dataset", help="dataset name: s3://edge-<edge>/<name>/train.parquet")
    ],
    home: HomeOption = None,
) -> None:
    """Write a user's CSV or Parquet file into an edge's own store, with that edge's own credentials."""
    from edgefed.steps import layout
    from edgefed.workflows.data.user import put_dataset, read_table
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.store.identities import validate_edge

    try:
        validate_edge(edge)
        if not dataset or "/" in dataset or dataset.startswith(("edgefed", "models", "hard-examples")):
            raise EdgefedError(f"--dataset {dataset!r}: expected a name without '/', not a reserved prefix")
        read_table(file)  # refuse a bad file before the store starts
    except (EdgefedError, ValueError) as err:
        raise (
            fail(err) if isinstance(err, EdgefedError) else fail_with(str(err), ExitCode.INVALID)
        ) from None
    with EmbeddedRuntime(home) as runtime:
        runtime.store.ensure_edges([edge])
        runtime.store.provision([edge])
        written = put_dataset(runtime.store.client(layout.site_identity(edge)), edge, dataset, file)
    console.print(
        f"wrote {written['url']}: {written['rows']} rows x {len(written['columns'])} columns, {written['bytes']} bytes "
        f"(as {layout.site_identity(edge)})",
        highlight=False,
    )


def data_put_test(
    file: Annotated[Path, typer.Argument(help="a .csv or .parquet file: the held-out test set")],
    dataset: Annotated[str, typer.Option("--dataset", help="the dataset it tests (the task's spec.dataset)")],
    home: HomeOption = None,
) -> None:
    """Write the held-out test set of a user's dataset to the cloud's evaluation bucket (what evaluate scores on)."""
    from edgefed.steps import layout
    from edgefed.steps.store import parquet_bytes, put_bytes
    from edgefed.workflows.data.user import read_table
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    try:
        frame = read_table(file)
    except EdgefedError as err:
        raise fail(err) from None
    with EmbeddedRuntime(home) as runtime:
        key = layout.test_set_key(dataset)
        put_bytes(runtime.store.client(layout.ADMIN_IDENTITY), layout.EVAL_BUCKET, key, parquet_bytes(frame))
    console.print(
        f"wrote s3://{layout.EVAL_BUCKET}/{key}: {len(frame)} rows (the held-out test set)", highlight=False
    )


def data_ls(
    edge: Annotated[
        str | None, typer.Option("--edge", help="one edge (default: every edge of the store)")
    ] = None,
    output: OutputOption = "table",
    home: HomeOption = None,
) -> None:
    """Each edge's datasets: rows, columns, size, last change, and whether its current bytes passed a contract."""
    from edgefed.steps import layout
    from edgefed.workflows.data.user import list_datasets
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    with EmbeddedRuntime(home) as runtime:
        edges = [edge] if edge else runtime.store.edges
        if edge and edge not in runtime.store.edges:
            raise fail_with(
                f"edge {edge!r} has no store identity here (edgefed data put or seed creates it)",
                ExitCode.INVALID,
            )
        try:
            rows = [r for e in edges for r in list_datasets(runtime.store.client(layout.site_identity(e)), e)]
        except EdgefedError as err:
            raise fail(err) from None
    if output == "json":
        print(json.dumps([r.to_json() for r in rows], indent=2))
        return
    from rich.table import Table

    table = Table(title="datasets at the edges")
    for column in ("edge", "dataset", "rows", "columns", "size", "last change", "contract"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.edge,
            r.dataset,
            str(r.rows),
            str(r.columns),
            f"{r.size / 1024:.1f} KiB",
            r.last_change[:19],
            r.verdict,
        )
    console.print(table)


def contract_draft(
    file: Annotated[Path, typer.Argument(help="a sample: .csv or .parquet")],
    name: Annotated[
        str | None, typer.Option("--name", help="contract name (default: the file's stem)")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="the label column (default: 'label' if present)")
    ] = None,
    to: Annotated[
        Path | None, typer.Option("--to", help="write here (never overwritten) instead of stdout")
    ] = None,
) -> None:
    """Propose a data contract from a sample (types, ranges, null rates, label set), checked against the sample."""
    import re

    import yaml

    from edgefed.steps.contracts import ContractError, check, load_contract
    from edgefed.workflows.data.user import draft_contract, read_table

    contract_name = name or re.sub(r"[^a-z0-9-]+", "-", file.stem.lower()).strip("-") or "dataset"
    if to is not None and to.exists():
        raise fail_with(f"{to} exists: refusing to overwrite it (--to another path)", ExitCode.INVALID)
    try:
        frame = read_table(file)
        document = draft_contract(frame, name=contract_name, label=label)
        contract = load_contract(document)
        verdict = check(frame, contract)
    except EdgefedError as err:
        raise fail(err) from None
    except ContractError as err:
        raise fail_with(f"the draft is not a valid contract: {err}", ExitCode.FAILED) from None
    if not verdict.passed:
        raise fail_with(f"the sample fails its own draft: {', '.join(verdict.failed_names)}", ExitCode.FAILED)
    text = f"# Drafted from {file.name} ({len(frame)} rows): edit before use; format in data_contracts/README.md\n"
    text += yaml.safe_dump(document, sort_keys=False, width=110)
    if to is None:
        print(text, end="")
    else:
        to.write_text(text)
        console.print(
            f"wrote {to}: {len(document['columns'])} columns, the sample passes it", highlight=False
        )
