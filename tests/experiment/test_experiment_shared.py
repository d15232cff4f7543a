"""`share_targets` (experiment.plan_share): one AutoSlim search serves the plans of several MACs
budgets. Sibling plans (differing only in `target.macs`) have the same search unit, so the
second copies it with `--reuse`; a `pick` unit then gives each plan the widths a plain
single-target plan finds for its budget."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import PLAN, RESNET_TINY, refused
from wtc.errors import PlanError
from wtc.experiment import (
    collect,
    expand,
    load_plan,
    resolve_plan,
    run_experiment,
    write_report,
)
from wtc.experiment.status import ledger_status
from wtc.experiment.units import rows

pytestmark = pytest.mark.integration

SHARE = ["0.6x", "0.3x"]
AUTOSLIM = {"epochs": 1, "eval_batches": 1, "bn_batches": 1, "steps": 4}


def _plan(macs: str, share: list[str] | None = SHARE, **changes) -> dict:
    method = {**AUTOSLIM, **({"share_targets": share} if share is not None else {})}
    return {**PLAN, "target": {"spec": RESNET_TINY, "macs": macs},
            "methods": {"autoslim": method}, "proxies": {"half": {"width": 0.5}},
            "seeds": [0], **changes}


def _write(tmp_path, name, plan):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def _units(plan):
    return {u.id: u for u in expand(resolve_plan(plan))}


def test_sibling_plans_share_the_search_unit_and_differ_in_their_picks():
    a, b = _units(_plan("0.6x")), _units(_plan("0.3x"))
    for src in ("target", "half"):
        sa, sb = a[f"search/autoslim/{src}"], b[f"search/autoslim/{src}"]
        assert sa.params == sb.params and sa.input_hash({}) == sb.input_hash({})
        assert "target_macs" not in sa.params and len(sa.params["targets"]) == 2
        pa, pb = a[f"pick/autoslim/{src}"], b[f"pick/autoslim/{src}"]
        assert pa.kind == "pick" and pa.deps == (f"search/autoslim/{src}",)
        assert pa.params["target_macs"] != pb.params["target_macs"]
        assert pa.params["target_macs"] in sa.params["targets"]
    # the order the targets are listed in does not matter
    c = _units(_plan("0.6x", share=list(reversed(SHARE))))
    assert c["search/autoslim/target"].params == a["search/autoslim/target"].params
    # rows read widths from the picks (direct) and transfer from the proxy's pick
    direct = {r.id: r for r in rows(resolve_plan(_plan("0.6x")))}["autoslim/direct"]
    assert (direct.search, direct.widths, direct.pick) == (
        "search/autoslim/target", "pick/autoslim/target", "pick/autoslim/target")
    assert a["transfer/autoslim/half"].deps == ("pick/autoslim/half",)
    # without the option: the single-target search, no pick, rows as they always were
    plain = _units(_plan("0.6x", share=None))
    assert not any(u.kind == "pick" for u in plain.values())
    assert "targets" not in plain["search/autoslim/target"].params
    assert "pick" not in rows(resolve_plan(_plan("0.6x", share=None)))[1].to_json()


@pytest.mark.parametrize(("method", "share", "why"), [
    ("dmcp", SHARE, "serves one MACs target per run"),
    ("autoslim", ["0.5x", "0.2x"], "the plan's own target"),
    ("autoslim", [], "list of 1 to 32"),
    ("autoslim", [f"0.{i:02d}x" for i in range(10, 60)], "list of 1 to 32"),
    ("autoslim", [{"a": 1}], "MACs target"),
    ("autoslim", ["0.5y"], ""),
    ("autoslim", ["0.6x", "0.0000001x"], ""),
])
def test_a_bad_share_list_is_a_plan_error_at_its_key(method, share, why):
    plan = _plan("0.6x")
    plan["methods"] = {method: {"epochs": 1, "share_targets": share}}
    with pytest.raises(PlanError) as e:
        resolve_plan(plan)
    assert e.value.key == f"methods.{method}.share_targets"
    assert why in str(e.value)


def test_the_cli_refuses_a_bad_share_list_with_exit_2(cli, tmp_path):
    plan = _plan("0.6x", share=["0.3x"])
    path = _write(tmp_path, "bad", plan)
    refused(cli, "experiment", path, "--out", tmp_path / "out",
            expect=("methods.autoslim.share_targets", "plan's own target"))
    assert not (tmp_path / "out").exists()
    refused(cli, "experiment", path, "--out", tmp_path / "out", "--dry-run",
            expect=("methods.autoslim.share_targets",))
    # the lowest shared target below the supernet's smallest widths: refused before any unit
    low = _write(tmp_path, "low", _plan("0.6x", share=["0.6x", "0.05x"], methods={
        "autoslim": {**AUTOSLIM, "min_multiplier": 0.5, "share_targets": ["0.6x", "0.05x"]}}))
    for dry in ((), ("--dry-run",)):
        refused(cli, "experiment", low, "--out", tmp_path / "out", *dry,
                expect=("methods.autoslim.share_targets", "lower min_multiplier"))
        assert not (tmp_path / "out").exists()


def test_a_sibling_plan_reuses_the_shared_search_and_picks_the_single_target_widths(tmp_path):
    first, second, plain = (_write(tmp_path, n, p) for n, p in (
        ("first", _plan("0.6x")), ("second", _plan("0.3x")),
        ("plain", _plan("0.3x", share=None))))
    run_experiment(load_plan(first), tmp_path / "first", threads=1)
    units = expand(load_plan(second))
    status = ledger_status(units, tmp_path / "second", reuse=[tmp_path / "first"])
    assert {"search/autoslim/target", "search/autoslim/half"} <= set(status.copied)
    res = run_experiment(load_plan(second), tmp_path / "second", threads=1,
                         reuse=[tmp_path / "first"])
    kinds = {u.id: u.kind for u in units}
    assert {"search/autoslim/target", "search/autoslim/half"} <= set(res.imported)
    ran_searches = [u for u in res.ran if kinds[u] == "search"]
    assert ran_searches == ["search/uniform/target"]  # its own uniform baseline, no training
    assert {"pick/autoslim/target", "pick/autoslim/half"} <= set(res.ran)
    run_experiment(load_plan(plain), tmp_path / "plain", threads=1)

    got, want = collect(tmp_path / "second"), collect(tmp_path / "plain")
    mine = {r["row"]: r for r in got["rows"]}
    theirs = {r["row"]: r for r in want["rows"]}
    for row in ("autoslim/direct", "autoslim/half"):
        assert mine[row]["widths"] == theirs[row]["widths"], row
        assert mine[row]["macs"] == theirs[row]["macs"]
        # the held-out top-1 of the widths picked for THIS target (the chance flag reads it)
        assert mine[row]["search_val_top1"] == theirs[row]["search_val_top1"] is not None
    # the row shows the shared search's own cost, copied from the first plan's ledger
    searched = {r["row"]: r for r in collect(tmp_path / "first")["rows"]}
    assert mine["autoslim/direct"]["search_macs"] == searched["autoslim/direct"]["search_macs"]
    # slimming as far as its lowest target, 0.3x here: what the plain 0.3x search spent
    assert mine["autoslim/direct"]["search_macs"] == theirs["autoslim/direct"]["search_macs"]
    report = write_report(tmp_path / "second")
    assert {r["row"] for r in report["rows"]} == set(mine)
    text = (tmp_path / "second" / "report.md").read_text()
    assert "| autoslim | direct |" in text and "| autoslim | half |" in text
    assert "served 2 MACs budgets in one run (autoslim: one supernet" in text
    assert "copied with `--reuse`" in text
    assert mine["autoslim/direct"]["search_copied"] and "search_targets" not in theirs[
        "autoslim/direct"]


def test_the_dry_run_prices_the_shared_search_down_to_its_lowest_target(cli, tmp_path):
    def search_macs(plan):
        code, out, err = cli("experiment", _write(tmp_path, "p", plan), "--out",
                             tmp_path / "o", "--dry-run", "--json")
        assert code == 0, err
        units = {u["unit"]: u for u in json.loads(out)["units"]}
        return units["search/autoslim/target"]["train_macs"], units

    shared, units = search_macs(_plan("0.6x"))
    assert units["pick/autoslim/target"]["train_macs"] == 0
    assert shared == search_macs(_plan("0.3x"))[0]  # the same search in both plans
    assert shared > search_macs(_plan("0.6x", share=None))[0]  # slims further than 0.6x
    assert shared == search_macs(_plan("0.3x", share=None))[0]  # as far as 0.3x


def test_a_search_length_curve_of_a_shared_method_shares_its_searches_too(tmp_path):
    plan = load_plan(_write(tmp_path, "curve", _plan(
        "0.3x", curve={"epochs": [1, 2], "sources": ["target", "half"]})))
    units = {u.id: u for u in expand(plan)}
    assert "targets" in units["search/autoslim/target@e2"].params
    assert units["transfer/autoslim/half@e2"].deps == ("pick/autoslim/half@e2",)
    res = run_experiment(plan, tmp_path / "out", threads=1)
    # the point at the method's own epochs is the plan's search, run once
    assert res.reused["search/autoslim/target@e1"] == "search/autoslim/target"
    assert res.reused["search/autoslim/half@e1"] == "search/autoslim/half"
    data = collect(tmp_path / "out")
    rows_ = {r["row"]: r for r in data["rows"]}
    points = {(p["source"], p["epochs"]): p for p in data["curve"]}
    assert len(points) == 4 and all(p["held_out_top1"] is not None for p in points.values())
    assert points[("target", 1)]["held_out_top1"] == rows_["autoslim/direct"]["search_val_top1"]
    assert points[("half", 1)]["held_out_top1"] == rows_["autoslim/half"]["search_val_top1"]
    assert points[("target", 1)]["ratios"] == rows_["autoslim/direct"]["ratios"]
    write_report(tmp_path / "out")


def test_a_plain_search_that_cannot_reach_its_target_is_refused_before_any_unit(cli, tmp_path):
    """The method's own checks run for every search of a plan, not only shared ones: AutoSlim's
    supernet whose smallest widths are above the target (the committed MobileNetV2 0.02x
    screen cell had one) fails the dry run and the run, naming the method, writing nothing."""
    low = _write(tmp_path, "low", _plan("0.05x", share=None, methods={
        "autoslim": {**AUTOSLIM, "min_multiplier": 0.5}}))
    for dry in ((), ("--dry-run",)):
        refused(cli, "experiment", low, "--out", tmp_path / "out", *dry,
                expect=("methods.autoslim", "the direct search", "lower min_multiplier"))
        assert not (tmp_path / "out").exists()


MORPHNET = {"epochs": 1, "ladder": 2, "score_epochs": 1}


def test_morphnet_shares_its_structure_learning_across_sibling_plans(cli, tmp_path):
    """MorphNet (one round) serves several budgets too: the sibling plan copies the search and
    its rows get exactly the plain single-target plan's widths and held-out top-1; the dry run
    prices the structure learning once and each budget's scoring."""
    def plan(macs, share=SHARE):
        extra = {"share_targets": share} if share else {}
        return _plan(macs, methods={"morphnet": {**MORPHNET, **extra}})

    first, second, plain = (_write(tmp_path, n, p) for n, p in (
        ("first", plan("0.6x")), ("second", plan("0.3x")), ("plain", plan("0.3x", None))))
    run_experiment(load_plan(first), tmp_path / "first", threads=1)
    res = run_experiment(load_plan(second), tmp_path / "second", threads=1,
                         reuse=[tmp_path / "first"])
    assert {"search/morphnet/target", "search/morphnet/half"} <= set(res.imported)
    run_experiment(load_plan(plain), tmp_path / "plain", threads=1)
    mine = {r["row"]: r for r in collect(tmp_path / "second")["rows"]}
    theirs = {r["row"]: r for r in collect(tmp_path / "plain")["rows"]}
    for row in ("morphnet/direct", "morphnet/half"):
        assert mine[row]["widths"] == theirs[row]["widths"], row
        assert mine[row]["search_val_top1"] == theirs[row]["search_val_top1"] is not None
    # one structure learning for both budgets, two scorings: more than one plain search costs
    assert mine["morphnet/direct"]["search_macs"] > theirs["morphnet/direct"]["search_macs"]
    write_report(tmp_path / "second")
    text = (tmp_path / "second" / "report.md").read_text()
    assert "morphnet: each λ rung's structure learned once" in text

    def priced(p):
        code, out, err = cli("experiment", _write(tmp_path, "p", p), "--out", tmp_path / "o",
                             "--dry-run", "--json")
        assert code == 0, err
        return {u["unit"]: u["train_macs"] for u in json.loads(out)["units"]}

    shared, high, low = priced(plan("0.6x")), priced(plan("0.6x", None)), priced(plan("0.3x", None))
    one = "search/morphnet/target"
    assert max(high[one], low[one]) < shared[one] < high[one] + low[one]
    # a later round learns at its own target's widths: refused before any unit
    rounds = _write(tmp_path, "rounds", _plan("0.6x", methods={
        "morphnet": {**MORPHNET, "rounds": 2, "share_targets": SHARE}}))
    refused(cli, "experiment", rounds, "--out", tmp_path / "r", expect=("rounds > 1",))
    assert not (tmp_path / "r").exists()


def test_the_shared_note_counts_each_search_s_budgets_when_they_differ():
    from wtc.experiment.report import _shared_note

    rows = [{"row": "morphnet/direct", "method": "morphnet", "search_targets": 4},
            {"row": "autoslim/direct", "method": "autoslim", "search_targets": 3}]
    (note, _) = _shared_note(rows)
    assert "each served several (morphnet/direct: 4, autoslim/direct: 3) MACs budgets" in note
    (note, _) = _shared_note([{**r, "search_targets": 3} for r in rows])
    assert "each served 3 MACs budgets" in note
