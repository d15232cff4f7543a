"""`wtc experiment` and `wtc report` (issue 11): a tiny plan on synthetic data, end to end.

Every run here trains tiny specs for one epoch on a few hundred synthetic images (well under
a second per unit), in the test's own process (`jobs=1`).
"""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import replace

import pytest
import yaml

from tests.helpers import PLAN, RESNET_TINY, ROOT, results, write_plan
from wtc.errors import PlanError
from wtc.experiment import (
    Ledger,
    collect,
    expand,
    load_plan,
    noop_units,
    project,
    resolve_plan,
    run_experiment,
    write_report,
)
from wtc.experiment.report import pearson
from wtc.experiment.stats import welch
from wtc.experiment.unit_clock import CLOCK_FILE

pytestmark = pytest.mark.integration

TINY = RESNET_TINY


class EvalOnlyTestSet:
    """Makes the synthetic test loader raise when it is read outside an `eval` unit, and counts
    the reads inside them (so a search or a training that evaluated on the test set fails the
    run instead of passing unnoticed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from wtc.data import DATASETS
        from wtc.experiment import execute

        self.in_eval = False
        self.reads = 0
        make, run_eval = DATASETS.get("synthetic"), execute.UNIT_KINDS.get("eval").run
        guard = self

        class Guarded:
            def __init__(self, loader):
                self._loader = loader

            def __getattr__(self, name):
                if name in ("images", "labels"):
                    guard.check()
                return getattr(self._loader, name)

            def __len__(self):
                return len(self._loader)

            def __iter__(self):
                guard.check()
                return iter(self._loader)

        def guarded_make(*args):
            bundle = make(*args)
            bundle.test = Guarded(bundle.test)
            return bundle

        def guarded_eval(payload):
            self.in_eval = True
            try:
                return run_eval(payload)
            finally:
                self.in_eval = False

        monkeypatch.setitem(DATASETS._items, "synthetic", guarded_make)
        monkeypatch.setitem(execute.UNIT_KINDS._items, "eval",
                            replace(execute.UNIT_KINDS.get("eval"), run=guarded_eval))

    def check(self) -> None:
        if not self.in_eval:
            raise AssertionError("the test set was read outside an eval unit")
        self.reads += 1


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted run of the tiny plan (shared by the tests that only read it), with the
    test set readable only inside eval units."""
    folder = tmp_path_factory.mktemp("exp")
    plan = load_plan(write_plan(folder / "plan.yaml"))
    out = folder / "out"
    with pytest.MonkeyPatch.context() as mp:
        guard = EvalOnlyTestSet(mp)
        summary = run_experiment(plan, out, threads=1)
    return plan, out, summary, guard


def test_expansion_is_a_dag_with_one_row_per_method_and_source():
    plan = resolve_plan(PLAN)
    ids = [u.id for u in expand(plan)]
    assert ids[:4] == ["search/uniform/target", "search/morphnet/target",
                       "search/morphnet/half", "search/morphnet/shallow"]
    assert "transfer/morphnet/half" in ids and "transfer/morphnet/shallow/last" in ids
    assert "transfer/morphnet/shallow/average" not in ids  # the proxy's own rule list
    rows = ["uniform", "morphnet/direct", "morphnet/half", "morphnet/shallow/last"]
    assert [i for i in ids if i.startswith("eval/")] == [
        f"eval/{r}/seed{s}" for r in rows for s in (0, 1)]
    # proxies search at the same share of their own base MACs
    from wtc.graph import count_macs

    half = plan.proxies["half"]
    assert half.target_macs == round(plan.target_macs / plan.base_macs * count_macs(half.graph))
    assert half.data.val_split == 0.2 and plan.target.data.fraction == 1.0


def test_tiny_plan_end_to_end_through_the_cli_and_a_second_run_executes_nothing(cli, tmp_path):
    plan = write_plan(tmp_path / "plan.yaml")
    out = tmp_path / "out"
    code, stdout, err = cli("experiment", plan, "--out", out, "--threads", "1", "--json")
    assert code == 0, err
    first = json.loads(stdout)
    assert len(first["ran"]) + len(first["reused"]) == len(expand(load_plan(plan)))
    assert not first["skipped"]
    for name in ("ledger.jsonl", "report.md", "report.json", "figures/widths_morphnet.png",
                 "figures/top1_vs_search_macs.png"):
        assert (out / name).is_file(), name
    assert "| morphnet | shallow/last |" in (out / "report.md").read_text()
    code, stdout, err = cli("experiment", plan, "--out", out, "--threads", "1", "--json")
    assert code == 0, err
    second = json.loads(stdout)
    assert second["ran"] == [] and len(second["skipped"]) == len(expand(load_plan(plan)))
    code, stdout, err = cli("report", out)
    assert code == 0, err
    assert "morphnet" in stdout


