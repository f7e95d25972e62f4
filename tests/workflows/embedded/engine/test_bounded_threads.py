"""Threads stay flat in the number of edges: a 2,000-item fan-out runs on ``parallelism`` pod threads.

The runner is a test double of the process runner (exit code 0, stdout the item): this test is about
scheduling, not processes, and 2,000 real processes would only make it slow. Its calls wait until every
item's node exists, so all 2,000 items are pending at once while the threads are counted: a thread per
item (or per task) would show.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from edgefed.workflows.embedded.engine import (
    Engine,
    EngineOptions,
    Node,
    NodeExecution,
    RunnerError,
    render_report,
)

ITEMS = 2_000
PARALLELISM = 4


class GatedRunner:
    """Exit code 0 once ``gate`` is set; records how many calls overlap."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.calls = 0

    def run(self, execution: NodeExecution) -> int:
        if not self.gate.wait(timeout=120):  # a safety net, not a timing assertion
            raise RunnerError("the fan-out never created all its nodes")
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most_running = max(self.most_running, self.running)
        execution.stdout_path.write_text(execution.argv[-1])
        with self.lock:
            self.running -= 1
        return 0


def fan_out_document(items: int) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wide"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "edges", "value": json.dumps(list(range(items)))}]},
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {
                                "name": "edge",
                                "template": "edge",
                                "withParam": "{{workflow.parameters.edges}}",
                                "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]},
                            }
                        ]
                    },
                },
                {
                    "name": "edge",
                    "inputs": {"parameters": [{"name": "i"}]},
                    "container": {"image": "x", "command": ["edge", "{{inputs.parameters.i}}"]},
                },
            ],
        },
    }


def test_two_thousand_item_fan_out_runs_on_a_bounded_number_of_threads(tmp_path: Path) -> None:
    before = threading.active_count()
    seen: list[int] = []
    runner = GatedRunner()
    created = 0

    def on_node(node: Node) -> None:
        nonlocal created
        seen.append(threading.active_count())
        if node.type == "Pod" and node.phase == "Pending":
            created += 1
            if created == ITEMS:
                runner.gate.set()

    options = EngineOptions(parallelism=PARALLELISM, run_dir=tmp_path, runner=runner, on_node=on_node)
    result = Engine(options).run(fan_out_document(ITEMS))

    assert result.phase == "Succeeded", render_report(result)
    # the scheduling thread (this one) plus at most one thread per pod slot, whatever the item count
    assert max(seen) <= before + PARALLELISM, (before, max(seen))
    assert runner.calls == ITEMS and runner.most_running <= PARALLELISM
    group = result.node_by_name("wide.edge")
    children = [result.nodes[c] for c in group.children]
    assert [c.display_name for c in children] == [f"edge({i}:{i})" for i in range(ITEMS)]
    assert all(c.phase == "Succeeded" and c.type == "Pod" for c in children)
    assert [c.outputs["result"] for c in children] == [str(i) for i in range(ITEMS)]
