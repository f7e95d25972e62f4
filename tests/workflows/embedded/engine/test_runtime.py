"""Steps, retries, deadlines, exit handlers, variables, secrets, parallelism and path mapping."""

from __future__ import annotations

import base64
import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import StaticSecretResolver, load_secret_manifests, render_report
from tests.workflows.embedded.engine.helpers import load, phases


def pod_doc(template: dict[str, Any], name: str = "pod", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", **template}], **spec},
    }


def test_steps_when_outputs_fan_out_and_continue_on(run_workflow) -> None:
    result = run_workflow("steps-coinflip")
    assert result.phase == "Succeeded", render_report(result)
    p = phases(result)
    assert p["heads"] == "Succeeded" and p["tails"] == "Skipped" and p["big"] == "Succeeded"
    assert p["may-fail"] == "Failed"  # continueOn.failed
    assert [n.type for n in result.find("[0]")] == ["StepGroup"]
    last = result.find("last")[0]
    assert last.name == f"{result.name}[3].last"
    assert last.inputs["msg"] == '["a", "b"]'  # aggregated results of the fanned-out step
    assert result.nodes[result.root_id].outputs["parameters"] == {"flipped": "heads"}

    result = run_workflow("steps-coinflip", parameters={"coin": "tails", "threshold": "3"})
    p = phases(result)
    assert p["heads"] == "Skipped" and p["tails"] == "Succeeded" and p["big"] == "Skipped"


def test_failed_step_fails_the_steps_template(run_workflow) -> None:
    doc = load("steps-coinflip")
    del doc["spec"]["templates"][0]["steps"][2][1]["continueOn"]
    result = run_workflow(doc)
    assert result.phase == "Failed"
    assert "may-fail" in result.message
    assert not result.find("last")  # later step groups never run


