"""The report, rebuilt from the ledger alone: `report.json`, `report.md` and PNG figures.

One row per (method, source), source = uniform, direct (search on the target) or a proxy
(with its stacking rule for depth proxies): test top-1 mean ± std over seeds, Δ against uniform
and against direct, the search's training MACs and wall seconds, the overhead reduction against
direct search (MACs and wall time), and the Pearson correlation of the row's width profile
(width ÷ base per target group) with the direct search's.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from wtc.atomic import atomic_write, atomic_write_text, make_folders
from wtc.errors import UserInputError
from wtc.experiment.curve import collect_curve, curve_markdown, plot_curve, search_details
from wtc.experiment.ledger import Ledger
from wtc.experiment.report_cost import cost_section, plot_top1_vs_cost, row_cost
from wtc.experiment.stats import pearson, welch
from wtc.optimizers.base import OPTIMIZERS, near_chance, search_val_top1
from wtc.plot import figure

FIGURES = "figures"


def collect(out_dir: str | Path) -> dict[str, Any]:
    """The report's numbers, computed from `out_dir/ledger.jsonl`."""
    ledger = Ledger(out_dir)
    runs = ledger.runs()
    if not runs or "rows" not in runs[-1]:
        raise UserInputError(f"{ledger.path} records no experiment run (run `wtc experiment "
                             f"PLAN --out {out_dir}` first)")
    run = runs[-1]
    cur = ledger.current()
    seeds = run["seeds"]
    classes = run.get("classes") or {}
    rows = [_row(r, cur, seeds, classes.get(r.get("proxy") or "target")) for r in run["rows"]]
    by_id = {r["row"]: r for r in rows}
    uniform = by_id.get("uniform", {}).get("top1_mean")
    for r in rows:
        direct = by_id.get(f"{r['method']}/direct")
        r["delta_uniform"] = _diff(r["top1_mean"], uniform)
        r["p_uniform"] = (_p(r["top1"], by_id["uniform"]["top1"])
                          if "uniform" in by_id and r["row"] != "uniform" else None)
        r["p_direct"] = (_p(r["top1"], direct["top1"])
                         if direct and r["source"] not in ("direct", "uniform") else None)
        r["delta_direct"] = (_diff(r["top1_mean"], direct["top1_mean"])
                             if direct and r["method"] != "uniform" else None)
        r["overhead_reduction"] = (_ratio(direct["search_macs"], r["search_macs"])
                                   if direct and r["method"] != "uniform" else None)
        r["walltime_reduction"] = (_ratio(direct["search_seconds"], r["search_seconds"])
                                   if direct and r["method"] != "uniform" else None)
        r["profile_corr"] = (pearson(r["ratios"], direct["ratios"])
                             if direct and r["method"] != "uniform" else None)
    curve = collect_curve(run, cur)
    missing = [u for u in run["units"] if u not in cur]
    return {"plan": run.get("plan"), "plan_hash": run.get("plan_hash"),
            "target": run.get("target"), "seeds": seeds, "methods": sorted(run.get("methods",
                                                                                  {})),
            "rows": rows, "complete": not missing, "missing": missing,
            "same_widths": same_widths(rows), **({"curve": curve} if curve else {}),
            "groups": next((r["groups"] for r in rows if r["groups"]), [])}


def _row(r: dict[str, Any], cur: dict[str, dict[str, Any]], seeds: list[int],
         classes: int | None) -> dict[str, Any]:
    tops = {s: cur[k]["outputs"]["top1"] for s in seeds
            if (k := f"eval/{r['id']}/seed{s}") in cur}
    values = list(tops.values())
    search = cur.get(r["search"])
    widths = cur.get(r["widths"])
    profile = widths["outputs"]["profile"] if widths else []
    pick = cur.get(r.get("pick") or "")
    details = search_details(search, pick)
    shared = {}
    if pick is not None:  # a search shared across budgets
        shared = {"search_targets": len((search or {}).get("outputs", {}).get("targets", {})),
                  "search_copied": bool((search or {}).get("imported"))}
    return {
        "row": r["id"], "method": r["method"], "source": r["source"],
        "seeds": sorted(tops), "top1": [tops[s] for s in sorted(tops)],
        "top1_mean": statistics.fmean(values) if values else None,
        "top1_std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
        "search_macs": search["train_macs"] if search else None,
        "search_seconds": search["seconds"] if search else None,
        "search_val_top1": search_val_top1(r["method"], details),
        **({"search_chance": 1 / classes,
            "search_near_chance": near_chance(search_val_top1(r["method"], details),
                                              1 / classes)}
           if classes and r["method"] != "uniform" else {}),
        "macs": widths["outputs"]["macs"] if widths else None,
        "groups": [g for g, _, _ in profile],
        "ratios": [w / b for _, b, w in profile],
        "widths": [w for _, _, w in profile],
        **row_cost(widths),  # only for a plan priced by a non-MACs cost
        **shared,  # only for a search shared across budgets (`share_targets`)
    }


