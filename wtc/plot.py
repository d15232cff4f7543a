"""Pictures of widths: each width group's channels as a ratio to the spec's base, per widths file.

This is how width transfer is judged by eye: proxy and target widths, drawn as ratios, should
look alike ("regular across sizes and depths"). matplotlib only, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wtc.atomic import atomic_write
from wtc.graph import StageGraph
from wtc.widths import Widths


def figure(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
    """(figure, axes) like `pyplot.subplots`, but without pyplot: the figure is drawn by Agg
    when saved, so no process-wide matplotlib backend is chosen (a library must not), and
    nothing needs closing."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def ratio_rows(graph: StageGraph, widths: Sequence[Widths]) -> list[dict[str, object]]:
    """Per free group: its stage, base width and ratio width/base in each widths."""
    return [{"group": g, "stage": graph.groups[g].stage, "base": graph.groups[g].base,
             "ratios": [w.groups[g] / graph.groups[g].base for w in widths]}
            for g in graph.free_groups]


def plot_widths(graph: StageGraph, widths: Sequence[Widths], labels: Sequence[str],
                path: str | Path) -> Path:
    """Grouped bars of width/base per group (groups in network order), one bar per widths file;
    written atomically as PNG, PDF or SVG by the file's suffix."""
    rows = ratio_rows(graph, widths)
    n = len(widths)
    fig, ax = figure(figsize=(max(6.0, 0.32 * len(rows) * max(1, n)), 4.2))
    bar = 0.8 / max(1, n)
    for k, label in enumerate(labels):
        xs = [i + (k - (n - 1) / 2) * bar for i in range(len(rows))]
        ax.bar(xs, [r["ratios"][k] for r in rows], width=bar, label=label)  # type: ignore[index]
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([str(r["group"]) for r in rows], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("width / base width")
    ax.set_title(f"{graph.spec.name}: widths per group")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fmt = out.suffix.lstrip(".").lower() or "png"
    atomic_write(out, lambda f: fig.savefig(f, format=fmt, dpi=120))
    return out
