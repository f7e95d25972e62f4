"""`make demo`'s command end to end: it trains, lands within 3 points of centralized, and leaves nothing running."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgefed.workflows.embedded.store import EmbeddedStore
from tests.helpers import edgefed


@pytest.mark.slow
def test_demo_trains_within_three_points_of_centralized_and_cleans_up(tmp_path):
    home = tmp_path / "home"
    result = edgefed("demo", home=home, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert (
        len(re.findall(r"^round +\d+ +accuracy 0\.\d+", out, flags=re.M)) >= 10
    )  # each round's central accuracy
    federated = float(re.search(r"federated accuracy .*: (0\.\d+)", out).group(1))
    centralized = float(re.search(r"centralized logistic regression .*: (0\.\d+)", out).group(1))
    assert abs(federated - centralized) <= 0.03, (federated, centralized)
    task = re.search(r"edgefed models list (heart-demo-[\d-]+)", out).group(1)
    # it ends by pointing to the task's report and TensorBoard files, both written
    report = Path(re.search(r"^report: (\S+\.html) \(open it in a browser\)$", out, flags=re.M).group(1))
    assert report == (home / "reports" / f"{task}.html").resolve() and "Model lineage" in report.read_text()
    events = Path(re.search(r"^TensorBoard: tensorboard --logdir (\S+)$", out, flags=re.M).group(1))
    # per round: the aggregate's and the evaluation's
    assert len(list(events.glob("events.out.tfevents.*"))) >= 20
    assert not EmbeddedStore(home / "store").running  # the demo stops the store it started
    listed = edgefed("models", "list", task, "-o", "json", home=home, timeout=120)
    try:
        assert listed.returncode == 0 and f'"task": "{task}"' in listed.stdout
        again = edgefed("report", task, "--out", str(tmp_path / "again.html"), home=home, timeout=120)
        assert again.returncode == 0 and (tmp_path / "again.html").read_text().count("data:image/png") == 2
        missing = edgefed("report", "no-such-task", home=home, timeout=120)
        assert missing.returncode == 2 and "task 'no-such-task' has no committed model" in missing.stderr
    finally:
        edgefed("store", "stop", home=home, timeout=120)


@pytest.mark.slow
def test_demo_incremental_fires_on_new_rows_retrains_and_promotes_only_if_better(tmp_path):
    """``edgefed demo --incremental``: nothing new → no retraining; new rows at two hospitals → the trigger
    fires, the served model retrains, and what serves afterwards is what the rule says."""
    home = tmp_path / "home"
    result = edgefed("demo", "--incremental", home=home, timeout=900)
    out = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no retraining: no trigger fired" in out
    assert re.search(r"cleveland \+\d+ rows -> s3://edge-cleveland/heart/train.parquet", out)
    assert "trigger fired: edge cleveland has" in out
    served, candidate = re.search(r"retrained from round (\d+) to (\d+)", out).groups()
    verdict = re.search(
        r"(PROMOTED|NOT promoted): candidate round (\d+) accuracy (0\.\d+) (?:beats|does not beat) "
        r"the served round (\d+)'s (0\.\d+)",
        out,
    )
    assert verdict, out[-2000:]
    assert verdict.group(2) == candidate and verdict.group(4) == served
    better = float(verdict.group(3)) >= float(verdict.group(5))  # the example job's margin is 0
    assert (verdict.group(1) == "PROMOTED") is better
    task = re.search(r"edgefed models list (heart-demo-[\d-]+)", out).group(1)
    try:
        shown = edgefed("models", "show", task, "served", "-o", "json", home=home, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert str(json.loads(shown.stdout)["round"]) == (candidate if better else served)
    finally:
        edgefed("store", "stop", home=home, timeout=120)


@pytest.mark.slow
def test_edgefed_run_executes_the_generated_task_yaml_and_resumes_from_the_spec(tmp_path):
    """`edgefed generate` then `edgefed run out/task.yaml`: the very document `argo submit` would get,
    with the WorkflowTemplates beside it installed; the FederatedTask run afterwards continues it."""
    from tests.helpers import task_doc, write_task

    home = tmp_path / "home"
    doc = task_doc("gen-run", ("cleveland", "hungary"), rounds=3, quorum=2, stop={"maxRounds": 2})
    spec = write_task(tmp_path / "spec.yaml", doc)
    out = tmp_path / "out"
    try:
        assert edgefed("generate", str(spec), "-o", str(out), home=home, timeout=120).returncode == 0
        seeded = edgefed("data", "seed", "heart", "--task", str(spec), home=home, timeout=300)
        assert seeded.returncode == 0, seeded.stderr
        ran = edgefed("run", str(out / "task.yaml"), home=home, timeout=600)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert re.findall(r"^round +(\d+) ", ran.stdout, flags=re.M) == ["1", "2"]
        assert "gen-run-r00002-a1" in ran.stdout
        assert "stopped after round 2: all 2 rounds done" in ran.stdout
        # the spec now allows a third round: the FederatedTask run continues after round 2
        doc["spec"]["stop"] = {"maxRounds": 3}
        write_task(spec, doc)
        again = edgefed("run", str(spec), home=home, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "resuming after committed round 2" in again.stdout
        assert re.findall(r"^round +(\d+) ", again.stdout, flags=re.M) == ["3"]
    finally:
        edgefed("store", "stop", home=home, timeout=120)