def same_widths(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Groups of rows whose final widths are identical (their trainings are one computation
    shared by the runner, so their numbers coincide)."""
    groups = _groups([r for r in rows if r["widths"]], lambda r: tuple(r["widths"]))
    return [[r["row"] for r in g] for g in groups if len(g) > 1]


def _groups(rows: list[dict[str, Any]], key: Any) -> list[list[dict[str, Any]]]:
    """Rows grouped by `key(row)`, groups and rows in first-seen order."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return list(out.values())


def _p(a: list[float], b: list[float]) -> float | None:
    res = welch(a, b)
    return None if res is None else res[2]


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


# --------------------------------------------------------------------------- writing


def write_report(out_dir: str | Path) -> dict[str, Any]:
    """Rebuild report.json, report.md and figures/*.png in `out_dir` from its ledger."""
    out = Path(out_dir)
    data = collect(out)
    make_folders(out / FIGURES)
    figures = plot_profiles(data, out / FIGURES) + plot_top1_vs_macs(data, out / FIGURES)
    if data.get("curve"):
        figures += plot_curve(data["curve"], out / FIGURES, _save)
    figures += plot_top1_vs_cost(data, out / FIGURES)  # nothing for a MACs plan
    data["figures"] = [str(Path(f).relative_to(out)) for f in figures]
    atomic_write_text(out / "report.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown(data))
    return data


def _pct(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}"


def _num(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def _shared_note(rows: list[dict[str, Any]]) -> list[str]:
    """What the search columns of rows whose search served several budgets mean."""
    shared = [r for r in rows if r.get("search_targets")]
    if not shared:
        return []
    copied = sorted({r["row"] for r in shared if r.get("search_copied")})
    names = ", ".join(r["row"] for r in shared)
    counts = {r["search_targets"] for r in shared}
    budgets = (str(counts.pop()) if len(counts) == 1 else "several ("
               + ", ".join(f"{r['row']}: {r['search_targets']}" for r in shared) + ")")
    tail = f"; copied with `--reuse` for {', '.join(copied)}" if copied else ""
    how = "; ".join(f"{m}: {OPTIMIZERS.get(m).shared_run}" for m in
                    sorted({r["method"] for r in shared}) if m in OPTIMIZERS)
    return [f"Shared searches (`share_targets`): the searches of {names} each served {budgets} "
            f"MACs budgets in one run ({how}); their search MACs and seconds are that run's, "
            f"paid once for every plan listing the same budgets{tail}.", ""]


def markdown(data: dict[str, Any]) -> str:
    t = data.get("target") or {}
    lines = [f"# Experiment `{data['plan']}`", "",
             f"Target `{t.get('spec')}` at {t.get('macs', 0):,} MACs "
             f"({t.get('macs', 0) / max(1, t.get('base_macs', 1)):.2f}x of its "
             f"{t.get('base_macs', 0):,}); seeds {data['seeds']}. Top-1 is on the test set "
             "(read only by the evaluation units); every search decision used a held-out "
             "split of the training set. Rebuilt from `ledger.jsonl` by `wtc report`.", "",
             "| method | source | top-1 % (mean ± std) | Δ uniform | p | Δ direct | p | "
             "search MACs | search s | MACs reduction | wall-time reduction | profile corr. | "
             "search held-out top-1 % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        top = (f"{100 * r['top1_mean']:.2f} ± {100 * r['top1_std']:.2f} (n={len(r['top1'])})"
               if r["top1_mean"] is not None else "–")
        flag = " †" if r.get("search_near_chance") else ""
        held = _pct(r["search_val_top1"]) + (
            f" (chance {100 * r['search_chance']:.0f}){flag}" if "search_chance" in r else "")
        lines.append(
            f"| {r['method']} | {r['source']} | {top} | {_pct(r['delta_uniform'], True)} | "
            f"{_num(r.get('p_uniform'), '.2f')} | {_pct(r['delta_direct'], True)} | "
            f"{_num(r.get('p_direct'), '.2f')} | {_num(r['search_macs'], '.3g')} | "
            f"{_num(r['search_seconds'], '.1f')} | {_num(r['overhead_reduction'], '.1f')}"
            f"{'x' if r['overhead_reduction'] else ''}{flag} | "
            f"{_num(r['walltime_reduction'], '.1f')}{'x' if r['walltime_reduction'] else ''}"
            f"{flag} | {_num(r['profile_corr'], '.3f')} | {held} |")
    lines += ["", "p: two-sided Welch t-test over seeds against uniform and against direct "
              "search; with few seeds a difference needs a small p before it means anything. "
              "Search held-out top-1 is each method's own (MorphNet: the chosen λ's widths; "
              "AutoSlim: the chosen widths in the supernet; DMCP: the supernet at the end).", ""]
    if any(r.get("search_near_chance") for r in data["rows"]):
        lines += ["† the search decided at or near chance: its held-out top-1 is below "
                  "min(3 × chance, (1 + chance) / 2), chance being 1 / the classes it searched "
                  "on. Its widths carry little information, so its MACs and wall-time "
                  "reductions are not savings of a search that worked.", ""]
    lines += _shared_note(data["rows"])
    for group in data.get("same_widths", []):
        lines.append(f"Identical widths, so identical trainings: {', '.join(group)}.")
    if data.get("same_widths"):
        lines.append("")
    if not data["complete"]:
        lines += [f"**Incomplete**: {len(data['missing'])} unit(s) not finished yet "
                  f"(first: `{data['missing'][0]}`); rerun the plan to resume.", ""]
    lines += curve_markdown(data.get("curve") or [])
    lines += cost_section(data)  # nothing for a MACs plan
    for f in data.get("figures", []):
        lines.append(f"![{Path(f).stem}]({f})")
    return "\n".join(lines) + "\n"


def _save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return path


def _distinct(rows: list[dict[str, Any]], key: str) -> list[tuple[dict[str, Any], str]]:
    """Rows with equal `key` values drawn once, labelled with every source they stand for
    (e.g. "one_block/last = one_block/average": one block per stage stacks back alike)."""
    groups = _groups(rows, lambda r: (r["method"], json.dumps(r[key])))
    return [(g[0], " = ".join(r["source"] for r in g)) for g in groups]


_MARKERS = "osD^vP*Xhp"


def plot_profiles(data: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per method: width ÷ base per group (network order), one line per source."""
    paths = []
    uniform = next((r for r in data["rows"] if r["row"] == "uniform"), None)
    for m in data["methods"]:
        rows = [r for r in data["rows"] if r["method"] == m and r["ratios"]]
        if not rows:
            continue
        groups = rows[0]["groups"]
        fig, ax = figure(figsize=(max(7.5, 0.4 * len(groups) + 2.5), 4.0))
        if uniform and uniform["ratios"]:
            ax.plot(range(len(groups)), uniform["ratios"], "k--", linewidth=1, label="uniform")
        for r, label in _distinct(rows, "ratios"):
            direct = r["source"] == "direct"
            ax.plot(range(len(groups)), r["ratios"], "-o" if direct else "-",
                    linewidth=2.2 if direct else 1.2, markersize=3, label=label)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=70, ha="right", fontsize=7)
        ax.set_ylabel("width / base width")
        ax.set_title(f"{m}: width profiles on {(data.get('target') or {}).get('spec')}")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        paths.append(_save(fig, folder / f"widths_{m}.png"))
    return paths


def plot_top1_vs_macs(data: dict[str, Any], folder: Path) -> list[Path]:
    """Top-1 against search training MACs (log x) with std error bars; uniform as a band.
    One colour per method, one marker per source; rows with the same widths drawn once."""
    pts = [r for r in data["rows"] if r["top1_mean"] is not None and r["search_macs"]]
    if not pts:
        return []
    fig, ax = figure(figsize=(9.0, 4.5))
    uniform = next((r for r in data["rows"] if r["row"] == "uniform"), None)
    if uniform and uniform["top1_mean"] is not None:
        mu, sd = 100 * uniform["top1_mean"], 100 * (uniform["top1_std"] or 0.0)
        ax.axhline(mu, color="black", linestyle="--", linewidth=1, label="uniform (± std)")
        ax.axhspan(mu - sd, mu + sd, color="grey", alpha=0.2)
    colours = {m: f"C{i}" for i, m in enumerate(data["methods"])}
    sources = list(dict.fromkeys(r["source"].split("/")[0] for r in pts))
    for r, label in _distinct(pts, "widths"):
        marker = _MARKERS[sources.index(r["source"].split("/")[0]) % len(_MARKERS)]
        ax.errorbar(r["search_macs"], 100 * r["top1_mean"], yerr=100 * (r["top1_std"] or 0),
                    fmt=marker, color=colours.get(r["method"], "k"), capsize=3,
                    markersize=7 if r["source"] == "direct" else 5,
                    label=f"{r['method']}/{label}")
    ax.set_xscale("log")
    ax.set_xlabel("search training MACs")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("top-1 against search cost")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return [_save(fig, folder / "top1_vs_search_macs.png")]
