"""The search-length curve, rebuilt from the ledger: how long must a search be before its widths
stop moving? For each method and source (direct, or a proxy transferred to the target), at each
search length: the search's own held-out top-1 and the Pearson correlation of its width profile
(width ÷ base per target group) with the longest direct search's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wtc.experiment.stats import pearson
from wtc.optimizers.base import search_val_top1
from wtc.plot import figure


def search_details(search: dict[str, Any] | None,
                   pick: dict[str, Any] | None) -> dict[str, Any]:
    """A search unit's details, with its pick's over them when the search was shared across
    budgets (`share_targets`): the pick holds this target's own held-out top-1."""
    details = search["outputs"].get("details", {}) if search else {}
    return {**details, **pick["outputs"].get("details", {})} if pick is not None else details


def collect_curve(run: dict[str, Any], cur: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per curve point the ledger has finished, in the plan's order."""
    points = []
    for p in run.get("curve") or []:
        search, widths = cur.get(p["search"]), cur.get(p["widths"])
        if search is None or widths is None:
            continue
        search = cur.get(search.get("reused") or "") or search  # shared: the cost is its twin's
        details = search_details(search, cur.get(p.get("pick") or ""))
        points.append({**p, "held_out_top1": search_val_top1(p["method"], details),
                       "search_macs": search["train_macs"],
                       "ratios": [w / b for _, b, w in widths["outputs"]["profile"]]})
    for method in dict.fromkeys(p["method"] for p in points):
        direct = [p for p in points if p["method"] == method and p["source"] == "target"]
        ref = max(direct, key=lambda p: p["epochs"]) if direct else None
        for p in points:
            if p["method"] == method:
                p["corr_longest_direct"] = (pearson(p["ratios"], ref["ratios"])
                                            if ref is not None else None)
                p["reference_epochs"] = ref["epochs"] if ref is not None else None
    return points


def plot_curve(points: list[dict[str, Any]], folder: Path, save: Any) -> list[Path]:
    """One PNG per method: held-out top-1 and profile correlation against search epochs, one
    line per source."""
    paths = []
    for method in dict.fromkeys(p["method"] for p in points):
        mine = [p for p in points if p["method"] == method]
        fig, (top, corr) = figure(1, 2, figsize=(10.0, 3.8))
        for source in dict.fromkeys(p["source"] for p in mine):
            line = sorted((p for p in mine if p["source"] == source), key=lambda p: p["epochs"])
            xs = [p["epochs"] for p in line]
            label = "direct" if source == "target" else source
            top.plot(xs, [100 * (p["held_out_top1"] or float("nan")) for p in line], "-o",
                     label=label)
            corr.plot(xs, [p["corr_longest_direct"] if p["corr_longest_direct"] is not None
                           else float("nan") for p in line], "-o", label=label)
        top.set_xlabel("search epochs")
        top.set_ylabel("search held-out top-1 (%)")
        corr.set_xlabel("search epochs")
        corr.set_ylabel("profile corr. with the longest direct")
        corr.set_ylim(-1.05, 1.05)
        top.legend(fontsize=8)
        fig.suptitle(f"{method}: search length")
        fig.tight_layout()
        paths.append(save(fig, folder / f"search_length_{method}.png"))
    return paths


def curve_markdown(points: list[dict[str, Any]]) -> list[str]:
    """The curve as a table under the report's main one (empty without a curve)."""
    if not points:
        return []
    lines = ["## Search length", "",
             "| method | source | search epochs | search MACs | held-out top-1 % | "
             "profile corr. with the longest direct |", "|---|---|---|---|---|---|"]
    for p in points:
        held = "–" if p["held_out_top1"] is None else f"{100 * p['held_out_top1']:.2f}"
        corr = "–" if p["corr_longest_direct"] is None else f"{p['corr_longest_direct']:.3f}"
        source = "direct" if p["source"] == "target" else p["source"]
        run = p.get("run_epochs", p["epochs"])
        epochs = f"{p['epochs']} ({run} run)" if run != p["epochs"] else f"{p['epochs']}"
        lines.append(f"| {p['method']} | {source} | {epochs} | {p['search_macs']:.3g} | "
                     f"{held} | {corr} |")
    if any(p.get("run_epochs", p["epochs"]) != p["epochs"] for p in points):
        lines += ["", "Search epochs are the method's `epochs`; a proxy's `search_epochs` "
                  "multiplies them, as for its own searches (the epochs run in parentheses)."]
    return [*lines, ""]
