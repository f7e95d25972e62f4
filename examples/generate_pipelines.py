"""Generate one federated pipeline per hospital group from a single template task, in a few lines.

    uv run python examples/generate_pipelines.py OUT_DIR

Each generated directory holds what `argo submit` / `kubectl apply` needs for that task.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgefed.workflows.build import write_manifests
from edgefed.workflows.spec import load_task

HERE = Path(__file__).resolve().parent
GROUPS = {"heart-west": ["cleveland", "va-long-beach"], "heart-europe": ["hungary", "switzerland"]}


def main(out: Path) -> None:
    base = load_task(HERE / "heart-demo.yaml")
    for name, edges in GROUPS.items():
        spec = base.spec.model_copy(
            update={"edges": [e for e in base.spec.edges if e.name in edges], "quorum": len(edges)}
        )
        task = base.model_copy(
            update={"metadata": base.metadata.model_copy(update={"name": name}), "spec": spec}
        )
        for path in write_manifests(task, out / name):
            print(path)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "generated"))
