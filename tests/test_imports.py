"""The spec, graph, widths and transfer layers, `import wtc` and the search framework with the
uniform baseline never import torch, and the public calls survive importing every submodule
first (each checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.integration

CODE = """
import sys
import {module}
{extra}
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
print("ok")
"""


@pytest.mark.parametrize(("module", "extra"), [
    ("wtc", "wtc.load_spec('specs/resnet20.yaml')"),
    ("wtc.spec", "wtc.spec.load_spec('specs/mobilenetv2.yaml')"),
    ("wtc.graph", "import wtc.spec; g = wtc.graph.compile_spec(wtc.spec.load_spec("
                  "'specs/resnet50.yaml')); wtc.graph.count_macs(g)"),
    ("wtc.widths", "import wtc; g = wtc.compile_spec(wtc.load_spec('specs/resnet20.yaml'));"
                   " wtc.uniform_widths(g, multiplier=0.5)"),
    ("wtc.cli.spec_cmds", ""),
    ("wtc.cli.main", "from typer.testing import CliRunner; run = CliRunner().invoke;"
                     " r = run(wtc.cli.main.app, ['validate', 'specs/resnet20.yaml']);"
                     " assert r.exit_code == 0, r.output;"
                     " assert run(wtc.cli.main.app, ['transfer', '--help']).exit_code == 0"),
    ("wtc.widthtransfer", "import wtc; g = wtc.compile_spec(wtc.load_spec("
                          "'specs/resnet20.yaml')); w = wtc.uniform_widths(g, multiplier=0.5);"
                          " wtc.transfer(w, g, g, target_macs=w.macs)"),
    ("wtc.optimizers", "import wtc; g = wtc.compile_spec(wtc.load_spec('specs/resnet20.yaml'));"
                       " wtc.search(g, 'uniform', target_macs='0.5x');"
                       " wtc.optimizers.validate_settings('morphnet', {'strength': 2.0})"),
    ("wtc.options", ""),
    ("wtc.plot", ""),
])
def test_layer_imports_without_torch(module, extra):
    result = subprocess.run([sys.executable, "-c", CODE.format(module=module, extra=extra)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


HELP = """
import sys
from typer.testing import CliRunner
from wtc.cli.main import app
for command in sys.argv[1:]:
    res = CliRunner().invoke(app, [command, "--help"] if command else ["--help"])
    assert res.exit_code == 0, (command, res.output)
    assert "torch" not in sys.modules, (command, sorted(m for m in sys.modules
                                                        if m.startswith("torch"))[:5])
print("ok")
"""


def test_no_help_of_the_cli_imports_torch():
    """Every command's help, with the registries' names filled in (methods, datasets, costs,
    runtimes, backends), is shown without importing torch: a dataset or runtime is declared by
    name and imported on first use."""
    import typer

    from wtc.cli.main import app

    commands = sorted(c.name or "" for c in typer.main.get_command(app).commands.values())
    assert "search" in commands and "profile" in commands
    res = subprocess.run([sys.executable, "-c", HELP, "", *commands], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


LAZY_DATA = """
import sys
from wtc.data import DATASETS, DataConfig
names = DATASETS.names()
DataConfig(data="synthetic")
assert "torch" not in sys.modules
assert "wtc.data.synthetic" not in sys.modules
make = DATASETS.get("synthetic")
from wtc.data.synthetic import make as declared
assert make is declared, (make, declared)
import wtc.data, wtc.profile
for package in (wtc.data, wtc.profile):
    for name in package.__all__:
        getattr(package, name)
print(" ".join(names))
"""


def test_datasets_are_listed_and_validated_without_torch_and_loaded_on_lookup():
    res = subprocess.run([sys.executable, "-c", LAZY_DATA], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["cifar10", "fashion-mnist", "imagefolder", "synthetic"]


def test_torch_backed_names_resolve_lazily():
    import wtc

    assert callable(wtc.build_model)
    with pytest.raises(AttributeError):
        _ = wtc.no_such_name


PUBLIC_CALLS = """
import inspect, pkgutil, importlib, sys
import wtc
for info in pkgutil.walk_packages(wtc.__path__, "wtc."):
    importlib.import_module(info.name)
for name in ("transfer", "search", "train", "build_model", "export_onnx"):
    assert inspect.isfunction(getattr(wtc, name)), (name, getattr(wtc, name))
g = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
w = wtc.uniform_widths(g, multiplier=0.5)
assert wtc.transfer(w, g, g, target_macs=w.macs).widths.groups == w.groups
r = wtc.search(g, "uniform", target_macs="0.5x")
assert r.widths.macs <= wtc.count_macs(g)
import wtc.trainer, wtc.optimizers, wtc.widthtransfer
assert inspect.isfunction(wtc.train) and inspect.isfunction(wtc.search)
print("ok")
"""


def test_public_calls_survive_importing_every_submodule_first():
    pytest.importorskip("torch")
    res = subprocess.run([sys.executable, "-c", PUBLIC_CALLS], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout
