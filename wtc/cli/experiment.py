"""`wtc experiment PLAN --out DIR` (run the width-transfer protocol) and `wtc report DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wtc.cli.common import check_options, esc, handle_errors, out, print_json, warn
from wtc.cli.params import Commands, DeviceOpt, JsonOpt

app = Commands()


@app.command("experiment")
@handle_errors
def experiment_cmd(
    plan: Annotated[Path, typer.Argument(help="the plan (YAML)", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="experiment folder: ledger, "
                                          "artifacts, report", show_default=False)],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="print every unit with its projected training MACs, the overhead "
        "ratios and what is left to run (after the ledger and --reuse); run nothing")] = False,
    backend: Annotated[str, typer.Option("--backend", help="where units run: {backends}")
                       ] = "local",
    address: Annotated[str | None, typer.Option(
        "--address", help="Ray cluster address (default: a Ray started here)")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="units in flight")] = 1,
    threads: Annotated[int | None, typer.Option(
        "--threads", help="torch threads per unit (default: cores ÷ jobs)")] = None,
    device: DeviceOpt = "auto",
    progress: Annotated[str, typer.Option(
        "--progress", help="auto | rich | plain | none")] = "auto",
    reuse: Annotated[list[Path] | None, typer.Option(
        "--reuse", help="another experiment folder whose finished units (same id and "
        "inputs) are copied instead of run; repeatable")] = None,
    time_limit: Annotated[str | None, typer.Option(
        "--time-limit", help="end between units within this long (90s, 80m, 2h): a unit is "
        "started only while its dry-run estimate fits in the time left; rerun to continue")
    ] = None,
    no_report: Annotated[bool, typer.Option("--no-report",
                                            help="do not write the report")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a width-transfer plan: searches, transfers, final trainings, evaluations.

    Finished units are recorded in OUT/ledger.jsonl; rerunning skips them, so an
    interrupted experiment resumes and a changed plan reruns only what changed."""
    from wtc.experiment import expand, load_plan, project, run_experiment, write_report
    from wtc.experiment.cost import summary
    from wtc.numbers import read_duration

    check_options(jobs=jobs, threads=threads)
    limit = None if time_limit is None else read_duration(time_limit, "--time-limit")
    p = load_plan(plan)
    if dry_run:
        from wtc.experiment.plan_check import check_sources
        from wtc.experiment.status import ledger_status

        check_sources(p)  # what a run would refuse before any unit, a dry run refuses too
        proj = project(p)
        status = ledger_status(expand(p), out_dir, reuse or ())
        _print_dry_run(p, proj, summary(p, proj, status), as_json, status, out_dir)
        return
    res = run_experiment(p, out_dir, backend=backend, jobs=jobs, threads=threads,
                         device=device, address=address, reuse=reuse or (),
                         time_limit=limit, progress="none" if as_json else progress)
    for w in res.warnings:
        warn(w)
    _print_run(res, out_dir, None if no_report else write_report(out_dir), as_json)


