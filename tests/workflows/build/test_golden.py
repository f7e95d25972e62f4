"""Golden manifests: what `edgefed generate` writes for the demo task, committed and compared.

The example task is the one users meet first (`make demo`, the README); any change to what a cluster
would receive for it shows up here as a diff to review. Regenerate after an intended change with
``EDGEFED_REGEN=1 uv run --frozen pytest tests/workflows/build/test_golden.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefed.workflows.build import write_manifests
from edgefed.workflows.spec import dump_task, load_task, parse_task
from tests.helpers import REPO, assert_golden

EXAMPLE = REPO / "examples" / "heart-demo.yaml"
GOLDEN = Path(__file__).parent / "golden" / EXAMPLE.stem
_REGENERATE = "tests/workflows/build/test_golden.py"


def _generated(tmp: Path) -> dict[str, str]:
    out = tmp / "out"
    write_manifests(load_task(EXAMPLE), out, cron=True)
    return {p.name: p.read_text() for p in sorted(out.iterdir())}


def test_the_golden_set_is_complete(tmp_path: Path) -> None:
    generated = set(_generated(tmp_path))
    committed = {p.name for p in GOLDEN.iterdir()} if GOLDEN.is_dir() else set()
    assert generated == committed, (
        f"generate writes {sorted(generated)}, {GOLDEN.relative_to(REPO)} holds {sorted(committed)}"
    )


# every file generate writes, the store policies included (who may read and write what is a cluster's concern)
@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.iterdir()))
def test_generated_manifest_matches_its_golden_file(name: str, tmp_path: Path) -> None:
    assert_golden(GOLDEN / name, _generated(tmp_path)[name], regenerate=_REGENERATE)


def test_the_task_round_trips_through_its_dump() -> None:
    task = load_task(EXAMPLE)
    assert parse_task(dump_task(task)) == task
