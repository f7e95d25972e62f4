"""Argo's expression language (``{{=...}}``, ``retryStrategy.expression``) and Go's renderings."""

from __future__ import annotations

import re
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import (
    Engine,
    UnsupportedFeatureError,
    WorkflowInvalidError,
    render_report,
)
from edgefed.workflows.embedded.engine.expr import (
    ExprError,
    ExprEvalError,
    ExprMissingError,
    ExprSyntaxError,
    ExprUnsupportedError,
    compile_expression,
    evaluate_bool,
    render_tag,
)
from edgefed.workflows.embedded.engine.gofmt import format_float, sprint, sprintf_int, to_json
from edgefed.workflows.embedded.engine.params import substitute

SCOPE = {
    "inputs.parameters.n": "3",
    "inputs.parameters.my-param": "hi",
    "inputs.parameters": '[{"name":"n","value":"3"}]',
    "workflow.parameters.config": '{"a": "1", "b": 2, "c": [1, 2, 3], "d": {"e": "f"}}',
    "workflow.name": "wf",
    "tasks.gen-x.outputs.result": "[1, 2, 3]",
    "steps.flip.outputs.result": "heads",
    "item": "5",
    "item2.k": "v",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # literals and arithmetic, Go's types: int stays int, / gives a float, % truncates toward zero
        ("1 + 2 * 3", "7"),
        ("10 / 4", "2.5"),
        ("10 / 5", "2"),
        ("-7 % 3", "-1"),
        ("2 ** 10", "1024"),
        ("-2 ** 2", "-4"),
        ("0x1F + 0b11 + 0o7", "41"),
        ("1_000 + .5", "1000.5"),
        ("'a' + \"b\" + `c\\n`", "abc\\n"),
        ("'tab\\there'", "tab\there"),
        ("[1, 'two', true, nil]", '[1,"two",true,null]'),
        ("{b: 1, 'a-b': [2.5]}", '{"a-b":[2.5],"b":1}'),
        ("1..3", "[1,2,3]"),
        # comparison and logic
        ("1 == 1.0 && 'a' != 'b'", "true"),
        ("1 == '1'", "false"),
        ("[1, 2] == [1, 2]", "true"),
        ("1 < 2 < 3", "true"),
        ("'abc' < 'abd'", "true"),
        ("not (1 > 2) and true or false", "true"),
        ("!true || false", "false"),
        ("3 in [1, 2, 3] && 4 not in [1, 2]", "true"),
        ("'k' in {k: 1}", "true"),
        ("'heads' matches '^h' && 'abc' contains 'b' && 'abc' startsWith 'a' && 'abc' endsWith 'c'", "true"),
        ("'abc' not contains 'x'", "true"),
        ("asInt(item) > 2 ? 'big' : 'small'", "big"),
        ("false ?: 'fallback'", "fallback"),
        ("(1 < 2) ?: 'fallback'", "true"),
        ("nil ?? 'x'", "x"),
        # variables, structured as Argo's env; hyphenated names by index
        ("asInt(inputs.parameters.n) * 10", "30"),
        ("inputs.parameters['my-param'] + '!'", "hi!"),
        ("inputs.parameters.missing ?? 'default'", "default"),
        ("len(fromJSON(tasks['gen-x'].outputs.result))", "3"),
        ("steps.flip.outputs.result == 'heads'", "true"),
        ("workflow.name", "wf"),
        ("item2.k", "v"),
        ("inputs?.nothing?.here", None),  # nil: an error where strict (below)
        # functions: Argo's, expr-lang's built-ins, sprig
        ("asFloat('2.5') * 2", "5"),
        ("int('42') + float('0.5')", "42.5"),
        ("string(1.5) + string(2) + string([1, 'a'])", "1.52[1 a]"),
        ("toJson(filter([1, 3], {# > 1}))", "[3]"),
        ("toJSON({a: [1]})", '{\n  "a": [\n    1\n  ]\n}'),
        ("jsonpath(workflow.parameters.config, '$.a')", "1"),
        ("jsonpath(workflow.parameters.config, '$.b') + 1", "3"),
        ("jsonpath(workflow.parameters.config, '$.c[-1]')", "3"),
        ("jsonpath(workflow.parameters.config, '$.c[*]')", "[1,2,3]"),
        ("jsonpath(workflow.parameters.config, \"$['d'].e\")", "f"),
        ("len('héllo') + len([1]) + len({a: 1})", "7"),
        ("ceil(1.2) + floor(1.8) + round(2.5)", "6"),
        ("map([1, 2, 3], {# * 2})", "[2,4,6]"),
        ("all([1, 2], # > 0) && any([1, 2], # > 1) && none([1], # > 1) && one([1, 2], # > 1)", "true"),
        ("count([1, 2, 3], # > 1) + sum([1, 2, 3]) + findIndex([5, 6], # == 6)", "9"),
        ("reduce([1, 2, 3], #acc + #, 10)", "16"),
        ("map([{n: 1}, {n: 2}], .n)", "[1,2]"),
        ("first([]) ?? last([7, 8])", "8"),
        ("join(split('a,b', ','), '-') + upper('x') + trim('  y ')", "a-bXy"),
        ("indexOf('héllo', 'l')", "3"),  # a byte offset, as Go's strings.Index
        ("sort([3, 1, 2], 'desc')", "[3,2,1]"),
        ("keys({b: 1, a: 2})", '["a","b"]'),
        ("sprig.upper('a') + sprig.trim(' b ') + sprig.replace('x', 'y', 'axa')", "Abaya"),
        ("sprig.default('d', '') + sprig.default('d', 'given')", "dgiven"),
        ("sprig.contains('b', 'abc') && sprig.hasPrefix('a', 'abc') && sprig.hasSuffix('c', 'abc')", "true"),
        ("sprig.int('12') + sprig.atoi('x') + sprig.int64('3.0') + sprig.add(1, 2.9, '3')", "21"),
        ("sprig.float64('1.5') + sprig.div(7, -2) + sprig.mod(-7, 3)", "-2.5"),
        ("sprig.toString(1.0) + sprig.squote('a') + sprig.quote('b')", "1'a'\"b\""),
        ("sprig.b64dec(sprig.b64enc('hi'))", "hi"),
    ],
)
def test_expressions(text: str, expected: str | None) -> None:
    assert render_tag(text, SCOPE, strict=False) == expected


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("inputs.parameters.typo", ExprMissingError, "inputs.parameters.typo is missing"),
        ("tasks.gen.outputs.result", ExprMissingError, "tasks.gen is missing"),
        ("inputs?.nothing?.here", ExprEvalError, "the result is nil"),
        ("asInt('1.5')", ExprEvalError, "invalid operation: int(1.5)"),
        ("'a' + 1", ExprEvalError, "invalid operation: string + int"),
        ("1 < 'a'", ExprEvalError, "invalid operation: int < string"),
        ("[1][3]", ExprEvalError, "index out of range: 3 (array length is 1)"),
        ("1 / 0", ExprEvalError, "json: unsupported value: +Inf"),
        ("1 && true", ExprEvalError, "type int is not bool"),
        ("nil ?: 'x'", ExprEvalError, "non-bool condition of ?:"),
        ("jsonpath('{}', '$.x')", ExprEvalError, "jsonpath: key: invalid token key 'x' not found"),
    ],
)
def test_strict_errors(text: str, error: type[ExprError], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        render_tag(text, SCOPE, strict=True)
    assert render_tag(text, SCOPE, strict=False) is None  # left as written for a later pass


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("let x = 1; x", ExprUnsupportedError, "'let' variables"),
        ("if true { 1 } else { 2 }", ExprUnsupportedError, "'if {} else {}'"),
        ("x | upper()", ExprUnsupportedError, "the pipe operator '|'"),
        ("1; 2", ExprUnsupportedError, "a ';' sequence"),
        ("now()", ExprUnsupportedError, "the built-in function now()"),
        ("x.Year()", ExprUnsupportedError, "method calls (Year()"),
        ("$env['x']", ExprUnsupportedError, "$env"),
        ("b'x'", ExprUnsupportedError, "byte strings"),
        (
            "sprig.date('2006', x)",
            ExprUnsupportedError,
            "sprig.date() is not supported by the embedded engine",
        ),
        ("foo(1)", ExprSyntaxError, "unknown function foo()"),
        ("1 +", ExprSyntaxError, "unexpected end of expression"),
        ("(1", ExprSyntaxError, "unexpected end of expression"),
        ("'a", ExprSyntaxError, "literal not terminated"),
        ("a ?? b + c", ExprSyntaxError, "coalesce expressions (??) cannot be mixed"),
        ("1 ~ 2", ExprSyntaxError, "unrecognized character: '~'"),
    ],
)
def test_refused_when_parsed(text: str, error: type[ExprError], message: str) -> None:
    with pytest.raises(error) as info:
        compile_expression(text)
    assert message in str(info.value)


