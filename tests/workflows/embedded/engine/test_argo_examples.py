"""Argo's own examples, run verbatim (``workflows/argo-examples/``, copied from argo-workflows v4.1.2).

Each asserts what Argo itself would give: node names, phases, what each pod printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefed.workflows.embedded.engine import Node, WorkflowResult, load_document, render_report
from tests.workflows.embedded.engine.helpers import WORKFLOWS

EXAMPLES = WORKFLOWS / "argo-examples"


def example(name: str) -> dict[str, Any]:
    return load_document(EXAMPLES / f"{name}.yaml")


def printed(node: Node) -> str:
    assert node.log_path is not None
    return Path(node.log_path).read_text().strip()


def by_display(result: WorkflowResult) -> dict[str, Node]:
    return {n.display_name: n for n in result.nodes.values()}


def test_arguments_parameters_feed_the_entrypoint(run_workflow) -> None:
    """examples/arguments-parameters.yaml: the entrypoint's input comes from spec.arguments."""
    result = run_workflow(example("arguments-parameters"))
    assert result.phase == "Succeeded", render_report(result)
    root = result.nodes[result.root_id]
    assert root.inputs == {"message": "hello world"}
    assert printed(root) == "hello world"
    # argo submit examples/arguments-parameters.yaml -p message="goodbye world"
    result = run_workflow(example("arguments-parameters"), parameters={"message": "goodbye world"})
    assert printed(result.nodes[result.root_id]) == "goodbye world"


def test_loops_sequence(run_workflow) -> None:
    """examples/loops-sequence.yaml: count, start/end, a parameter as count, downwards, a format."""
    result = run_workflow(example("loops-sequence"))
    assert result.phase == "Succeeded", render_report(result)
    (group,) = result.find("[0]")
    items = [result.nodes[c] for c in group.children]
    expected = {
        "sequence-count": [str(i) for i in range(5)],
        "sequence-start-end": [str(i) for i in range(100, 106)],
        "sequence-param": ["200", "201", "202"],  # count: "{{workflow.parameters.count}}" is 3
        "sequence-negative": ["5", "4", "3", "2", "1", "0"],
        "sequence-format": [f"testuser{i:02X}" for i in range(5)],  # format: testuser%02X
    }
    for step, values in expected.items():
        mine = [n for n in items if n.display_name.startswith(step + "(")]
        assert [n.display_name for n in mine] == [f"{step}({i}:{v})" for i, v in enumerate(values)]
        assert [n.inputs["msg"] for n in mine] == values  # items are strings
        assert [printed(n) for n in mine] == values


def _order(events: list[tuple[str, str]], name: str, phase: str) -> int:
    return next(i for i, (n, p) in enumerate(events) if n == name and p == phase)


def test_exit_handler_dag_level(run_workflow) -> None:
    """examples/exit-handler-dag-level.yaml: every task's onExit runs after it, before its dependents."""
    events: list[tuple[str, str]] = []
    result = run_workflow(
        example("exit-handler-dag-level"), on_node=lambda n: events.append((n.display_name, n.phase))
    )
    assert result.phase == "Succeeded", render_report(result)
    nodes = by_display(result)
    for task in "ABCD":
        hook = nodes[f"{task}.onExit"]
        assert hook.name == f"{result.name}.{task}.onExit" and hook.template_name == "exit"
        assert hook.parent_id == nodes[task].id and hook.phase == "Succeeded"
        assert printed(hook) == "task cleanup" and printed(nodes[task]) == task
    # B and C depend on A: they start once A's exit handler is done (CheckAllHooksFullfilled)
    for task in "BC":
        assert _order(events, "A.onExit", "Succeeded") < _order(events, task, "Running")
    assert max(_order(events, "B.onExit", "Succeeded"), _order(events, "C.onExit", "Succeeded")) < _order(
        events, "D", "Running"
    )


def test_exit_handler_step_level(run_workflow) -> None:
    """examples/exit-handler-step-level.yaml: hooks.exit on steps; the next group waits for them."""
    events: list[tuple[str, str]] = []
    result = run_workflow(
        example("exit-handler-step-level"), on_node=lambda n: events.append((n.display_name, n.phase))
    )
    assert result.phase == "Succeeded", render_report(result)
    nodes = by_display(result)
    for step in ("hello1", "hello2a", "hello2b"):
        assert nodes[f"{step}.onExit"].parent_id == nodes[step].id
        assert printed(nodes[f"{step}.onExit"]) == "step cleanup"
    assert _order(events, "hello1.onExit", "Succeeded") < _order(events, "hello2a", "Running")


def test_exit_handler_with_param(run_workflow) -> None:
    """examples/exit-handler-with-param.yaml: hooks.exit.arguments see the step's own outputs."""
    result = run_workflow(example("exit-handler-with-param"))
    assert result.phase == "Succeeded", render_report(result)
    hook = by_display(result)["step-1.onExit"]
    assert hook.inputs == {"message": "hello world"}
    assert printed(hook) == "hello world"


def test_expression_destructure_json(run_workflow) -> None:
    """examples/expression-destructure-json.yaml: jsonpath() in the entrypoint's input values."""
    result = run_workflow(example("expression-destructure-json"))
    assert result.phase == "Succeeded", render_report(result)
    root = result.nodes[result.root_id]
    assert root.inputs == {"a": "1", "b": "2", "c": "3"}
    assert printed(root) == "123"


def test_expression_reusing_verbose_snippets(run_workflow) -> None:
    """examples/expression-reusing-verbose-snippets.yaml: map, #[i], sprig.b64dec/add/min/max, toJson."""
    result = run_workflow(example("expression-reusing-verbose-snippets"))
    assert result.phase == "Succeeded", render_report(result)
    root = result.nodes[result.root_id]
    # temps [34, 27, 15, 57, 46]: sprig.add gives an int64 179, "/ 5" a float; Go's JSON keys sorted
    assert root.inputs["week-temps"] == '{"avg":35.8,"max":57,"min":15}'
    assert (
        printed(root) == "The week's average temperature was 35.8 with a minimum of 15 and a maximum of 57."
    )


def test_retry_conditional(run_workflow) -> None:
    """examples/retry-conditional.yaml: retried while the exit code is 2 (random 1 or 2), up to 10 times."""
    result = run_workflow(example("retry-conditional"))
    assert result.phase == "Failed", render_report(result)
    (retry,) = result.find("retry")
    attempts = [result.nodes[c] for c in retry.children]
    codes = [a.outputs["exitCode"] for a in attempts]
    assert all(code == "2" for code in codes[:-1]), codes
    if codes[-1] == "1":  # asInt(lastRetry.exitCode) > 1 is false: no retry
        assert retry.message == "retryStrategy.expression evaluated to false"
    else:  # 11 attempts all exiting 2 (p = 1/2048): the limit ends it
        assert len(attempts) == 11
    assert retry.phase == "Failed"


def test_withsequence_nested_result(run_workflow) -> None:
    """examples/withsequence-nested-result.yaml: a sequence's end from a previous step's result."""
    result = run_workflow(example("withsequence-nested-result"))
    assert result.phase == "Succeeded", render_report(result)
    (a,) = result.find("hello-a")
    end = int(a.outputs["result"])
    (group,) = [g for g in result.find("[1]") if g.parent_id == result.root_id]
    items = [result.nodes[c].display_name for c in group.children]
    values = list(range(1, end + 1)) if end >= 1 else [1, 0]  # start 1, end 0: counts down
    assert items == [f"hello-b({i}:{v})" for i, v in enumerate(values)]