def test_retries_with_backoff(run_workflow, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.mkdir()
    result = run_workflow("retry-backoff", parameters={"counter-dir": str(counter)})
    assert result.phase == "Succeeded", render_report(result)
    assert (counter / "count").read_text() == "3"
    retry = result.find("flaky")[0]
    assert retry.type == "Retry"
    attempts = [result.nodes[c] for c in retry.children]
    assert [a.display_name for a in attempts] == ["flaky(0)", "flaky(1)", "flaky(2)"]
    assert [a.phase for a in attempts] == ["Failed", "Failed", "Succeeded"]
    assert attempts[2].log_path.read_text().strip() == "attempt 2 retries=2"
    # backoff 200ms, then 400ms (factor 2), as the attempts' own records show
    gaps = [(b.started_at - a.finished_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps


def test_retry_limit_and_policy(run_workflow, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    result = run_workflow("retry-backoff", parameters={"counter-dir": str(tmp_path / "a"), "limit": "1"})
    assert result.phase == "Failed"
    assert [result.nodes[c].phase for c in result.find("flaky")[0].children] == ["Failed", "Failed"]
    (tmp_path / "b").mkdir()
    result = run_workflow(
        "retry-backoff", parameters={"counter-dir": str(tmp_path / "b"), "policy": "OnError"}
    )
    assert result.phase == "Failed"
    assert len(result.find("flaky")[0].children) == 1  # Failed is not retried under OnError


def test_template_deadline_kills_the_process_group(run_workflow) -> None:
    result = run_workflow("deadline")
    node = result.node_by_name("deadline.sleepy")
    assert node.phase == "Failed"
    assert node.message == "Pod was active on the node longer than the specified deadline"
    assert result.phase == "Failed"
    assert "sleeping" in node.log_path.read_text()


def test_workflow_deadline(run_workflow) -> None:
    doc = load("deadline")
    del doc["spec"]["templates"][1]["activeDeadlineSeconds"]
    doc["spec"]["activeDeadlineSeconds"] = 1
    result = run_workflow(doc)
    assert result.phase == "Failed"
    assert result.node_by_name("deadline.sleepy").message == "Step exceeded its deadline"
    assert "deadline" in result.message


def test_exit_handler_sees_workflow_status(run_workflow) -> None:
    result = run_workflow("exit-handler")
    assert result.phase == "Failed"
    exit_node = result.nodes[result.exit_handler_id]
    assert exit_node.name == f"{result.name}.onExit" and exit_node.phase == "Succeeded"
    assert result.find("notify")[0].outputs["result"] == "status=Failed"
    assert result.find("cry")[0].phase == "Succeeded" and result.find("celebrate")[0].phase == "Skipped"

    result = run_workflow("exit-handler", parameters={"main-exit": "0"})
    assert result.phase == "Succeeded"
    assert result.find("notify")[0].outputs["result"] == "status=Succeeded"
    assert result.find("celebrate")[0].phase == "Succeeded"


def test_failing_exit_handler_fails_a_succeeded_workflow(run_workflow) -> None:
    result = run_workflow("exit-handler", parameters={"main-exit": "0", "handler-exit": "4"})
    assert result.nodes[result.root_id].phase == "Succeeded"
    assert result.nodes[result.exit_handler_id].phase == "Failed"
    assert result.phase == "Failed"


def test_unresolved_variable_errors_the_node(run_workflow) -> None:
    doc = pod_doc(
        {"container": {"image": "x", "command": ["echo", "{{inputs.parameters.nope}}", "{{ bogus }}"]}}
    )
    result = run_workflow(doc)
    assert result.phase == "Error"
    node = result.nodes[result.root_id]
    assert node.phase == "Error"
    assert "{{inputs.parameters.nope}}" in node.message and "{{bogus}}" in node.message
    # and in a task argument
    doc = load("dag-diamond")
    doc["spec"]["templates"][1]["dag"]["tasks"][1]["arguments"]["parameters"][0]["value"] = (
        "{{tasks.A.outputs.x}}"
    )
    result = run_workflow(doc, parameters={"order-file": "/dev/null"})
    b = result.find("B")[0]
    assert b.phase == "Error" and "{{tasks.A.outputs.x}}" in b.message
    assert result.phase == "Error"


def test_missing_input_and_enum(run_workflow) -> None:
    doc = pod_doc(
        {
            "inputs": {"parameters": [{"name": "x", "enum": ["a", "b"], "default": "c"}]},
            "container": {"image": "x", "command": ["true"]},
        }
    )
    result = run_workflow(doc)
    assert result.phase == "Error" and "not in enum" in result.nodes[result.root_id].message


SECRET = "s3cr3t-Value-42"


def secret_doc(marker: Path) -> dict[str, Any]:
    return pod_doc(
        {
            "script": {
                "image": "python",
                "command": ["python"],
                "env": [
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "edge-creds", "key": "token"}}},
                    {
                        "name": "MAYBE",
                        "valueFrom": {"secretKeyRef": {"name": "x", "key": "y", "optional": True}},
                    },
                    {"name": "PLAIN", "value": "{{workflow.name}}"},
                ],
                "source": (
                    "import hashlib, os, pathlib\n"
                    "digest = hashlib.sha256(os.environ['TOKEN'].encode()).hexdigest()\n"
                    "pathlib.Path('{{workflow.parameters.marker}}').write_text(digest)\n"
                    "print('token is', os.environ['TOKEN'], 'plain', os.environ['PLAIN'])\n"
                    "print('maybe' in os.environ, 'MAYBE' in os.environ)\n"
                ),
            }
        },
        name="secrets",
        arguments={"parameters": [{"name": "marker", "value": str(marker)}]},
    )


def test_secrets_are_resolved_and_never_written(run_workflow, tmp_path: Path) -> None:
    marker = tmp_path / "ok"
    resolver = StaticSecretResolver({"edge-creds": {"token": SECRET}})
    result = run_workflow(secret_doc(marker), secret_resolver=resolver)
    assert result.phase == "Succeeded", render_report(result)
    assert marker.read_text() == hashlib.sha256(SECRET.encode()).hexdigest()
    log = result.nodes[result.root_id].log_path.read_text()
    assert "token is [redacted] plain secrets" in log
    assert "False False" in log
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in render_report(result) and SECRET not in repr(result) and SECRET not in repr(resolver)


def test_missing_secret_errors_naming_it(run_workflow, tmp_path: Path) -> None:
    result = run_workflow(secret_doc(tmp_path / "ok"), secret_resolver=StaticSecretResolver({}))
    node = result.nodes[result.root_id]
    assert node.phase == "Error"
    assert node.message == "env TOKEN: secret 'edge-creds' key 'token' not found"
    assert not (tmp_path / "ok").exists()


def test_load_secret_manifests(tmp_path: Path) -> None:
    f = tmp_path / "secrets.yaml"
    encoded = base64.b64encode(b"from-data").decode()
    f.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {k1: plain}\n---\n"
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: b}}\ndata: {{k2: {encoded}}}\n"
    )
    resolver = load_secret_manifests(f)
    assert resolver("a", "k1") == "plain" and resolver("b", "k2") == "from-data"
    assert resolver("a", "k2") is None and resolver("zz", "k1") is None


