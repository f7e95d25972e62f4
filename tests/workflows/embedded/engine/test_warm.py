"""WarmPythonRunner and WorkerPool: real spawned worker processes running warm_target.py."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefed.workflows.embedded.engine import (
    Engine,
    EngineOptions,
    NodeDeadlineExceededError,
    RunnerError,
    WarmPythonRunner,
    WorkerPool,
    render_report,
)
from tests.workflows.embedded.engine.helpers import child_pids, load

TARGET = "tests.workflows.embedded.engine.warm_target:run"
INIT = "tests.workflows.embedded.engine.warm_target:init"


@pytest.fixture
def warm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "warm"
    d.mkdir()
    monkeypatch.setenv("WARM_TEST_DIR", str(d))  # inherited by the spawned workers
    return d


@pytest.fixture
def pool(warm_dir: Path) -> Iterator[WorkerPool]:
    before = child_pids()  # the session's store may be running: only what the pool starts counts
    with WorkerPool(size=1, initializer=INIT) as p:
        yield p
    assert not child_pids() - before


def call(
    pool: WorkerPool,
    tmp_path: Path,
    *argv: str,
    env: dict[str, str] | None = None,
    deadline: float | None = None,
):
    d = tmp_path / f"call-{time.monotonic_ns()}"
    d.mkdir()
    rc = pool.call(
        TARGET,
        list(argv),
        env=env or {},
        cwd=d,
        log_path=d / "log",
        stdout_path=d / "stdout",
        deadline=deadline,
    )
    return rc, (d / "log").read_text(), (d / "stdout").read_text(), d


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def parallel_steps(name: str, *templates: dict) -> dict:
    """A Workflow ``name`` whose DAG runs ``templates`` (each named) side by side, failFast off."""
    tasks = [{"name": t["name"], "template": t["name"]} for t in templates]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "dag": {"failFast": False, "tasks": tasks}}, *templates],
        },
    }


def test_engine_runs_mapped_commands_in_warm_workers(warm_dir: Path, tmp_path: Path) -> None:
    before = child_pids()
    with WorkerPool(size=2, initializer=INIT) as pool:
        pids = set(pool.pids)
        runner = WarmPythonRunner(pool=pool, commands={"edgefed-test-step": TARGET})
        options = EngineOptions(parallelism=4, run_dir=tmp_path / "runs", runner=runner)
        result = Engine(options).run(load("warm-steps"))
        assert result.phase == "Succeeded", render_report(result)
        # the initializer ran exactly once per worker, however many steps ran
        assert sorted(int(x) for x in (warm_dir / "init.log").read_text().split()) == sorted(pids)
        calls: dict[int, list[int]] = {}
        for node in result.node_by_name("warm-steps.step").children:
            line = result.nodes[node].log_path.read_text().strip()
            m = re.fullmatch(r"pid=(\d+) calls=(\d+) imports=(\d+)", line)
            assert m, line
            assert int(m.group(3)) == 1
            calls.setdefault(int(m.group(1)), []).append(int(m.group(2)))
        assert set(calls) <= pids
        for seen in calls.values():  # module-level cache kept between calls in the same worker
            assert sorted(seen) == list(range(1, len(seen) + 1))
        assert sum(len(v) for v in calls.values()) == 6
        io = result.node_by_name("warm-steps.io")
        log = io.log_path.read_text()
        for line in ("python stdout", "python stderr", "fd1 line", "fd2 line"):
            assert line in log
        assert io.outputs["result"] == "python stdout\nfd1 line"
        assert io.outputs["parameters"] == {"file": "written"}  # /tmp/out/file mapped into the node dir
        work = io.log_path.parent / "work"
        assert (work / "in-cwd.txt").read_text() == str(work)
        local = result.node_by_name("warm-steps.local")
        assert local.log_path.read_text().startswith("not warm")  # unmapped command: local process
        assert set(pool.pids) == pids
    assert not any(alive(p) for p in pids)
    assert not child_pids() - before


def test_env_is_applied_and_restored_between_calls(pool: WorkerPool, tmp_path: Path) -> None:
    rc, log, _, _ = call(pool, tmp_path, "env", "FOO", env={"FOO": "bar"})
    assert rc == 0 and log.strip() == "bar"
    rc, log, _, _ = call(pool, tmp_path, "env", "FOO")
    assert log.strip() == "<unset>"
    _, log, _, _ = call(pool, tmp_path, "env", "LEAKED_BY_STEP")
    assert log.strip() == "<unset>"  # what a step writes to os.environ does not leak into the next


def test_exit_codes_and_exceptions(pool: WorkerPool, tmp_path: Path) -> None:
    rc, log, stdout, _ = call(pool, tmp_path, "fail")
    assert rc == 3 and "failing on purpose" in log and stdout == ""
    rc, log, _, _ = call(pool, tmp_path, "raise")
    assert rc == 1 and "RuntimeError: boom from the step" in log
    rc, _, _, _ = call(pool, tmp_path, "exit", "4")
    assert rc == 4
    with pytest.raises(RunnerError, match="cannot load"):
        pool.call(
            "tests.workflows.embedded.engine.warm_target:nope",
            [],
            env={},
            cwd=tmp_path,
            log_path=tmp_path / "l",
            stdout_path=tmp_path / "o",
        )


def test_deadline_kills_and_replaces_the_worker(pool: WorkerPool, tmp_path: Path, warm_dir: Path) -> None:
    [old] = pool.pids
    with pytest.raises(NodeDeadlineExceededError, match="longer than the specified deadline"):
        call(pool, tmp_path, "sleep", "30", deadline=time.monotonic() + 1)
    assert not alive(old)
    [new] = pool.pids
    assert new != old
    assert len((warm_dir / "init.log").read_text().split()) == 2  # the replacement was initialised
    rc, log, _, _ = call(pool, tmp_path, "cache")
    assert rc == 0 and f"pid={new} calls=1 imports=1" in log


def test_crash_is_an_error_and_the_worker_is_replaced(pool: WorkerPool, tmp_path: Path) -> None:
    [old] = pool.pids
    with pytest.raises(RunnerError, match="died"):
        call(pool, tmp_path, "crash")
    assert not alive(old)
    [new] = pool.pids
    assert new != old and alive(new)


def test_engine_node_phases_for_warm_deadline_and_crash(warm_dir: Path, tmp_path: Path) -> None:
    before = child_pids()
    doc = parallel_steps(
        "warm-failures",
        {
            "name": "slow",
            "activeDeadlineSeconds": 1,
            "container": {"image": "x", "command": ["edgefed-test-step", "sleep", "30"]},
        },
        {"name": "crash", "container": {"image": "x", "command": ["edgefed-test-step", "crash"]}},
    )
    with WorkerPool(size=2, initializer=INIT) as pool:
        runner = WarmPythonRunner(pool=pool, commands={"edgefed-test-step": TARGET})
        result = Engine(EngineOptions(run_dir=tmp_path / "runs", runner=runner)).run(doc)
        slow = result.node_by_name("warm-failures.slow")
        crash = result.node_by_name("warm-failures.crash")
        assert slow.phase == "Failed" and "longer than the specified deadline" in slow.message
        assert crash.phase == "Error" and "died" in crash.message
        assert len(pool.pids) == 2
        pids = pool.pids
    assert not any(alive(p) for p in pids)
    assert not child_pids() - before


def test_initializer_failure_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    before = child_pids()
    with pytest.raises(RunnerError, match="initializer"):
        WorkerPool(size=1, initializer="tests.workflows.embedded.engine.warm_target:does_not_exist")
    assert not child_pids() - before
    assert os.getpid() > 0


def test_one_worker_killed_from_two_threads_at_once_is_killed_once(warm_dir: Path) -> None:
    """Ctrl-C with a busy worker: close() and the busy call's replacement both kill it. Releasing its
    handles twice raised OSError EBADF (and the run exited 1, not 130)."""
    import threading

    before = child_pids()
    with WorkerPool(size=1, initializer=INIT) as pool:
        for _ in range(8):
            [w] = list(pool._live)
            gate = threading.Barrier(2)
            errors: list[BaseException] = []

            def kill(worker=w, gate=gate, errors=errors) -> None:
                gate.wait()
                try:
                    pool._kill(worker)
                except BaseException as err:  # pragma: no cover - what the test is for
                    errors.append(err)

            threads = [threading.Thread(target=kill) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == [] and not alive(w.pid)
            pool._replace(w)  # a fresh worker for the next turn (its kill: a no-op now)
            assert len(pool.pids) == 1 and pool.pids[0] != w.pid
    assert not child_pids() - before


def test_terminate_kills_running_steps_at_once_in_warm_workers_and_processes(
    warm_dir: Path, tmp_path: Path
) -> None:
    """``argo terminate`` (Ctrl-C of a run): steps that are running end now, a warm worker's (killed and
    replaced) and a plain process's alike, instead of running to their end or their deadline."""
    import threading

    before = child_pids()
    doc = parallel_steps(
        "terminated",
        {"name": "warm", "container": {"image": "x", "command": ["edgefed-test-step", "sleep", "60"]}},
        {"name": "plain", "container": {"image": "x", "command": ["sleep", "60"]}},
    )
    with WorkerPool(size=1, initializer=INIT) as pool:
        runner = WarmPythonRunner(pool=pool, commands={"edgefed-test-step": TARGET})
        engine = Engine(EngineOptions(run_dir=tmp_path / "runs", runner=runner, parallelism=2))
        results = []
        thread = threading.Thread(target=lambda: results.append(engine.run(doc)))
        thread.start()
        time.sleep(2)  # both steps are running
        started = time.monotonic()
        engine.terminate()
        thread.join(timeout=30)
        assert not thread.is_alive() and time.monotonic() - started < 10
        (result,) = results
        assert result.phase == "Failed"
        for name in ("warm", "plain"):
            assert result.node_by_name(f"terminated.{name}").phase == "Failed", name
        assert len(pool.pids) == 1  # the killed worker was replaced
    assert not child_pids() - before
