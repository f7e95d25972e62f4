"""Benchmark of the data-contract check (``make bench`` section 5; a small run in the contract tests)."""

from __future__ import annotations

import io
import time
from typing import Any

import pandas as pd

from edgefed.steps.contracts import Contract, check, load_contract
from edgefed.steps.contracts.runtime import ge_runtime
from edgefed.steps.datasets import partition
from edgefed.steps.store import put_bytes, read_frame

__all__ = ["TARGET_CHECK_SECONDS", "bench_contract"]

#: The issue's target: a 1,000,000-row table checks in at most this on 2 cores.
TARGET_CHECK_SECONDS = 10.0


def bench_contract(
    rows: int = 1_000_000,
    *,
    contract: str | Contract = "heart",
    repeat: int = 3,
    client: Any = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """Check time of a ``rows``-row heart-like table (real hospital rows resampled) against a contract.

    Returns seconds for: GE import and context (first use in this process), suite build, the best
    of ``repeat`` checks, and Parquet encode/decode of the same table in memory. With a ``minio``
    ``client`` and a writable ``bucket`` (e.g. the embedded store's admin and ``edge-<edge>``), also
    the time to read it back from the store with :func:`edgefed.steps.store.read_frame` (what the
    step does before checking).
    """
    loaded = contract if isinstance(contract, Contract) else load_contract(contract)
    parts = partition("heart", split="natural", seed=0)
    pool = pd.concat(list(parts.edges.values()), ignore_index=True)
    frame = pool.sample(rows, replace=True, random_state=0).reset_index(drop=True)

    started = time.perf_counter()
    runtime = ge_runtime()
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    runtime.suite(loaded)
    suite_seconds = time.perf_counter() - started
    times, passed = [], True
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        passed = check(frame, loaded).passed
        times.append(time.perf_counter() - started)
    buffer = io.BytesIO()
    started = time.perf_counter()
    frame.to_parquet(buffer, index=False)
    write_seconds = time.perf_counter() - started
    data = buffer.getvalue()
    started = time.perf_counter()
    pd.read_parquet(io.BytesIO(data))
    read_seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "rows": rows,
        "columns": frame.shape[1],
        "expectations": len(loaded.expectations),
        "passed": passed,
        "gxImportSeconds": round(import_seconds, 3),
        "suiteBuildSeconds": round(suite_seconds, 3),
        "checkSeconds": round(min(times), 3),
        "checkSecondsAll": [round(t, 3) for t in times],
        "parquetBytes": len(data),
        "parquetWriteSeconds": round(write_seconds, 3),
        "parquetReadSeconds": round(read_seconds, 3),
        "targetCheckSeconds": TARGET_CHECK_SECONDS,
    }
    if client is not None and bucket is not None:
        key = f"edgefed/bench/contract-{rows}.parquet"
        put_bytes(client, bucket, key, data)
        store_times = []
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            read_frame(client, bucket, key)
            store_times.append(time.perf_counter() - started)
        client.remove_object(bucket, key)
        out["storeReadSeconds"] = round(min(store_times), 3)
    return out
