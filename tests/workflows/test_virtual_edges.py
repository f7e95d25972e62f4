"""N virtual edges from a packaged dataset (``edgefed data seed --virtual N --task-out``), and their task run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.helpers import edgefed


def test_task_out_needs_virtual_and_virtual_makes_its_own_edges(tmp_path: Path) -> None:
    alone = edgefed("data", "seed", "digits", "--task-out", str(tmp_path / "t.yaml"), home=tmp_path / "h")
    assert alone.returncode == 2 and "--task-out needs --virtual" in alone.stderr
    both = edgefed("data", "seed", "digits", "--virtual", "3", "--edges", "a,b", home=tmp_path / "h")
    assert both.returncode == 2 and "--virtual makes its own edges" in both.stderr
    assert not (tmp_path / "t.yaml").exists()
    csv = edgefed("data", "seed", "digits", "--virtual", "3", "--format", "csv", home=tmp_path / "h")
    assert (
        csv.returncode == 2 and "--format" in csv.stderr and "expected one of parquet, feather" in csv.stderr
    )


@pytest.mark.slow
def test_virtual_edges_are_seeded_in_bulk_and_their_task_samples_and_trains(tmp_path: Path) -> None:
    home, task = tmp_path / "home", tmp_path / "virtual.yaml"
    try:
        seeded = edgefed(
            "data", "seed", "digits", "--virtual", "12", "--task-out", str(task), "--sampling", "0.25",
            "--rounds", "2", home=home, timeout=300,
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stderr
        shards = [line for line in seeded.stdout.splitlines() if "rows  -> s3://edge-v" in line]
        test = next(line for line in seeded.stdout.splitlines() if line.strip().startswith("test set"))
        rows = sum(int(line.split()[1]) for line in shards) + int(test.split()[2])
        assert len(shards) == 12 and rows == 1797  # every digit exactly once: the shards and the test set
        # progress on stderr (not a terminal: a line per tenth of the work, here each of 13 objects)
        progress = [line for line in seeded.stderr.splitlines() if line.startswith("seeding digits: ")]
        assert len(progress) == 13 and progress[-1].startswith("seeding digits: 13/13 (100%), "), (
            seeded.stderr
        )
        document = yaml.safe_load(task.read_text())
        edges = [e["name"] for e in document["spec"]["edges"]]
        # virtual shards are Feather (Arrow IPC) unless --format parquet: the task names the keys seeded
        assert {e["dataset"]["key"] for e in document["spec"]["edges"]} == {"digits/train.feather"}
        assert all(".feather" in line for line in shards), shards
        assert edges == [f"v{i:03d}" for i in range(1, 13)] and document["spec"]["sampling"] == {
            "fraction": 0.25
        }
        ran = edgefed("run", str(task), home=home, timeout=600)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        # one line a round (never wrapped, the output is not a terminal), with its time and its overhead:
        # the time beyond the slowest edge's training, so at most the round's and never negative
        lines = [line for line in ran.stdout.splitlines() if line.startswith("round ")]
        timed = [
            re.search(r" (\d+\.\d+)s \(overhead (-?\d+\.\d+)s\)  digits-12-edges-r0000\d-a1$", x)
            for x in lines
        ]
        assert len(lines) == 2 and all(timed), ran.stdout
        assert all(0 <= float(m[2]) <= float(m[1]) for m in timed), lines
        # no TensorFlow start-up noise ("Unable to register cuDNN factory ..." on a machine without a GPU)
        assert "Unable to register" not in ran.stdout + ran.stderr and "cuda" not in ran.stderr.lower()
        listed = json.loads(edgefed("models", "show", "digits-12-edges", "-o", "json", home=home).stdout)
        assert listed["round"] == 2 and len(listed["contributors"]) + len(listed["missing"]) == 3  # 25% of 12
        again = edgefed("data", "seed", "digits", "--virtual", "12", "--task-out", str(task), home=home)
        assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    finally:  # the CLI's store outlives each command, as it would for a user: stop it
        edgefed("store", "stop", home=home, timeout=120)
