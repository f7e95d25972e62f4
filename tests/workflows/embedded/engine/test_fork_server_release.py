"""A pool whose fork server is released once its workers are forked (``start_fork_server(release=True)``,
what ``edgefed run`` does): the server is gone, the workers stay this process's children and keep
working, a dead worker is seen as dead (not every worker at once) and replaced through a restarted server,
and closing the pool leaves nothing behind.

It runs in a fresh interpreter: the fork server is process-wide, and releasing it in the test session's
process would make every later pool of the session import its preload again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, os, sys, time
from multiprocessing import forkserver
from pathlib import Path

from edgefed.workflows.embedded.engine import RunnerError, WorkerPool
from edgefed.workflows.embedded.engine.pool import start_fork_server
from tests.workflows.embedded.engine.helpers import child_pids

TARGET = "tests.workflows.embedded.engine.warm_target:run"
work = Path(sys.argv[1])
os.environ["WARM_TEST_DIR"] = str(work)


def call(pool, *argv):
    d = work / f"call-{time.monotonic_ns()}"
    d.mkdir()
    rc = pool.call(TARGET, list(argv), env={}, cwd=d, log_path=d / "log", stdout_path=d / "stdout")
    return rc, (d / "log").read_text()


def parent(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


out = {"me": os.getpid()}
start_fork_server(["json"], release=True)
with WorkerPool(size=2, initializer="tests.workflows.embedded.engine.warm_target:init", preload=["json"]) as pool:
    out["server"] = forkserver._forkserver._forkserver_pid
    out["workers"] = pool.pids
    out["parents"] = [parent(p) for p in pool.pids]
    out["calls"] = [call(pool, "cache") for _ in range(4)]
    try:
        call(pool, "crash")
    except RunnerError as err:
        out["crash"] = str(err)
    out["server_after_replace"] = forkserver._forkserver._forkserver_pid
    out["workers_after"] = pool.pids
    out["parents_after"] = [parent(p) for p in pool.pids]
    out["calls_after"] = [call(pool, "cache") for _ in range(4)]
out["left"] = sorted(child_pids())
out["left_what"] = {}
for pid in out["left"]:  # what a process left running is, for the assertion's message
    try:
        out["left_what"][pid] = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:300]
    except OSError:
        pass
zombies = []
for entry in filter(str.isdigit, os.listdir("/proc")):
    try:
        fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if fields[0] == "Z" and int(fields[1]) == os.getpid():
        zombies.append(int(entry))
out["zombies"] = zombies
print(json.dumps(out))
"""


def test_released_fork_server_keeps_workers_in_the_tree_and_replaces_a_dead_one(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[4]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["server"] is None  # released as soon as the workers were forked
    assert len(out["workers"]) == 2
    assert out["parents"] == [out["me"], out["me"]]  # adopted: still in this process's tree
    assert all(rc == 0 for rc, _ in out["calls"])
    assert {log.split()[0] for _, log in out["calls"]} <= {f"pid={p}" for p in out["workers"]}
    # one worker died: that one is reported (its exit code is not knowable without its parent) ...
    assert "died while running" in out["crash"] and "exit code unknown" in out["crash"]
    # ... and only that one was replaced, through a server started again and released again
    assert out["server_after_replace"] is None
    assert len(set(out["workers_after"]) & set(out["workers"])) == 1
    assert out["parents_after"] == [out["me"], out["me"]]
    assert all(rc == 0 for rc, _ in out["calls_after"])
    assert (tmp_path / "init.log").read_text().split().__len__() == 3  # 2 workers + the replacement
    # nothing left running, nothing left unreaped
    assert out["left"] == [] and out["zombies"] == [], out["left_what"]
