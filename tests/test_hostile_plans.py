"""Plans and user text as hostile input (issue 22, classes 3 and 8): everything a plan can get
wrong is refused before the first unit and before anything is written (no ledger, no .lock);
names are printable and bounded, and every message is printed with its control characters and
markup escaped."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.helpers import PLAN, ROOT, refused, tree

pytestmark = pytest.mark.unit

TINY = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")

PLAN_CASES = [
    ({"seeds": [10**30]}, ["seeds.0", "less than or equal to 4294967295"]),
    ({"seeds": [-1, 1]}, ["seeds.0", "greater than or equal to 0"]),
    ({"search": {"seed": 10**30}}, ["search.seed"]),
    ({"proxies": {"p": {"width": 1e9}}}, ["proxies.p.width"]),
    ({"proxies": {"p": {"width": 1e4}}}, ["proxies.p", "cannot build this proxy", "65536"]),
    ({"proxies": {"p": {"depths": [-1, 1]}}}, ["proxies.p.depths.0"]),
    ({"proxies": {"p": {"depth": 1e308}}}, ["proxies.p.depth"]),
    ({"proxies": {"p": {"resolution": 10**9}}}, ["proxies.p.resolution"]),
    ({"proxies": {"../../x": {"width": 0.5}}}, ["proxies", "is not a name"]),
    ({"proxies": {"a\x1b[31m": {"width": 0.5}}}, ["proxies", "is not a name", "\\x1b"]),
    ({"data": {**PLAN["data"], "synthetic_size": 10**12}}, ["data.synthetic_size"]),
    ({"data": {**PLAN["data"], "synthetic_size": 10**6, "synthetic_resolution": 4096}},
     ["'data'", "synthetic set", "memory"]),
    ({"data": {**PLAN["data"], "train_images": "many"}}, ["data.train_images"]),
    ({"data": {**PLAN["data"], "seed": 3}}, ["data.seed"]),
    ({"target": {"spec": TINY, "macs": "infx"}}, ["target.macs"]),
    ({"train": {"epochs": 10**12}}, ["train.epochs", "100000"]),
    ({"methods": {"morphnet": {"epochs": 10**12}}}, ["methods.morphnet", "epochs"]),
    ({"methods": {"morphnet": {"lr": "inf"}}}, ["methods.morphnet", "finite"]),
    ({"name": "a\nb"}, ["'name'", "unprintable"]),
    ({"methods": {"morphnet": {"epochs": 1000}},
      "proxies": {"long": {"width": 0.5, "search_epochs": 1000}}},
     ["proxies.long", "searches on it", "epochs"]),
    ({"data": {**PLAN["data"], "batch_size": 60000},
      "proxies": {"big": {"width": 0.5, "batch_scale": 64}}},
     ["proxies.big", "batch_size"]),
]


def write(tmp_path, plan):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


@pytest.mark.parametrize(("change", "expect"), PLAN_CASES,
                         ids=[f"case{i}" for i in range(len(PLAN_CASES))])
def test_a_bad_plan_is_refused_before_anything_is_written(cli, tmp_path, change, expect):
    plan = write(tmp_path, {**copy.deepcopy(PLAN), **change})
    out = tmp_path / "out"
    before = tree(tmp_path)
    refused(cli, "experiment", plan, "--out", out, "--threads", "1",
            expect=[str(plan), *expect])
    assert not out.exists() and tree(tmp_path) == before


@pytest.mark.parametrize(("args", "expect"), [
    (["--backend", "nope"], ["unknown backend 'nope'"]),
    (["--address", "1.2.3.4:6379"], ["--address"]),
    (["--progress", "fancy"], ["progress"]),
    (["--device", "tpu"], ["device"]),
])
def test_bad_run_options_leave_no_ledger_or_lock(cli, tmp_path, args, expect):
    plan = write(tmp_path, copy.deepcopy(PLAN))
    out = tmp_path / "out"
    refused(cli, "experiment", plan, "--out", out, *args, expect=expect)
    assert not out.exists()
    out.mkdir()  # an existing experiment folder is left as it was
    refused(cli, "experiment", plan, "--out", out, *args, expect=expect)
    assert list(out.iterdir()) == []


def spec_named(tmp_path, name: str):
    text = (ROOT / "specs" / "tiny" / "resnet_tiny.yaml").read_text()
    first = next(line for line in text.splitlines() if line.startswith("name:"))
    path = tmp_path / "named.yaml"
    path.write_text(text.replace(first, "name: " + yaml.safe_dump(name).split("\n...")[0]
                                 .strip(), 1))
    return path


@pytest.mark.parametrize("name", ["evil\x1b[2J\x1b[31m", "two\nlines", "bell\x07", "x" * 20_000])
def test_a_spec_name_that_is_not_printable_text_is_refused(cli, tmp_path, name):
    spec = spec_named(tmp_path, name)
    msg = refused(cli, "validate", spec, expect=[str(spec), "'name'"])
    assert "\x1b" not in msg and "\x07" not in msg


@pytest.mark.parametrize("name", ["two\nlines", "esc\x1b[31m", "x" * 20_000])
def test_proxy_name_is_checked_and_nothing_is_written(cli, tmp_path, name):
    out = tmp_path / "p.yaml"
    msg = refused(cli, "proxy", TINY, "-o", out, "--width", "0.5", "--name", name,
                  expect=["name"])
    assert "\x1b" not in msg and not out.exists() and list(tmp_path.iterdir()) == []


def test_markup_and_escapes_in_names_and_messages_print_as_text(cli, tmp_path):
    spec = spec_named(tmp_path, "[/bold] [red]net")
    code, out, err = cli("validate", spec)
    assert code == 0, err
    assert "[/bold] [red]net" in out
    refused(cli, "validate", tmp_path / "no[/bold]such\x1b.yaml", expect=["no[/bold]such\\x1b"])


def test_shown_escapes_control_characters():
    from wtc.text import shown, text_problem

    assert shown("a\x1b[31mb\nc\r[/bold]") == "a\\x1b[31mb\nc\\r\\[/bold]"
    assert text_problem("ok name") is None and "unprintable" in text_problem("a\tb")
