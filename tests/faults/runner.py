"""A task run in a process of its own, for the faults a whole process suffers (SIGKILL, SIGINT).

``python -m tests.faults.runner HOME TASK.yaml`` does what ``edgefed run TASK.yaml`` does on the
embedded runtime of ``HOME`` (the store there already running), with the scripted-fault step target of
:mod:`tests.rounds.faults` (its file named by ``EDGEFED_TEST_FAULTS``), so a test can hold a round at a
known point and signal the process there. It prints one line per round and exits 0, or 130 when
interrupted (as ``edgefed run``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.task import run_task
    from edgefed.workflows.spec import load_task

    home, task_file = Path(argv[0]), Path(argv[1])
    task = load_task(task_file)
    try:
        with EmbeddedRuntime(home, step_target="tests.rounds.faults:step") as runtime:
            result = run_task(
                runtime,
                task,
                on_round=lambda r: print(f"round {r.round}: {r.contributors} contributors", flush=True),
            )
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    print(f"done: {result.stop_reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