def test_the_test_set_is_read_by_eval_units_only(finished):
    """The run behind `finished` had a test loader that raises outside eval units; it finished,
    so no search or training read the test set. Every eval unit did read it."""
    _, out, summary, guard = finished
    evals = [u for u in summary.ran if u.startswith("eval/")]
    assert evals and guard.reads >= len(evals)
    for r in Ledger(out).units():
        has_top1 = "top1" in r["outputs"]
        assert has_top1 == (r["kind"] == "eval"), r["unit"]


def test_the_test_set_guard_catches_a_read_outside_eval(monkeypatch):
    from wtc.data import DataConfig, make_data

    guard = EvalOnlyTestSet(monkeypatch)
    bundle = make_data(DataConfig(data="synthetic", synthetic_size=8, synthetic_test_size=8),
                       channels=3, resolution=8, num_classes=2)
    with pytest.raises(AssertionError, match="outside an eval unit"):
        next(iter(bundle.test))
    assert guard.reads == 0


def test_kill_between_units_then_rerun_gives_the_uninterrupted_results(finished, tmp_path):
    plan, full, _, _ = finished
    out = tmp_path / "out"
    part = run_experiment(plan, out, threads=1, max_units=5)
    assert part.stopped and len(part.ran) == 5
    with open(out / "ledger.jsonl", "a") as f:  # a kill in the middle of a write
        f.write('{"type": "unit", "unit": "train/unif')
    rest = run_experiment(plan, out, threads=1)
    assert set(rest.skipped) == set(part.ran)
    assert results(out) == results(full)


def test_a_ledger_without_its_weights_reruns_only_what_still_needs_them(finished, tmp_path):
    """A fresh clone holds the committed ledger, not the trained weights: trainings whose
    evaluations are recorded are done; one whose evaluation is missing trains again."""
    import shutil

    plan, src, _, _ = finished
    out = tmp_path / "clone"
    out.mkdir()
    lines = (src / "ledger.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    dropped = next(r["unit"] for r in rows if str(r.get("unit", "")).startswith("eval/"))
    kept = [x for x, r in zip(lines, rows, strict=True) if r.get("unit") != dropped]
    (out / "ledger.jsonl").write_text("\n".join(kept) + "\n")
    again = run_experiment(plan, out, threads=1)
    train = dropped.replace("eval/", "train/", 1)
    # (the evaluation may be shared with a row that trained to the same weights)
    assert sorted(again.ran + list(again.reused)) == sorted([train, dropped])
    assert results(out) == results(src)
    shutil.rmtree(out)


def test_changing_one_proxy_reruns_only_its_downstream_units(finished, tmp_path):
    _, full, _, _ = finished
    out = tmp_path / "out"
    shutil.copytree(full, out)
    changed = load_plan(write_plan(tmp_path / "plan.yaml",
                                   proxies={**PLAN["proxies"], "half": {"width": 0.75}}))
    res = run_experiment(changed, out, threads=1)
    downstream = {u.id for u in expand(changed) if "/half" in u.id}
    assert "search/morphnet/half" in res.ran
    assert set(res.ran) <= downstream
    assert not any("/shallow" in u or "direct" in u or "uniform" in u for u in res.ran)


@pytest.mark.parametrize("change,key", [
    ({"methods": {"nope": {}}}, "methods.nope"),
    ({"methods": {"morphnet": {"strenght": 1}}}, "methods.morphnet"),
    ({"target": {"spec": "no/such.yaml"}}, "target.spec"),
    ({"proxies": {"bad": {"depths": [1, 1, 1]}}}, "proxies.bad"),
    ({"proxies": {"none": {}}}, "proxies.none"),
    ({"seeds": []}, "seeds"),
    ({"target": {"spec": TINY, "macs": 1000}}, "target.macs"),
    ({"stacking": ["sideways"]}, "stacking"),
    ({"data": {"data": "synthetic", "fraction": 0.5}}, "data.fraction"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"data": {"data": "cifar10", "data_root": "/no/such/dir"}}, "data"),
])
def test_a_bad_plan_fails_before_any_unit_runs_naming_the_key(cli, tmp_path, change, key):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, **change}))
    code, _, err = cli("experiment", plan, "--out", tmp_path / "out")
    assert code == 2, err
    assert f"at '{key}'" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "ledger.jsonl").exists()