@app.command("report")
@handle_errors
def report_cmd(
    out_dir: Annotated[Path, typer.Argument(help="an experiment folder (holding "
                                            "ledger.jsonl)", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Rebuild report.md, report.json and the figures from an experiment's ledger."""
    from wtc.errors import ConfigError
    from wtc.experiment import Ledger, write_report

    if not (out_dir / "ledger.jsonl").is_file():
        raise ConfigError(f"{out_dir} holds no ledger.jsonl: not an experiment folder")
    for w in Ledger(out_dir).warnings():
        warn(w)
    data = write_report(out_dir)
    if as_json:
        print_json(data)
        return
    out.print(esc((out_dir / "report.md").read_text(encoding="utf-8")))


def _print_run(res, out_dir: Path, report, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        print_json({**res.to_json(), "report": None if report is None else
                    str(out_dir / "report.md")})
        return
    shared = (f", {len(res.reused)} shared with a unit that computes the same"
              if res.reused else "")
    shared += f", {len(res.imported)} copied from --reuse" if res.imported else ""
    out.print(f"{len(res.ran)} unit(s) ran, {len(res.skipped)} skipped (already in the "
              f"ledger){shared}, {res.seconds:.1f} s; ledger {esc(out_dir / 'ledger.jsonl')}")
    if res.deferred:
        first, secs = next(iter(res.deferred.items()))
        out.print(f"[yellow]time limit:[/yellow] {len(res.deferred)} unit(s) not started, "
                  f"their estimates exceeding the time left (first {esc(first)}, about "
                  f"{_hours(secs)}); the units after them wait too. Rerun the same command to "
                  "continue")
    if report is not None:
        out.print(f"[green]wrote[/green] {esc(out_dir / 'report.md')}")


def _print_dry_run(plan, proj, summ, as_json: bool,  # type: ignore[no-untyped-def]
                   status, out_dir: Path) -> None:
    if as_json:
        print_json({**summ, "units": [{**p.to_json(), "recorded": status.of(p.unit) == "recorded",
                                       "status": status.of(p.unit),
                                       "resumes": p.unit in status.interrupted} for p in proj]})
        return
    t = Table(title=f"{esc(plan.name)}: {len(proj)} units (dry run; nothing ran)")
    for col in ("unit", "kind", "training MACs", "overhead ratio", "ledger", "note"):
        t.add_column(col, justify="left" if col in ("unit", "kind", "ledger", "note")
                     else "right", no_wrap=col != "note")
    for p in proj:
        t.add_row(p.unit, p.kind, f"{p.train_macs:.3g}" if p.train_macs else "0",
                  f"{p.ratio:.1f}x" if p.ratio else "",
                  status.of(p.unit) + (("" if status.running else " (resumes)")
                                       if p.unit in status.interrupted else ""),
                  p.note)
    out.print(t)
    parts = ", ".join(f"{k} {v:.3g}" for k, v in summ["train_macs"].items() if v)
    out.print(f"total {summ['total_train_macs']:.3g} training MACs ({parts})")
    left, free = summ["to_run"], []
    for key, what in (("copied", "copied from --reuse"), ("shared", "shared with a unit "
                                                           "computing the same")):
        if summ[key]["units"]:
            took = f", {_hours(summ[key]['seconds'])} when run" if key == "copied" else ""
            free.append(f"{summ[key]['units']} {what} ({summ[key]['train_macs']:.3g} "
                        f"MACs{took})")
    took = (f", {_hours(summ['recorded']['seconds'])} of unit time"
            if summ["recorded"]["units"] else "")
    estimate, unpriced, guess = left["seconds_estimate"], left["unpriced"], ""
    borrowed = (f"; {'/'.join(left['rates_from_reuse'])} at the rate the --reuse folders "
                "ran them" if left["rates_from_reuse"] else "")
    if left["train_macs"] and estimate is not None:
        guess = (f" (about {_hours(estimate)} of unit time at the rate the recorded units ran"
                 f"{borrowed}; divide by --jobs for wall time)")
    elif left["train_macs"] and left["priced_units"]:
        guess = (f" (about {_hours(left['priced_seconds'])} of unit time for the "
                 f"{left['priced_units']} unit(s) of kinds the ledger has run, at their rate"
                 f"{borrowed}; "
                 f"{unpriced['units']} {'/'.join(unpriced['kinds'])} unit(s), "
                 f"{unpriced['train_macs']:.3g} MACs, have no recorded unit of their kind to "
                 "estimate from)")
    elif left["train_macs"]:
        guess = " (no recorded unit of their kinds to estimate their time from)"
    cut = left["interrupted"]
    how = ("are running now (a `wtc experiment` holds this folder)" if cut["running"] else
           "continue from the checkpoints of an interrupted run")
    resumes = (f"; {cut['units']} of them {how}, in {esc(out_dir / 'work')} "
               f"({_hours(cut['seconds'])} spent so far)" if cut["units"] else "")
    out.print(f"in the ledger: {summ['recorded']['units']} unit(s) recorded "
              f"({summ['recorded']['train_macs']:.3g} MACs{took}); "
              + "".join(f"{f}; " for f in free)
              + f"to run: {left['units']} unit(s), {left['train_macs']:.3g} training MACs"
              + guess + resumes)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds:.0f} s"
