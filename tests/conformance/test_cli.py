"""python -m tests.conformance FILE...: exit codes, template references among the files; how problems print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance import SCHEMAS_ENV, ArgoSchemas, Problem, format_path, main
from tests.conformance.samples import TRAIN, base_workflow, dag_tasks, workflow_template, write_yaml
from tests.helpers import REPO


def test_format_path_and_problem() -> None:
    assert (
        format_path(("spec", "templates", 2, "dag", "tasks", 1, "depends"))
        == "spec.templates[2].dag.tasks[1].depends"
    )
    assert format_path(("metadata", "labels", "edgefed.io/task")) == 'metadata.labels["edgefed.io/task"]'
    assert format_path(()) == "(document)"
    assert str(Problem("spec.entrypoint", "missing")) == "spec.entrypoint: missing [lint]"


def test_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_yaml(tmp_path / "good.yaml", base_workflow())
    bad_doc = base_workflow()
    dag_tasks(bad_doc)[1]["depends"] = "ghost"
    bad = write_yaml(tmp_path / "bad.yaml", bad_doc)
    assert main(["--lint-only", str(good)]) == 0
    assert main(["--lint-only", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad} Workflow/t1-r00001-: spec.templates[2].dag.tasks[1].depends:" in out and "'ghost'" in out
    assert main(["--lint-only", str(tmp_path / "missing.yaml")]) == 2
    (tmp_path / "broken.yaml").write_text("a: [unclosed")
    assert main(["--lint-only", str(tmp_path / "broken.yaml")]) == 2
    assert main(["--schemas", str(tmp_path / "no-schemas"), str(good)]) == 2
    assert "no-schemas" in capsys.readouterr().err


def test_main_resolves_template_refs_among_its_files(tmp_path: Path, schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    dag_tasks(doc).append(
        {"name": "score", "depends": "aggregate", "templateRef": {"name": "scoring", "template": "score"}}
    )
    both = write_yaml(tmp_path / "both.yaml", doc, workflow_template("scoring", []))
    assert main(["--schemas", str(schemas.path), str(both)]) == 0


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    bad = base_workflow()
    bad["spec"]["templates"][TRAIN]["container"]["args"].append("{{inputs.parameters.nope}}")
    path = write_yaml(tmp_path / "bad.yaml", bad)
    result = subprocess.run(
        [sys.executable, "-m", "tests.conformance", "--lint-only", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "input parameter 'nope' is not declared" in result.stdout


def test_main_checks_without_the_published_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user without ../shared: the Hera-derived schema and the lint still run, and the output says so."""
    empty = tmp_path / "no-argo"
    empty.mkdir()
    monkeypatch.setenv(SCHEMAS_ENV, str(empty))
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["nodeSelecter"] = doc["spec"]["templates"][TRAIN].pop("nodeSelector")
    assert main([str(write_yaml(tmp_path / "good.yaml", base_workflow()))]) == 0
    assert main([str(write_yaml(tmp_path / "bad.yaml", doc))]) == 1
    captured = capsys.readouterr()
    assert "spec.templates[0].nodeSelecter: unknown field 'nodeSelecter'" in captured.out
    assert "[hera]" in captured.out and f"no published Argo schemas at {empty}" in captured.err


def test_main_resolves_template_refs_without_the_published_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a user without ../shared gets: Hera's closed schema and the lint, template refs resolved."""
    monkeypatch.setenv(SCHEMAS_ENV, str(tmp_path / "no-schemas"))
    doc = base_workflow()
    dag_tasks(doc).append(
        {"name": "score", "depends": "aggregate", "templateRef": {"name": "scoring", "template": "score"}}
    )
    both = write_yaml(tmp_path / "both.yaml", doc, workflow_template("scoring", []))
    assert main([str(both)]) == 0
    alone = write_yaml(tmp_path / "alone.yaml", doc)
    assert main([str(alone)]) == 1
    assert "scoring" in capsys.readouterr().out