def test_report_numbers_are_recomputed_from_the_ledger(finished):
    _, out, _, _ = finished
    report = write_report(out)
    assert report == json.loads((out / "report.json").read_text())
    lines = {r["unit"]: r for r in Ledger(out).units()}
    by_row = {r["row"]: r for r in report["rows"]}
    uni = statistics.fmean(lines[f"eval/uniform/seed{s}"]["outputs"]["top1"] for s in (0, 1))
    for row, r in by_row.items():
        tops = [lines[f"eval/{row}/seed{s}"]["outputs"]["top1"] for s in (0, 1)]
        assert r["top1_mean"] == pytest.approx(statistics.fmean(tops))
        assert r["top1_std"] == pytest.approx(statistics.stdev(tops))
        assert r["delta_uniform"] == pytest.approx(statistics.fmean(tops) - uni)
        unis = [lines[f"eval/uniform/seed{s}"]["outputs"]["top1"] for s in (0, 1)]
        if row != "uniform" and welch(tops, unis) is not None:
            assert r["p_uniform"] == pytest.approx(welch(tops, unis)[2])
    direct = lines["search/morphnet/target"]
    half = lines["search/morphnet/half"]
    assert by_row["morphnet/half"]["search_macs"] == half["train_macs"] > 0
    assert by_row["morphnet/half"]["overhead_reduction"] == pytest.approx(
        direct["train_macs"] / half["train_macs"])
    ratios = [w / b for _, b, w in lines["transfer/morphnet/half"]["outputs"]["profile"]]
    ref = [w / b for _, b, w in direct["outputs"]["profile"]]
    assert by_row["morphnet/half"]["profile_corr"] == pearson(ratios, ref)
    assert by_row["morphnet/direct"]["overhead_reduction"] == 1.0
    assert report["complete"] and collect(out)["rows"] == report["rows"]


def test_dry_run_projects_macs_without_data_and_writes_nothing(cli, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "target": {"spec": str(ROOT / "specs" / "resnet18.yaml"), "macs": "0.5x"},
        "data": {"data": "imagefolder", "data_root": "/no/imagenet", "train_images": 1281167},
        "methods": ["morphnet"],
        "proxies": {"all": {"width": 0.5, "depths": [1, 1, 1, 1], "resolution": 112,
                            "fraction": 0.1}},
        "seeds": [0]}))
    code, stdout, err = cli("experiment", plan, "--out", tmp_path / "out", "--dry-run",
                            "--json")
    assert code == 0, err
    data = json.loads(stdout)
    ratio = data["overhead_ratios"]["search/morphnet/all"]
    assert 100 < ratio < 400  # 4 (width) x ~2 (depth) x 10 (data) x 4 (pixels)
    assert not (tmp_path / "out").exists()
    assert sum(p.train_macs for p in project(load_plan(plan))) == data["total_train_macs"]


def test_noop_units_run_on_a_process_pool(tmp_path):
    res = run_experiment(None, tmp_path, units=noop_units(6, chain=False), jobs=2, threads=1)
    assert sorted(res.ran) == sorted(f"noop/{i}" for i in range(6))
    assert run_experiment(None, tmp_path, units=noop_units(6), jobs=2).ran == []


def test_unknown_plan_keys_and_files(tmp_path):
    with pytest.raises(PlanError, match="no such plan file"):
        load_plan(tmp_path / "missing.yaml")
    with pytest.raises(PlanError, match="at 'colour': unknown key"):
        resolve_plan({**PLAN, "colour": "blue"})


