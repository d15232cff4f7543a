"""Numbers from the command line (issue 22, class 2): one check (`wtc.numbers`) with the bounds
of `wtc.limits` for every command, so a value a file would refuse is refused here too, exit 2,
with the option named and nothing written."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT, refused, tree
from wtc.numbers import NumberError, bounded, read_number

pytestmark = pytest.mark.unit

TINY = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")
SEARCH = ("search", TINY, "--data", "synthetic", "-o", "{tmp}/w.json")
TRAIN = ("train", TINY, "--data", "synthetic", "--epochs", "1", "-o", "{tmp}/run")
PROXY = ("proxy", TINY, "-o", "{tmp}/p.yaml")
EXPORT = ("export", TINY, "--onnx", "{tmp}/m.onnx")
HUGE = "1" + "0" * 5000

CASES = [
    (TRAIN, ["--lr", "inf"], ["--lr", "finite"]),
    (TRAIN, ["--lr", "nan"], ["--lr", "finite"]),
    (TRAIN, ["--seed", "100000000000000000000000"], ["--seed", "at most 4,294,967,295"]),
    (TRAIN, ["--resolution", "1000000000"], ["--resolution", "at most 8,192"]),
    (TRAIN, ["--resolution", "-1"], ["--resolution", "at least 4"]),
    (TRAIN, ["--epochs", "100000000000000000000"], ["--epochs", "at most 100,000"]),
    (TRAIN, ["--fraction", "inf"], ["--fraction", "finite"]),
    (TRAIN, ["--batch-size", "0"], ["--batch-size", "at least 1"]),
    (TRAIN, ["--classes", "0,99999999999999999999"], ["--classes", "0 to 65,535"]),
    (TRAIN, ["--classes", "0,-1"], ["--classes", "0 to 65,535"]),
    (("validate", TINY), ["--max-memory", "9" * 400], ["size limit", "at most 2^63"]),
    (SEARCH, ["--method", "uniform", "--target-macs", "infx"], ["--target-macs", "finite"]),
    (SEARCH, ["--method", "uniform", "--target-macs", "1e400"], ["--target-macs", "finite"]),
    (SEARCH, ["--method", "uniform", "--target-macs", "-5M"], ["--target-macs", "above 0"]),
    (SEARCH, ["--method", "uniform", "--target-macs", HUGE], ["--target-macs", "digits"]),
    (SEARCH, ["--method", "uniform", "--seed", "100000000000000000000000"], ["--seed"]),
    (SEARCH, ["--set", "lr=inf"], ["--set lr", "finite"]),
    (SEARCH, ["--set", "lr=1e400"], ["--set lr", "finite"]),
    (SEARCH, ["--set", "epochs=100000000000"], ["--set", "epochs", "less than or equal"]),
    (SEARCH, ["--fraction", "nan"], ["--fraction", "finite"]),
    (SEARCH, ["--val-min-per-class", "-1"], ["--val-min-per-class", "at least 0"]),
    (PROXY, ["--width", "nan"], ["--width", "finite"]),
    (PROXY, ["--width", "inf"], ["--width", "finite"]),
    (PROXY, ["--width", "1e4"], ["projection", "stem.0.width", "65536"]),
    (PROXY, ["--depth", "1e308"], ["--depth", "at most"]),
    (PROXY, ["--depths", "1,1000000000"], ["stages.1.depth", "1024"]),
    (PROXY, ["--resolution", "-1"], ["--resolution", "at least 4"]),
    (PROXY, ["--classes", "0"], ["--classes", "at least 2"]),
    (PROXY, ["--classes", "1000000"], ["--classes", "at most 65,536"]),
    (("flops", TINY), ["--resolution", "1000000000"], ["--resolution", "at most 8,192"]),
    (("flops", TINY), ["--resolution", "-1"], ["--resolution", "at least 4"]),
    (EXPORT, ["--resolution", "1000000000"], ["--resolution", "at most"]),
    (EXPORT, ["--opset", "100000000000000000000"], ["opset", "not supported"]),
    (("transfer", "{tmp}/w.json", TINY, "-o", "{tmp}/t.json"), ["--target-macs", "infx"],
     ["--target-macs", "finite"]),
    (("experiment", "{tmp}/plan.yaml", "--out", "{tmp}/exp"), ["--jobs", "0"],
     ["--jobs", "at least 1"]),
    (("experiment", "{tmp}/plan.yaml", "--out", "{tmp}/exp"), ["--threads", "1e9"], []),
]


@pytest.mark.parametrize(("base", "extra", "expect"), CASES,
                         ids=[f"{c[0][0]}{''.join(c[1])[:30]}" for c in CASES])
def test_a_bad_command_line_number_is_refused_naming_the_option(cli, tmp_path, base, extra,
                                                                expect):
    if base[0] == "transfer":  # a real widths file to transfer
        code, _, err = cli("search", TINY, "--method", "uniform", "-t", "0.5x", "-o",
                           tmp_path / "w.json")
        assert code == 0, err
    before = tree(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in (*base, *extra)]
    code, out, err = cli(*args)
    if expect:
        refused(cli, *args, expect=expect)
    else:  # typer refuses a non-integer for an int option (its own usage message, exit 2)
        assert code == 2 and "Traceback" not in out + err
    assert tree(tmp_path) == before


def test_a_command_line_value_is_blamed_on_the_option_not_the_config_file(cli, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("data: synthetic\nepochs: 1\nlr: 0.1\n")
    msg = refused(cli, "train", TINY, "--config", config, "--lr", "inf", "-o", tmp_path / "r")
    assert str(config) not in msg
    from wtc.errors import ConfigError
    from wtc.trainer import TrainConfig

    with pytest.raises(ConfigError, match=r"command-line option: --eval-every") as e:
        TrainConfig.load(config, eval_every=10**9)
    assert str(config) not in str(e.value)
    config.write_text("data: synthetic\nepochs: 1000000000\n")
    with pytest.raises(ConfigError, match="in " + str(config)):
        TrainConfig.load(config)
    assert not (tmp_path / "r").exists()


def test_a_config_file_refuses_the_same_values():
    from pydantic import ValidationError

    from wtc.data import DataConfig

    for bad in ({"seed": 10**23}, {"synthetic_size": 10**12}, {"fraction": float("nan")},
                {"resolution": 10**9}, {"batch_size": 10**9}):
        with pytest.raises(ValidationError):
            DataConfig(data="synthetic", **bad)


def test_bounded_and_read_number():
    assert bounded("3", "x", lo=1, integer=True) == 3
    assert bounded(2.0, "x", integer=True) == 2
    assert read_number("1_000", "x") == 1000 and read_number("1e3", "x") == 1000.0
    for value, kw, part in [("inf", {}, "finite"), (float("nan"), {}, "finite"),
                            ("1e400", {}, "finite"), (HUGE, {}, "5,001 digits"),
                            (True, {}, "expected a number"), ("abc", {}, "expected a number"),
                            (2.5, {"integer": True}, "whole number"),
                            (0, {"lo": 0, "lo_open": True}, "above 0"),
                            (10**5000, {"hi": 10}, "too long to print")]:
        with pytest.raises(NumberError, match=part):
            bounded(value, "the value", **kw)
