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
