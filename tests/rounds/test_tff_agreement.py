"""edgefed's rounds agree with TensorFlow Federated's: FedAvg and FedAdam, 3 rounds each.

edgefed side: the generated round workflows on the embedded engine, the real store, the warm workers'
``Trainer``. TFF side: ``tff.learning.algorithms.build_weighted_fed_avg`` with the same Keras model
(``edgefed.steps.models.build_model``), the same initial weights (edgefed's committed round 0), the same
edge data (read back from the edges' buckets), SGD with the same batch size and epochs, no shuffling
(``training.shuffle: false``; TFF iterates ``Dataset.batch(16).repeat(2)`` in row order) and clients
weighted by their number of examples. FedAdam is TFF's ``server_optimizer_fn=build_adam(lr, β1, β2, ε)``
against ``fedadam`` with ``tau=ε, initialAccumulator=0, biasCorrection=True``.

TFF runs in a subprocess of its own session: its C++ ``worker_binary`` outlives the Python process that
started it, so the test kills the session's process group afterwards and checks nothing of it is left.
TFF is never imported into the warm workers or into this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgefed.steps import layout
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import read_frame
from edgefed.workflows.driver import TaskDriver
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.spec import parse_task
from tests.helpers import REPO, seeded_runtime, task_doc

pytestmark = pytest.mark.slow

EDGES = ("cleveland", "hungary", "switzerland")
ROUNDS = 3
TOLERANCE = 1e-4
MODEL = {"name": "mlp", "inputShape": [32], "classes": 2, "params": {"hidden": [16]}}
TRAINING = {"batchSize": 16, "learningRate": 0.1, "localEpochs": 2, "optimizer": "sgd", "shuffle": False}
#: case -> (edgefed's aggregation section, TFF's server optimizer builder and its arguments)
CASES = {
    "fedavg": ({"algorithm": "fedavg"}, ("build_sgdm", {"learning_rate": 1.0})),
    "fedadam": (
        {
            "algorithm": "fedadam",
            "serverLearningRate": 0.05,
            "beta1": 0.9,
            "beta2": 0.99,
            "tau": 1e-3,
            "initialAccumulator": 0.0,
            "biasCorrection": True,
        },
        ("build_adam", {"learning_rate": 0.05, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3}),
    ),
}


# -- the TFF side (run as ``python -m tests.rounds.test_tff_agreement INPUT OUTPUT``) --------------------


def tff_main(inputs: Path, outputs: Path) -> int:
    import tensorflow as tf
    import tensorflow_federated as tff

    from edgefed.steps.models import build_model

    spec = json.loads((inputs / "spec.json").read_text())
    arrays = np.load(inputs / "data.npz")
    model, training = spec["model"], spec["training"]
    input_spec = (
        tf.TensorSpec([None, *model["inputShape"]], tf.float32),
        tf.TensorSpec([None], tf.int64),
    )

    def model_fn():
        return tff.learning.models.from_keras_model(
            build_model(model),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            input_spec=input_spec,
        )

    clients = [
        tf.data.Dataset.from_tensor_slices((arrays[f"x/{edge}"], arrays[f"y/{edge}"]))
        .batch(training["batchSize"])
        .repeat(training["localEpochs"])
        for edge in spec["edges"]
    ]
    results: dict[str, np.ndarray] = {}
    for case, (builder, kwargs) in spec["cases"].items():
        initial = [arrays[f"initial/{case}/{i}"] for i in range(spec["arrays"])]
        process = tff.learning.algorithms.build_weighted_fed_avg(
            model_fn,
            client_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=training["learningRate"]),
            server_optimizer_fn=getattr(tff.learning.optimizers, builder)(**kwargs),
        )
        state = process.initialize()
        state = process.set_model_weights(
            state, tff.learning.models.ModelWeights(trainable=initial, non_trainable=[])
        )
        for round_ in range(1, spec["rounds"] + 1):
            state = process.next(state, clients).state
            for i, w in enumerate(process.get_model_weights(state).trainable):
                results[f"{case}/{round_}/{i}"] = np.asarray(w)
        print(f"TFF {case}: {spec['rounds']} rounds done", flush=True)
    np.savez(outputs, **results)
    return 0


# -- the edgefed side and the comparison ----------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", EDGES) as rt:
        yield rt


def session_processes(sid: int) -> list[tuple[int, str, str]]:
    """``(pid, state, command name)`` of every process of session ``sid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:  # state ppid pgrp session ...
            out.append((int(entry.name), fields[0], comm))
    return out


