"""A task's training as people see it: its TensorBoard event files, and its HTML report opened in headless
Chromium (Debian's package): the screenshot is not blank, and every plot image decoded in the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgefed.steps import layout
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.report import render_report, sync_events
from edgefed.workflows.spec import parse_task
from tests.helpers import run_task, seeded_runtime, task_doc

HOSPITALS = ("cleveland", "hungary", "switzerland")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory) -> Iterator[tuple[ModelRegistry, str]]:
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS) as runtime:
        task = parse_task(task_doc("report-task", HOSPITALS, rounds=3, quorum=2))
        run_task(runtime, task)
        yield ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY)), task.name


def _scalars(directory: Path) -> dict[str, dict[int, float]]:
    """Every scalar of every event file in ``directory``, read back with TensorBoard's own loader."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out: dict[str, dict[int, float]] = {}
    for path in sorted(directory.iterdir()):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                number = value.simple_value if value.HasField("simple_value") else None
                if number is None:  # the loader turns simple values into tensors
                    number = (
                        float(np.frombuffer(value.tensor.tensor_content, np.float32)[0])
                        if value.tensor.tensor_content
                        else value.tensor.float_val[0]
                    )
                out.setdefault(value.tag, {})[event.step] = number
    return out


def test_every_round_writes_tensorboard_events_into_the_bucket_and_the_state_directory(trained, tmp_path):
    registry, task = trained
    copied = sync_events(registry.client, task, tmp_path / "tb")
    assert copied == 6  # 3 rounds x (aggregate, evaluate)
    assert sync_events(registry.client, task, tmp_path / "tb") == 0  # nothing new: nothing copied again
    scalars = _scalars(tmp_path / "tb")
    for round_ in (1, 2, 3):
        evaluation = registry.evaluation(task, round_)
        manifest = registry.manifest(task, round_)
        assert scalars["eval/accuracy"][round_] == pytest.approx(evaluation["accuracy"], abs=1e-6)
        assert scalars["eval/loss"][round_] == pytest.approx(evaluation["loss"], rel=1e-5)
        assert scalars["edges/contributing"][round_] == len(manifest["contributors"])
        assert scalars["examples"][round_] == manifest["examples"]
        assert scalars["train/loss"][round_] == pytest.approx(manifest["metrics"]["train_loss"], rel=1e-5)
        for contributor in manifest["contributors"]:
            assert scalars[f"edge/{contributor['edge']}/loss"][round_] == pytest.approx(
                contributor["metrics"]["loss"], rel=1e-5
            )


def test_the_report_opens_in_chromium_with_its_plots(trained, tmp_path):
    registry, task = trained
    page = tmp_path / "report.html"
    page.write_text(render_report(registry, task), encoding="utf-8")
    text = page.read_text()
    assert (
        "http://" not in text.replace("http://www.w3.org", "") and "<script src" not in text
    )  # self-contained
    assert text.count('src="data:image/png;base64,') == 2
    assert "every round is as committed" in text and "Model lineage" in text

    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
    ]  # fmt: skip
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<body data-images="2/2"', dom.stdout), dom.stdout[:500]  # both plots decoded

    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from matplotlib import image

    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.05  # not blank
    blue = (pixels[..., 2] > pixels[..., 0] + 0.25).mean()  # the accuracy curve and the bars are drawn
    assert blue > 0.001, blue
