"""The report's cost-model part: for a plan priced by a cost other than MACs (`target.cost`,
e.g. a latency table), each row's predicted cost under it, a section of the report with the
cost beside MACs and top-1, and a top-1 against cost figure. A MACs plan has none of this, so
its report.json, report.md and figures are exactly what they always were."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def row_cost(widths_unit: dict[str, Any] | None) -> dict[str, Any]:
    """`{"cost_model": ...}` (model, target, achieved) for a row whose widths were priced by a
    non-MACs cost, else nothing (so a MACs row's JSON is unchanged)."""
    rec = (widths_unit or {}).get("outputs", {}).get("cost_model")
    return {"cost_model": rec} if rec else {}


def _fmt(rec: dict[str, Any], value: float) -> str:
    if rec.get("unit") == "s":
        return f"{value * 1e3:.3f} ms"
    return f"{value:,.0f} {rec.get('unit', '')}".rstrip()


def cost_section(data: dict[str, Any]) -> list[str]:
    """Markdown lines: the rows' predicted cost beside MACs and top-1 (none for a MACs plan)."""
    rows = [r for r in data["rows"] if r.get("cost_model")]
    if not rows:
        return []
    rec = rows[0]["cost_model"]
    what = rec.get("name", "cost")
    head = [f"## {what.capitalize()} (predicted)", "",
            f"Every row priced by `{what}`"
            + (f" (table `{rec.get('table')}`, runtime {rec.get('runtime')}, "
               f"{rec.get('threads')} thread(s), batch {rec.get('batch')})"
               if rec.get("table") else "")
            + f", target {_fmt(rec, rec['target'])}.", "",
            f"| method | source | {what} | of target | MACs | top-1 % |",
            "|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cost_model"]
        top = f"{100 * r['top1_mean']:.2f}" if r["top1_mean"] is not None else "–"
        macs = f"{r['macs']:,}" if r["macs"] is not None else "–"
        head.append(f"| {r['method']} | {r['source']} | {_fmt(c, c['achieved'])} | "
                    f"{c['achieved'] / c['target']:.3f} | {macs} | {top} |")
    return [*head, ""]


def plot_top1_vs_cost(data: dict[str, Any], folder: Path) -> list[Path]:
    """Top-1 against the predicted cost, one point per row (none for a MACs plan)."""
    pts = [r for r in data["rows"] if r.get("cost_model") and r["top1_mean"] is not None]
    if not pts:
        return []
    rec = pts[0]["cost_model"]
    scale, unit = (1e3, "ms") if rec.get("unit") == "s" else (1.0, rec.get("unit", ""))
    from wtc.atomic import atomic_write
    from wtc.plot import figure

    fig, ax = figure(figsize=(6, 4))
    for r in pts:
        ax.errorbar(r["cost_model"]["achieved"] * scale, 100 * r["top1_mean"],
                    yerr=100 * (r["top1_std"] or 0), fmt="o", capsize=3,
                    label=f"{r['method']}/{r['source']}")
    ax.axvline(rec["target"] * scale, color="grey", lw=0.8, ls="--", label="target")
    ax.set_xlabel(f"predicted {rec.get('name', 'cost')} ({unit})")
    ax.set_ylabel("test top-1 %")
    ax.legend(fontsize=6)
    path = folder / f"top1_vs_{rec.get('name', 'cost')}.png"
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return [path]