def test_a_classes_and_resolution_proxy_searches_on_its_own_data(tmp_path):
    plan = resolve_plan({**PLAN, "proxies": {"cls": {"classes": 2, "resolution": 8,
                                                     "fraction": 0.5}}})
    src = plan.proxies["cls"]
    assert src.spec.classes == 2 and src.spec.input.resolution == 8
    assert src.data.classes == [0, 1] and src.data.fraction == 0.5
    units = [u for u in expand(plan) if u.id in ("search/morphnet/cls", "transfer/morphnet/cls")]
    res = run_experiment(None, tmp_path, units=units, threads=1)
    assert res.ran == ["search/morphnet/cls", "transfer/morphnet/cls"]
    line = {r["unit"]: r for r in Ledger(tmp_path).units()}["transfer/morphnet/cls"]
    assert line["outputs"]["spec"]["name"] == "resnet_tiny"  # widths for the target
    assert abs(line["outputs"]["macs"] - plan.target_macs) <= 0.05 * plan.target_macs


def test_one_driver_per_experiment_folder(tmp_path):
    import fcntl

    from wtc.errors import ConfigError

    with open(tmp_path / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another `wtc experiment` is running"):
            run_experiment(None, tmp_path, units=noop_units(1))
    assert run_experiment(None, tmp_path, units=noop_units(1)).ran == ["noop/0"]


def test_rows_with_the_same_widths_share_one_training_per_seed(tmp_path):
    """One block per stage stacks back alike under `last` and `average`: the second row's
    training and evaluation are recorded as shared with the first, not run again."""
    plan = resolve_plan({**PLAN, "proxies": {"shallow": {"depths": [1, 1],
                                                          "stacking": ["last", "average"]}},
                         "seeds": [0]})
    units = [u for u in expand(plan) if "/shallow" in u.id]
    res = run_experiment(None, tmp_path, units=units, threads=1)
    last, avg = "morphnet/shallow/last/seed0", "morphnet/shallow/average/seed0"
    assert res.reused == {f"train/{avg}": f"train/{last}", f"eval/{avg}": f"eval/{last}"}
    assert f"train/{last}" in res.ran and f"train/{avg}" not in res.ran
    lines = {r["unit"]: r for r in Ledger(tmp_path).units()}
    for kind in ("train", "eval"):
        a, b = lines[f"{kind}/{last}"], lines[f"{kind}/{avg}"]
        assert a["outputs"] == b["outputs"] and a["artifacts"] == b["artifacts"]
        assert b["reused"] == a["unit"] and b["seconds"] == 0 and b["train_macs"] == 0
    assert lines[f"train/{last}"]["train_macs"] > 0
    again = run_experiment(None, tmp_path, units=units, threads=1)
    assert again.ran == [] and again.reused == {} and len(again.skipped) == len(units)


def test_a_second_plan_reuses_the_first_plans_searches(finished, cli, tmp_path):
    """Only the final recipe changed: every search and transfer is copied from the first
    experiment's ledger (with `imported`), every training and evaluation runs."""
    _, first, _, _ = finished
    plan = write_plan(tmp_path / "plan.yaml", train={"epochs": 1, "lr": 0.1})
    out = tmp_path / "out"
    code, stdout, err = cli("experiment", plan, "--out", out, "--threads", "1", "--json",
                            "--reuse", first)
    assert code == 0, err
    res = json.loads(stdout)
    kinds = {u.id: u.kind for u in expand(load_plan(plan))}
    assert sorted(res["imported"]) == sorted(i for i, k in kinds.items()
                                             if k in ("search", "transfer"))
    assert all(kinds[i] in ("train", "eval") for i in res["ran"] + list(res["reused"]))
    mine, theirs = Ledger(out).current(), Ledger(first).current()
    for uid in res["imported"]:
        assert mine[uid]["imported"] == str(first)
        assert mine[uid]["outputs"] == theirs[uid]["outputs"]
    assert collect(out)["complete"]
    code, _, err = cli("experiment", plan, "--out", tmp_path / "o2", "--reuse", tmp_path)
    assert code == 2 and "--reuse" in err and "no ledger.jsonl" in err
    assert not (tmp_path / "o2").exists()


def test_a_proxy_can_search_longer_than_the_target():
    plan = resolve_plan({**PLAN, "proxies": {"half": {"width": 0.5},
                                             "half_long": {"width": 0.5, "search_epochs": 3}}})
    units = {u.id: u for u in expand(plan)}
    epochs = {k: units[f"search/morphnet/{k}"].params["settings"]["epochs"]
              for k in ("target", "half", "half_long")}
    assert epochs == {"target": 1, "half": 1, "half_long": 3}
    assert units["search/morphnet/half_long"].params["projection"] == {"width": 0.5}
    cost = {p.unit: p.train_macs for p in project(plan)}
    ratio = cost["search/morphnet/half_long"] / cost["search/morphnet/half"]
    assert 2.0 < ratio <= 3.0  # the λ ladder's scoring epochs are not scaled
    # the dry run says what each search trains on, so a proxy short of image-passes shows
    notes = {p.unit: p.note for p in project(resolve_plan({**PLAN, "proxies": {
        "half_long": {"width": 0.5, "search_epochs": 3},
        "tenth": {"fraction": 0.1, "search_epochs": 10}}}))}
    images = 160 * 0.8  # the plan's synthetic training set, less the 20% held out
    assert notes["search/morphnet/target"] == f"{images:,.0f} images x 1 epochs"
    assert notes["search/morphnet/half_long"] == f"{images:,.0f} images x 3 epochs"
    assert notes["search/morphnet/tenth"] == f"{images * 0.1:,.0f} images x 10 epochs"
    assert notes["search/uniform/target"] == ""
    with pytest.raises(PlanError, match="search_epochs"):
        resolve_plan({**PLAN, "proxies": {"bad": {"width": 0.5, "search_epochs": 0}}})


def test_ray_backend_gives_the_local_backends_ledger_results(finished, tmp_path):
    """The Ray backend runs the tiny plan on a local Ray instance with 2 CPUs and records the
    same results as the local backend. About 10 s, most of it Ray's start-up."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'wtc[ray]')")
    plan, local_out, local, _ = finished
    # an interrupted attempt's clock in a search's work folder: on the local instance the
    # workers see the driver's files, so the search continues there (and counts that attempt)
    search = next(r for r in Ledger(local_out).units() if r["unit"].startswith("search/morph"))
    work = tmp_path / "ray" / "work" / search["input_hash"]
    work.mkdir(parents=True)
    (work / CLOCK_FILE).write_text('{"seconds": 5.0, "attempts": 1}\n')
    on_ray = run_experiment(plan, tmp_path / "ray", backend="ray", jobs=2, threads=1)
    assert not ray.is_initialized()  # the backend shut down the instance it started
    assert sorted(on_ray.ran) == sorted(local.ran)
    assert results(tmp_path / "ray") == results(local_out)
    resumed = next(r for r in Ledger(tmp_path / "ray").units() if r["unit"] == search["unit"])
    assert resumed["timing"]["attempts"] == 2 and resumed["timing"]["earlier_seconds"] == 5.0
    assert not (tmp_path / "ray" / "work").exists()
    # the driver alone wrote the ledger and the artifacts, resumable with the local backend
    again = run_experiment(plan, tmp_path / "ray", threads=1)
    assert again.ran == [] and len(again.skipped) == len(local.ran) + len(local.reused)


def test_an_unknown_backend_is_refused_before_the_folder_is_made(cli, tmp_path):
    plan = write_plan(tmp_path / "plan.yaml")
    code, _, err = cli("experiment", plan, "--out", tmp_path / "out", "--backend", "nope")
    assert code == 2 and "unknown backend 'nope'; choose one of: local, ray" in err
    assert not (tmp_path / "out").exists()


def test_a_final_training_finished_before_it_was_recorded_is_read_back(tmp_path, monkeypatch):
    """A driver killed between a training's last checkpoint and its ledger line: the rerun
    reads the checkpoint back (same summary, same weights) instead of training again."""
    from wtc.experiment import torchside
    from wtc.experiment.execute import weights_hash
    from wtc.graph import compile_spec
    from wtc.spec import load_spec
    from wtc.trainer import resume

    graph = compile_spec(load_spec(TINY))
    groups = {g: graph.groups[g].base for g in graph.free_groups}
    config = {**PLAN["data"], **PLAN["train"], "precision": "fp32", "channels_last": False}
    first = torchside.train_final(graph, groups, config, seed=0, threads=1, device="cpu",
                                  work_dir=tmp_path)

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(resume, "fit", no_training)
    again = torchside.train_final(graph, groups, config, seed=0, threads=1, device="cpu",
                                  work_dir=tmp_path)
    assert again["summary"] == first["summary"] and again["train_macs"] == first["train_macs"]
    assert (weights_hash(again["model"].state_dict())
            == weights_hash(first["model"].state_dict()))
