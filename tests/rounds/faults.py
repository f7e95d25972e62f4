"""A step target that runs the real ``edgefed-step`` unless a scripted fault says otherwise.

The warm workers (``EmbeddedRuntime(step_target="tests.rounds.faults:step")``) read the faults file
named by :data:`FAULTS_ENV` at every call, so a test scripts faults while its runtime stays warm::

    [{"step": "evaluate", "task": "t", "round": 2, "exit": 1},
     {"step": "train", "task": "t", "edge": "b", "sleep": 120},
     {"step": "aggregate", "task": "t", "round": 2, "exit": 1, "once": "/tmp/x/marker"}]

A fault matches on step, task and (if given) round and edge, and ``afterRound``: only while the task's
last committed round is that one (a plan step: between two rounds); ``once``: only while that file exists
(the first matching call deletes it). ``sleep`` then ``exit`` (or the real step). Faults that act
inside the real step (it runs, then):

* ``"signal": 9``: the worker sends itself the signal once it has started (``mark``: a file it writes
  first, so a test knows the step is under way);
* ``"twice": true``: the step runs a second time, as when a lost pod's step is executed again;
* ``"update": "nan" | "inf" | "shape" | "norm" | "flip"``: the train step trains for real and sends a
  bad update instead (non-finite, a wrong shape, scaled 1e6, or the Byzantine ``w_g - 10 (w - w_g)``);
  the edge cannot read its update back, so it is rewritten on its way out;
* ``"beforeManifest": 9``: the aggregate computes and writes its model object, then dies before its
  manifest (the signal is sent at the commit point);
* ``"cloudRefused": true``: the step runs with its cloud endpoint (``--store``) pointed at a port of this
  host nothing listens on, so every cloud request is refused (an edge cut off from the cloud; its own
  site's store still answers);
* ``"dropAfterMasking": true``: a secure round's train step trains and masks its input, then drops
  before the input reaches the store (the edge is gone once it has shared its keys).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAULTS_ENV = "EDGEFED_TEST_FAULTS"


def _flags(argv: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)


def _matches(fault: dict[str, Any], step: str, flags: dict[str, str]) -> bool:
    if fault["step"] != step or fault.get("task") != flags.get("--task"):
        return False
    if fault.get("round") is not None and str(fault["round"]) != flags.get("--round"):
        return False
    if fault.get("edge") is not None and fault["edge"] != flags.get("--edge"):
        return False
    if fault.get("afterRound") is not None and _last_committed(flags) != int(fault["afterRound"]):
        return False
    if fault.get("once"):
        try:
            os.remove(fault["once"])
        except FileNotFoundError:
            return False
    return True


def _last_committed(flags: dict[str, str]) -> int | None:
    """The task's last committed round, read with the step's own identity (a cloud step's)."""
    from edgefed.steps.registry import ModelRegistry
    from edgefed.steps.store import Endpoint, client_from_env

    return ModelRegistry(client_from_env(Endpoint.parse(flags["--store"]))).last_committed(flags["--task"])


def step(argv: list[str]) -> int:
    from edgefed.steps import cli

    path = os.environ.get(FAULTS_ENV)
    faults = json.loads(Path(path).read_text()) if path and Path(path).exists() else []
    flags = _flags(argv[1:])
    for fault in faults:
        if _matches(fault, argv[0], flags):
            if fault.get("mark"):
                Path(fault["mark"]).write_text(str(os.getpid()))
            if "sleep" in fault:
                time.sleep(fault["sleep"])
            if "exit" in fault:
                print(f"scripted fault: {argv[0]} exits {fault['exit']}", file=sys.stderr)
                return int(fault["exit"])
            if "signal" in fault:
                print(f"scripted fault: {argv[0]} gets signal {fault['signal']}", file=sys.stderr, flush=True)
                os.kill(os.getpid(), int(fault["signal"]))
            if fault.get("update"):
                return bad_update(argv, fault["update"])
            if fault.get("cloudRefused"):
                argv = [f"--store={_refused_endpoint()}" if a.startswith("--store=") else a for a in argv]
                print(f"scripted fault: {argv[0]} cannot reach the cloud store", file=sys.stderr)
                break
            if fault.get("dropAfterMasking"):
                return _drops_after_masking(argv)
            if fault.get("beforeManifest"):
                return _dies_before_manifest(argv, int(fault["beforeManifest"]))
            if fault.get("twice"):
                first = cli.run(argv)
                print(f"scripted fault: {argv[0]} runs again (it exited {first})", file=sys.stderr)
            break
    return cli.run(argv)


def _refused_endpoint() -> str:
    """``http://127.0.0.1:PORT`` with nothing listening (a port the OS just handed out and took back)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _run_with_put(argv: list[str], module: Any, rewrite: Any) -> int:
    """The real step, with ``module.put_bytes`` passing each write through ``rewrite(put, *args, **kw)``."""
    from edgefed.steps import cli

    honest_put = module.put_bytes
    module.put_bytes = lambda *args, **kwargs: rewrite(honest_put, *args, **kwargs)
    try:
        return cli.run(argv)
    finally:
        module.put_bytes = honest_put


def bad_update(argv: list[str], kind: str) -> int:
    """The real train step, sending a ``kind`` update instead of its own (see the module docstring)."""
    import numpy as np

    from edgefed.steps import codec, layout, train
    from edgefed.steps.context import StepContext

    ctx = StepContext.from_args(train.parse(argv[1:]))

    def put_bad(put, client, bucket, key, payload, **kwargs):
        if bucket == layout.UPDATES_BUCKET and key.endswith("/update.npz"):
            local, meta = codec.decode(payload)
            start = ctx.registry().load(ctx.task, ctx.round - 1).weights
            if kind == "nan":
                local[0] = local[0].copy()
                local[0].flat[0] = np.nan
            elif kind == "inf":
                local[-1] = np.full_like(local[-1], np.inf)
            elif kind == "shape":
                local[0] = np.zeros((local[0].shape[0] + 1, *local[0].shape[1:]), local[0].dtype)
            elif kind == "norm":
                local = [(g + 1e6 * (w - g)).astype(w.dtype) for w, g in zip(local, start, strict=True)]
            elif kind == "flip":
                local = [(g - 10.0 * (w - g)).astype(w.dtype) for w, g in zip(local, start, strict=True)]
            payload = codec.encode(local, meta)
            print(
                f"scripted fault: edge {_flags(argv[1:]).get('--edge')} sends a {kind} update",
                file=sys.stderr,
            )
        return put(client, bucket, key, payload, **kwargs)

    return _run_with_put(argv, train, put_bad)


def _drops_after_masking(argv: list[str]) -> int:
    from edgefed.steps import cli, secure
    from edgefed.steps.store import StepError

    sent = secure.send_masked_input

    def dropped(ctx, cloud, edge, data) -> None:
        assert secure.codec.read_meta(data)["masked"]  # it did mask
        gone = StepError(f"scripted fault: edge {edge} dropped after masking its input")
        gone.exit_code = 3  # gone for the round: not retried
        raise gone

    secure.send_masked_input = dropped
    try:
        return cli.run(argv)
    finally:
        secure.send_masked_input = sent


def _dies_before_manifest(argv: list[str], signal_number: int) -> int:
    from edgefed.steps import registry

    def put_then_die(put, client, bucket, key, data, **kwargs):
        if kwargs.get("if_absent"):  # the manifest: the commit point
            print("scripted fault: aggregate dies before its manifest", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal_number)
        return put(client, bucket, key, data, **kwargs)

    return _run_with_put(argv, registry, put_then_die)


def script(path: Path, faults: list[dict[str, Any]]) -> None:
    """Replace the scripted faults (``[]``: none)."""
    path.write_text(json.dumps(faults))


@contextmanager
def scripted_runtime(
    store: Any, home: Path, dataset: str, edges: tuple[str, ...], **options: Any
) -> Iterator[Any]:
    """:func:`tests.helpers.seeded_runtime` whose warm workers run every step through :func:`step`; the faults
    file is ``runtime.faults`` (none scripted at first)."""
    from tests.helpers import seeded_runtime

    faults = home / "faults.json"
    script(faults, [])
    with (
        faults_file(faults),
        seeded_runtime(store, home, dataset, edges, step_target="tests.rounds.faults:step", **options) as rt,
    ):
        rt.faults = faults
        yield rt


@contextmanager
def faults_file(path: Path) -> Iterator[None]:
    """Name ``path`` as the faults file (:data:`FAULTS_ENV`) for what starts meanwhile: warm workers and
    subprocesses inherit it; the variable is as it was afterwards."""
    previous = os.environ.get(FAULTS_ENV)
    os.environ[FAULTS_ENV] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(FAULTS_ENV, None)
        else:
            os.environ[FAULTS_ENV] = previous
