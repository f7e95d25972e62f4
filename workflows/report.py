"""A task's training, for people: its TensorBoard event files mirrored locally, and an HTML report.

* :func:`sync_events`: the event files the steps write into the models bucket
  (:mod:`edgefed.steps.events`) copied under ``<home>/tensorboard/<task>/``, for
  ``tensorboard --logdir``.
* :func:`render_report`: one self-contained HTML page (the PNG plots inline, no network, no script
  beyond a check that its images decoded): central accuracy and loss per round, each edge's contribution
  per round, the edges that sat a round out and why, and the model lineage, each round checked against
  the store (:meth:`~edgefed.steps.registry.ModelRegistry.audit`). Plots are matplotlib's (Agg backend).

Control plane: no TensorFlow here.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minio import Minio

from edgefed.steps import layout
from edgefed.steps.registry import ModelRegistry

__all__ = ["render_report", "sync_events"]


def sync_events(client: Minio, task: str, dest: Path) -> int:
    """Copy the task's event files not yet in ``dest``; returns how many were copied."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = 0
    prefix = layout.events_prefix(task)
    for obj in client.list_objects(layout.MODELS_BUCKET, prefix=prefix, recursive=True):
        target = dest / obj.object_name.removeprefix(prefix)
        if target.exists() and target.stat().st_size == obj.size:
            continue
        response = client.get_object(layout.MODELS_BUCKET, obj.object_name)
        try:
            target.write_bytes(response.read())
        finally:
            response.close()
            response.release_conn()
        copied += 1
    return copied


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(rounds: list[dict[str, Any]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    plots: dict[str, str] = {}
    evaluated = [r for r in rounds if r["evaluation"]]
    figure, (acc, loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    xs = [r["round"] for r in evaluated]
    metric = "accuracy" if any("accuracy" in r["evaluation"] for r in evaluated) else "mse"
    acc.plot(xs, [r["evaluation"].get(metric) for r in evaluated], marker="o", color="tab:blue")
    acc.set(title=f"central {metric} per round", xlabel="round", ylabel=metric)
    loss.plot(
        xs, [r["evaluation"].get("loss") for r in evaluated], marker="o", color="tab:red", label="central"
    )
    trained = [r for r in rounds if r["manifest"].get("metrics", {}).get("train_loss") is not None]
    loss.plot(
        [r["round"] for r in trained],
        [r["manifest"]["metrics"]["train_loss"] for r in trained],
        marker=".",
        color="tab:orange",
        label="training (edges, weighted)",
    )
    loss.set(title="loss per round", xlabel="round", ylabel="loss")
    loss.legend()
    for axes in (acc, loss):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    plots["curves"] = _png(figure)
    plt.close(figure)

    edges = sorted({c["edge"] for r in rounds for c in r["manifest"].get("contributors", [])})
    edges += sorted({m["edge"] for r in rounds for m in r["manifest"].get("missing", [])} - set(edges))
    trained_rounds = [r for r in rounds if r["round"] > 0]
    figure, axes = plt.subplots(figsize=(10, 0.35 * max(4, len(edges)) + 1.2))
    bottom = [0.0] * len(trained_rounds)
    colors = plt.get_cmap("tab20")
    for i, edge in enumerate(edges):
        heights = [
            next((c["examples"] for c in r["manifest"]["contributors"] if c["edge"] == edge), 0)
            for r in trained_rounds
        ]
        axes.bar(
            [r["round"] for r in trained_rounds], heights, bottom=bottom, label=edge, color=colors(i % 20)
        )
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set(title="examples each edge contributed, per round", xlabel="round", ylabel="examples")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if edges and len(edges) <= 30:
        axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    plots["contributions"] = _png(figure)
    plt.close(figure)
    return plots


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f3f3f3; text-align: left; } img { max-width: 100%; }
.bad { color: #b00; font-weight: bold; } .summary { font-size: 1.05em; }
"""

# Marks the page once every plot decoded: a browser test reads it (naturalWidth 0 = an image that failed).
_CHECK = """
window.addEventListener("load", () => {
  const images = [...document.images];
  const ok = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.images = ok + "/" + images.length;
});
"""


def render_report(registry: ModelRegistry, task: str) -> str:
    """The task's report as one HTML document (raises :class:`ValueError` if it has no committed round)."""
    audited = registry.audit(task)
    if not audited:
        raise ValueError(f"task {task!r} has no committed model")
    rounds = [
        {
            "round": a.round,
            "manifest": a.manifest,
            "problems": a.problems,
            "evaluation": registry.evaluation(task, a.round),
        }
        for a in audited
    ]
    plots = _plots(rounds)
    last = rounds[-1]
    evaluated = [r for r in rounds if r["evaluation"]]
    final = evaluated[-1]["evaluation"] if evaluated else {}
    shown = ", ".join(f"{k} {final[k]:.4f}" for k in ("accuracy", "mse", "loss") if k in final)
    sat_out = [
        [r["round"], m["edge"], m.get("reason", "")] for r in rounds for m in r["manifest"].get("missing", [])
    ]
    late = [
        [
            r["round"],
            u["edge"],
            u["trainedRound"],
            u.get("staleness", "-"),
            "used" if u.get("used") else "dropped",
            f"{u['weight']:.4g}" if u.get("used") else u.get("reason", ""),
        ]
        for r in rounds
        for u in r["manifest"].get("lateUpdates", [])
    ]
    late_section = (
        "<h2>Late updates (trained while an edge could not reach the cloud)</h2>"
        + _table(["round", "edge", "trained in round", "staleness", "", "weight or reason"], late)
        if late
        else ""
    )
    lineage = []
    for r in rounds:
        manifest = r["manifest"]
        parent = manifest.get("parent") or {}
        lineage.append(
            [
                r["round"],
                (manifest["model"].get("versionId") or "-")[:16],
                manifest["model"]["sha256"][:16],
                "-" if not parent else f"round {parent.get('round')} ({str(parent.get('sha256', ''))[:12]})",
                len(manifest.get("contributors", [])),
                manifest.get("examples", 0),
                manifest.get("workflow", ""),
                manifest.get("committedAt", "")[:19],
                "ok" if not r["problems"] else "; ".join(r["problems"]),
            ]
        )
    privacy = last["manifest"].get("privacy")
    privacy_line = ""
    if privacy:
        epsilon = "unbounded" if privacy.get("epsilon") is None else f"{privacy['epsilon']:.4g}"
        privacy_line = f"<p>Differential privacy: ε {epsilon} at δ {privacy.get('delta')} spent.</p>"
    problems = sum(bool(r["problems"]) for r in rounds)
    verdict = (
        "every round is as committed"
        if not problems
        else f"<span class='bad'>{problems} round(s) are not as committed (see the lineage)</span>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgefed report: {html.escape(task)}</title>
<style>{_STYLE}</style><script>{_CHECK}</script></head>
<body>
<h1>Federated task {html.escape(task)}</h1>
<p class="summary">{len(rounds) - 1} round(s) committed; last round {last["round"]}{": " + shown if shown else ""};
{verdict}. Written {datetime.now(UTC).isoformat(timespec="seconds")} from
s3://{layout.MODELS_BUCKET}/{html.escape(task)}/.</p>
{privacy_line}
<h2>Accuracy and loss per round</h2>
<img alt="accuracy and loss per round" src="{plots["curves"]}">
<h2>Contributions per edge</h2>
<img alt="examples each edge contributed per round" src="{plots["contributions"]}">
<h2>Edges that sat a round out, and why</h2>
{_table(["round", "edge", "reason"], sat_out) if sat_out else "<p>None: every asked edge contributed to every round.</p>"}
{late_section}
<h2>Model lineage</h2>
{_table(["round", "version", "sha256", "parent", "edges", "examples", "workflow", "committed", "check"], lineage)}
</body></html>
"""