def test_retry_expression_of_the_task_workflow() -> None:
    """The lead's generated expression: transient codes retry, 2/3/4 (bad input, contract) do not."""
    text = "asInt(lastRetry.exitCode) not in [2, 3, 4]"
    assert [evaluate_bool(text, {"lastRetry.exitCode": str(c)}) for c in (1, 2, 3, 4, 137, -1)] == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    with pytest.raises(ExprEvalError, match="unable to cast expression result '1' to bool"):
        evaluate_bool("1", {})


def test_substitution_mixes_both_kinds_of_tags() -> None:
    text = "n={{inputs.parameters.n}} x10={{=asInt(inputs.parameters.n) * 10}} {{ =not-an-expression }}"
    assert substitute(text, SCOPE, strict=False) == "n=3 x10=30 {{ =not-an-expression }}"
    with pytest.raises(ExprMissingError, match=r"inputs.parameters.x is missing \(in container.args\)"):
        substitute("{{=inputs.parameters.x}}", SCOPE, where="container.args")


@pytest.mark.parametrize(
    ("value", "g", "json"),
    [
        (1.0, "1", "1"),
        (1e6, "1e+06", "1000000"),
        (999999.0, "999999", "999999"),
        (1e21, "1e+21", "1e+21"),
        (1e-7, "1e-07", "1e-7"),
        (0.0001, "0.0001", "0.0001"),
        (0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
        (-2.5, "-2.5", "-2.5"),
    ],
)
def test_go_floats(value: float, g: str, json: str) -> None:
    assert format_float(value, "g") == sprint(value) == g
    assert to_json(value) == json


def test_go_renderings() -> None:
    assert sprint([1, 2.0, "x", {"b": None, "a": True}]) == "[1 2 x map[a:true b:<nil>]]"
    assert to_json({"b": ["<&>"], "a": {}}) == '{"a":{},"b":["\\u003c\\u0026\\u003e"]}'
    assert [sprintf_int(f, 10) for f in ("%d", "%03d", "%x", "%X", "%-4d|", "%+d", "%o", "%b", "%c")] == [
        "10",
        "010",
        "a",
        "A",
        "10  |",
        "+10",
        "12",
        "1010",
        "\n",
    ]
    assert sprintf_int("%s", 1) == "%!s(int=1)"
    assert sprintf_int("no-verb", 1) == "no-verb%!(EXTRA int=1)"
    assert sprintf_int("%d-%d", 1) == "1-%!d(MISSING)"
    assert sprintf_int("100%%-%d", 1) == "100%-1"


# ------------------------------------------------------------------------ tags everywhere, checked first


def doc(**main: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "x"},
        "spec": {
            "entrypoint": "main",
            "arguments": {
                "parameters": [{"name": "n", "value": "3"}, {"name": "list", "value": "[1, 5, 9]"}]
            },
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {
                                "name": "t",
                                "template": "echo",
                                "withParam": "{{=toJson(filter(fromJSON(workflow.parameters.list), # > 2))}}",
                                "when": "{{=asInt(item) != asInt(workflow.parameters.n) * 3}}",
                                "arguments": {
                                    "parameters": [{"name": "msg", "value": "{{=asInt(item) * 2}}"}]
                                },
                            }
                        ]
                    },
                    **main,
                },
                {
                    "name": "echo",
                    "inputs": {"parameters": [{"name": "msg"}]},
                    "container": {
                        "image": "alpine",
                        "command": ["echo", "{{=sprig.upper('m')}}{{inputs.parameters.msg}}"],
                    },
                },
            ],
        },
    }


