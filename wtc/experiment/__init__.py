"""The width-transfer protocol as one resumable run.

    from wtc.experiment import load_plan, run_experiment, write_report
    plan = load_plan("examples/width_transfer_fmnist.yaml")   # PlanError names the bad key
    run_experiment(plan, "runs/wt", jobs=2)                    # ledger.jsonl, resumable
    write_report("runs/wt")                                    # report.md/json + figures

plan → units (units.py, a DAG with content hashes) → driver (runner.py) on a backend
(backends/: local process pool or Ray) → ledger (ledger.py) → report (report.py).
Nothing below the CLI imports this package.
"""

from wtc.experiment.cost import Projection, project
from wtc.experiment.ledger import Ledger
from wtc.experiment.plan import Plan, PlanModel, load_plan, resolve_plan
from wtc.experiment.report import collect, write_report
from wtc.experiment.runner import RunSummary, UnitFailed, run_experiment
from wtc.experiment.units import Row, Unit, expand, noop_units, rows

__all__ = [
    "Ledger", "Plan", "PlanModel", "Projection", "Row", "RunSummary", "Unit", "UnitFailed",
    "collect", "expand", "load_plan", "noop_units", "project", "resolve_plan", "rows",
    "run_experiment", "write_report",
]