@pytest.mark.parametrize(
    ("engine_limit", "spec_limit", "template_limit", "expected"),
    [(2, None, None, 2), (4, 1, None, 1), (4, None, 3, 3)],
)
def test_parallelism_bounds_concurrent_processes(
    run_workflow,
    tmp_path: Path,
    engine_limit: int,
    spec_limit: int | None,
    template_limit: int | None,
    expected: int,
) -> None:
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    doc = load("fanout-aggregate")
    tasks = doc["spec"]["templates"][3]["dag"]["tasks"]
    tasks[0]["withParam"] = '["a", "b", "c", "d", "e"]'
    # A literal /tmp path in the source would be mapped to the node's private tmp: pass it as a parameter.
    doc["spec"]["arguments"]["parameters"].append({"name": "stamps", "value": str(stamps)})
    doc["spec"]["templates"][0]["script"]["source"] = (
        "import time, pathlib\n"
        "d = pathlib.Path('{{workflow.parameters.stamps}}')\n"
        "(d / 'start-{{inputs.parameters.edge}}').write_text(repr(time.time()))\n"
        "time.sleep(0.3)\n"
        "(d / 'end-{{inputs.parameters.edge}}').write_text(repr(time.time()))\n"
        "pathlib.Path('/tmp/outputs').mkdir(parents=True, exist_ok=True)\n"
        "pathlib.Path('/tmp/outputs/model').write_text('m')\n"
    )
    if spec_limit is not None:
        doc["spec"]["parallelism"] = spec_limit
    if template_limit is not None:
        doc["spec"]["templates"][3]["parallelism"] = template_limit
    result = run_workflow(doc, parallelism=engine_limit)
    assert result.phase == "Succeeded", render_report(result)
    spans = [
        (float((stamps / f"start-{e}").read_text()), float((stamps / f"end-{e}").read_text()))
        for e in "abcde"
    ]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most == expected


def test_tmp_paths_are_private_to_each_node(run_workflow, tmp_path: Path) -> None:
    result = run_workflow("fanout-aggregate", parameters={"failing-edge": "none"})
    assert result.phase == "Succeeded"
    for edge in ("cleveland", "hungary", "va"):
        node = result.find(f"train({['cleveland', 'hungary', 'va'].index(edge)}:{edge})")[0]
        assert node.outputs["parameters"]["model"] == f"model-{edge}"
        node_dir = node.log_path.parent
        assert (node_dir / "tmp" / "outputs" / "model").read_text() == f"model-{edge}"
    assert not Path("/tmp/outputs/model").exists() or Path("/tmp/outputs/model").read_text() not in (
        "model-cleveland",
        "model-hungary",
        "model-va",
    )


@pytest.mark.parametrize("policy", ["Always", "OnError"])
def test_error_attempts_are_retried(run_workflow, policy: str) -> None:
    doc = pod_doc(
        {
            "retryStrategy": {"limit": 2, "retryPolicy": policy},
            "container": {"image": "x", "command": ["/nonexistent/edgefed-missing"]},
        }
    )
    result = run_workflow(doc)
    retry = result.nodes[result.root_id]
    assert retry.type == "Retry" and retry.phase == "Error"
    assert [result.nodes[c].phase for c in retry.children] == ["Error", "Error", "Error"]
    assert result.phase == "Error"


def test_downward_api_and_dependent_variables_as_the_kubelet_expands_them(run_workflow) -> None:
    """``fieldRef`` env comes from the pod's node (this host), and ``$(VAR)`` in args and env values
    expands from the container's own env -- ``$$`` escapes, undefined names stay as written."""
    doc = pod_doc(
        {
            "container": {
                "image": "python",
                "command": ["python", "-c", "import sys; print('argv', sys.argv[1:])"],
                "args": [
                    "--store=http://$(NODE_IP):9000",
                    "--pod=$(POD)",
                    "--literal=$$(NODE_IP)",
                    "--undefined=$(NOT_SET)",
                    "--url=$(URL)",
                ],
                "env": [
                    {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "URL", "value": "https://$(NODE_IP):443"},
                ],
            }
        }
    )
    result = run_workflow(doc)
    assert result.phase == "Succeeded", render_report(result)
    node = result.nodes[result.root_id]
    log = node.log_path.read_text()
    assert (
        f"argv ['--store=http://127.0.0.1:9000', '--pod={node.pod_name}', '--literal=$(NODE_IP)', "
        "'--undefined=$(NOT_SET)', '--url=https://127.0.0.1:443']" in log
    )


def test_a_field_the_downward_api_does_not_have_here_is_refused(run_workflow) -> None:
    doc = pod_doc(
        {
            "container": {
                "image": "x",
                "command": ["true"],
                "env": [{"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}],
            }
        }
    )
    with pytest.raises(
        Exception, match=r"fieldRef.fieldPath: expected one of metadata.name, .*'metadata.uid'"
    ):
        run_workflow(doc)