def test_tags_in_with_param_when_arguments_and_container(run_workflow) -> None:
    result = run_workflow(doc())
    assert result.phase == "Succeeded", render_report(result)
    items = {n.display_name: n for n in result.nodes.values() if n.display_name.startswith("t(")}
    assert items["t(0:5)"].phase == "Succeeded" and items["t(1:9)"].phase == "Skipped"
    assert items["t(1:9)"].message == "when 'false' evaluated false"
    assert items["t(0:5)"].log_path.read_text().strip() == "M10"


def test_expressions_are_checked_up_front_with_their_path() -> None:
    bad = doc()
    tasks = bad["spec"]["templates"][0]["dag"]["tasks"]
    tasks[0]["when"] = "{{=now() > 1}}"
    tasks[0]["arguments"]["parameters"][0]["value"] = "{{=asInt(item) +}}"
    with pytest.raises(UnsupportedFeatureError) as info:
        Engine.check(bad)
    text = str(info.value)
    where = "spec.templates[0] (name: main).dag.tasks[0] (name: t)"
    assert (
        f"{where}.when: expression '{{{{=now() > 1}}}}': the built-in function now() (at position 0) is not "
        "supported by the embedded engine" in text
    )
    assert (
        f"{where}.arguments.parameters[0] (name: msg).value: invalid expression '{{{{=asInt(item) +}}}}': "
        "unexpected end of expression" in text
    )
    only_invalid = doc()
    only_invalid["spec"]["templates"][1]["container"]["command"][1] = "{{=nosuch(1)}}"
    with pytest.raises(
        WorkflowInvalidError, match=r"container.command\[1\]: invalid expression .* unknown function"
    ):
        Engine.check(only_invalid)


def test_a_failing_expression_errors_its_node(run_workflow) -> None:
    failing = doc()
    failing["spec"]["templates"][1]["container"]["command"][1] = "{{=asInt(inputs.parameters.msg) / 0}}"
    result = run_workflow(failing)
    (pod,) = [n for n in result.nodes.values() if n.display_name == "t(0:5)"]
    assert pod.phase == "Error"
    assert "failed to marshal evaluated expression: json: unsupported value: +Inf" in pod.message


def test_when_is_decided_before_the_arguments_are_resolved(run_workflow) -> None:
    """dag.go resolveDependencyReferences: a task whose ``when`` is false is skipped as it is, its
    arguments (here an expression naming a variable that does not exist) never resolved."""
    skipped = doc()
    task = skipped["spec"]["templates"][0]["dag"]["tasks"][0]
    task["when"] = "{{=asInt(item) > 100}}"
    task["arguments"]["parameters"][0]["value"] = "{{=tasks.nothing.outputs.result}}"
    result = run_workflow(skipped)
    assert {n.phase for n in result.nodes.values() if n.display_name.startswith("t(")} == {"Skipped"}
    assert result.phase == "Succeeded"