def run_tff(inputs: Path, outputs: Path, log: Path, timeout: float = 600) -> str:
    """Run :func:`tff_main` in its own session; afterwards kill that session's process group and
    check that no process of it (TFF's worker_binary included) is left running."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log, "wb") as sink:  # a file, not a pipe: worker_binary would hold a pipe open
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.rounds.test_tff_agreement", str(inputs), str(outputs)],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        finally:
            leftovers = [p for p in session_processes(proc.pid) if p[1] != "Z" and p[0] != proc.pid]
            with contextlib.suppress(ProcessLookupError):  # the group is empty: nothing was left
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 10
    while (alive := [p for p in session_processes(proc.pid) if p[1] != "Z"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive == [], f"processes of the TFF session survived the kill: {alive}"
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    names = sorted({name for _, _, name in leftovers})
    return f"TFF exited {code}; killed what it left running: {names or 'nothing'}"


def test_fedavg_and_fedadam_agree_with_tff_after_each_of_three_rounds(runtime, tmp_path):
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    ours: dict[str, list[list[np.ndarray]]] = {}
    for case, (aggregation, _) in CASES.items():
        task = parse_task(
            task_doc(
                f"tff-{case}",
                EDGES,
                model=MODEL,
                rounds=ROUNDS,
                quorum=len(EDGES),
                training=TRAINING,
                aggregation=aggregation,
                evaluation={"everyRounds": ROUNDS},
            )
        )
        parameters = runtime.prepare(task)
        TaskDriver(task, executor=runtime, registry=registry, parameters=parameters).run()
        ours[case] = [registry.load(task.name, r).weights for r in range(ROUNDS + 1)]
        for r in range(1, ROUNDS + 1):
            assert len(registry.manifest(task.name, r)["contributors"]) == len(EDGES)

    # the TFF side gets what the edges trained on: their datasets as stored, in row order
    from edgefed.steps.train import frame_to_arrays

    admin = runtime.store.client(layout.ADMIN_IDENTITY)
    arrays: dict[str, np.ndarray] = {}
    for edge in EDGES:
        frame = read_frame(admin, layout.edge_bucket(edge), "heart/train.parquet")
        arrays[f"x/{edge}"], arrays[f"y/{edge}"] = frame_to_arrays(frame, MODEL["inputShape"], where=edge)
    for case in CASES:
        for i, w in enumerate(ours[case][0]):
            arrays[f"initial/{case}/{i}"] = w
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    np.savez(inputs / "data.npz", **arrays)
    spec = {
        "model": MODEL,
        "training": TRAINING,
        "edges": list(EDGES),
        "rounds": ROUNDS,
        "arrays": len(ours["fedavg"][0]),
        "cases": {case: tff for case, (_, tff) in CASES.items()},
    }
    (inputs / "spec.json").write_text(json.dumps(spec))
    print(run_tff(inputs, tmp_path / "tff.npz", tmp_path / "tff.log"))

    theirs = np.load(tmp_path / "tff.npz")
    worst = 0.0
    for case in CASES:
        diffs = []
        for r in range(1, ROUNDS + 1):
            tff_weights = [theirs[f"{case}/{r}/{i}"] for i in range(spec["arrays"])]
            diffs.append(
                max(float(np.max(np.abs(a - b))) for a, b in zip(ours[case][r], tff_weights, strict=True))
            )
            moved = max(
                float(np.max(np.abs(a - b))) for a, b in zip(ours[case][r], ours[case][r - 1], strict=True)
            )
            assert moved > 100 * TOLERANCE  # the rounds really move the model
        print(
            f"{case}: max |edgefed - TFF| after rounds 1..{ROUNDS}: " + ", ".join(f"{d:.2e}" for d in diffs)
        )
        worst = max(worst, *diffs)
    assert worst <= TOLERANCE


if __name__ == "__main__":
    sys.exit(tff_main(Path(sys.argv[1]), Path(sys.argv[2])))
