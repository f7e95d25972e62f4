"""Printing a run like ``argo get``: a header, the node tree (STEP / TEMPLATE / PODNAME / DURATION /
MESSAGE with ✔ ✖ ⚠ ○ symbols) and, for failed nodes, the last lines of their logs."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from edgefed.workflows.phases import Phase

from .nodes import Node, NodeType, WorkflowResult

__all__ = ["SYMBOLS", "format_duration", "node_line", "render_report", "render_tree", "tail_log"]

SYMBOLS = {
    Phase.SUCCEEDED: "✔",
    Phase.FAILED: "✖",
    Phase.ERROR: "⚠",
    Phase.SKIPPED: "○",
    Phase.OMITTED: "○",
    Phase.RUNNING: "●",
    Phase.PENDING: "◷",
}
#: Node types whose duration the tree shows (the others take no time of their own).
_TIMED = (NodeType.POD, NodeType.RETRY, NodeType.DAG, NodeType.STEPS)


def format_duration(seconds: float | None) -> str:
    """``argo get`` style: ``3s``, ``1m 5s``, ``2h 3m``."""
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {(s % 3600) // 60}m"


def tail_log(path: Path | None, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a node log (empty if there is none)."""
    if path is None or not Path(path).exists():
        return []
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]


def node_line(node: Node) -> str:
    """One progress line for a node phase change (used by the CLI)."""
    symbol = SYMBOLS.get(node.phase, "?")
    text = f"{symbol} {node.phase:<9} {node.name} [{node.type}]"
    if node.message and node.phase not in (Phase.PENDING, Phase.RUNNING):
        text += f": {node.message}"
    return text


def render_tree(result: WorkflowResult) -> str:
    """The node tree as text, roots being the workflow node and the exit handler."""
    rows: list[tuple[str, str, str, str, str]] = []

    def walk(node: Node, prefix: str, is_last: bool, is_root: bool) -> None:
        symbol = SYMBOLS.get(node.phase, "?")
        branch = "" if is_root else ("└─" if is_last else "├─")
        rows.append(
            (
                f" {prefix}{branch}{symbol} {node.display_name}",
                node.template_name or "",
                node.pod_name or "",
                format_duration(node.duration) if node.type in _TIMED else "",
                node.message,
            )
        )
        kids = [result.nodes[c] for c in node.children if c in result.nodes]
        child_prefix = prefix if is_root else prefix + ("  " if is_last else "│ ")
        for i, kid in enumerate(kids):
            walk(kid, child_prefix, i == len(kids) - 1, False)

    walk(result.nodes[result.root_id], "", True, True)
    if result.exit_handler_id and result.exit_handler_id in result.nodes:
        rows.append(("", "", "", "", ""))
        walk(result.nodes[result.exit_handler_id], "", True, True)
    header = ("STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = []
    for r in [header, *rows]:
        cells = [r[i].ljust(widths[i]) for i in range(4)] + [r[4]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_report(result: WorkflowResult, *, log_lines: int = 20) -> str:
    """Header + tree + the last ``log_lines`` log lines of every failed or errored container node."""
    out = [
        f"Name:       {result.name}",
        f"Status:     {result.phase}",
    ]
    if result.message:
        out.append(f"Message:    {result.message}")
    out.append(f"Duration:   {format_duration((result.finished_at - result.started_at).total_seconds())}")
    out.append(f"Run dir:    {result.run_dir}")
    if result.outputs:
        out.append("Output Parameters:")
        out.extend(f"  {k}: {v}" for k, v in result.outputs.items())
    out.append("")
    out.append(render_tree(result))
    failed = [n for n in result.pods() if Phase.is_failure(n.phase)]
    for node in failed:
        out.append("")
        out.append(f"--- {node.name} ({node.phase}: {node.message}) log: {node.log_path}")
        lines = tail_log(node.log_path, log_lines)
        out.extend(f"    {line}" for line in lines) if lines else out.append("    (no output)")
    return "\n".join(out)
