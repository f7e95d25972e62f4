"""``python -m edgefed.workflows.cli engine run FILE``: output and exit codes 0 / 1 / 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.workflows.embedded.engine.helpers import WORKFLOWS


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgefed.workflows.cli", "engine", "run", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_succeeded_workflow_exits_0_and_prints_phase_changes_and_tree(tmp_path: Path) -> None:
    order = tmp_path / "order"
    proc = cli(
        str(WORKFLOWS / "dag-diamond.yaml"),
        "-p",
        f"order-file={order}",
        "--run-dir",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "● Running" in out and "✔ Succeeded" in out
    assert "STEP" in out and "TEMPLATE" in out and "├─✔ A" in out and "└─✔ D" in out
    assert "Status:     Succeeded" in out
    assert order.read_text().split()[0] == "A"


def test_failed_workflow_exits_1_and_shows_the_failing_log(tmp_path: Path) -> None:
    proc = cli(
        str(WORKFLOWS / "fanout-aggregate.yaml"),
        "-p",
        "aggregate-exit=1",
        "--run-dir",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Status:     Failed" in proc.stdout
    assert "aggregating" in proc.stdout  # last log lines of the failed node


def test_unsupported_workflow_exits_2_naming_the_feature(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = cli(str(WORKFLOWS / "unsupported.yaml"), "-p", f"marker={marker}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "resource.manifest: v1 ConfigMap: not supported by the embedded engine" in proc.stdout
    assert not marker.exists()


def test_secrets_file_and_warm_workers(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: edge-creds}\nstringData: {token: abc123xyz}\n"
    )
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: cli-secret}\nspec:\n"
        "  entrypoint: main\n  templates:\n  - name: main\n    container:\n      image: x\n"
        "      command: [edgefed-test-step, env, TOKEN]\n"
        "      env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: edge-creds, key: token}}}]\n"
    )
    repo = Path(__file__).resolve().parents[4]
    args = [str(wf), "--secrets", str(secrets), "--run-dir", str(tmp_path / "runs")]
    args += [
        "--warm",
        "edgefed-test-step=tests.workflows.embedded.engine.warm_target:run",
        "--warm-workers",
        "1",
    ]
    env_run = subprocess.run(
        [sys.executable, "-m", "edgefed.workflows.cli", "engine", "run", *args],
        capture_output=True,
        text=True,
        cwd=repo,  # so the spawned workers can import tests...warm_target
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=120,
    )
    assert env_run.returncode == 0, env_run.stdout + env_run.stderr
    assert "abc123xyz" not in env_run.stdout + env_run.stderr
    log = next((tmp_path / "runs").rglob("main.log")).read_text()
    assert log.strip() == "[redacted]"
