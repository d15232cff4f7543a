"""The package's shape (issue 13, docs/ARCHITECTURE.md): layers that import only downwards, no
import cycles, no module named like a public function, small modules and functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wtc"

# bottom to top; a module may import its own layer and the layers below, never above.
# wtc/__init__.py (lazy exports) is the top-level exception; wtc.experiment is reserved.
LAYERS: list[tuple[str, ...]] = [
    ("wtc.errors", "wtc.registry", "wtc.options", "wtc.limits", "wtc.safe_yaml", "wtc.paths",
     "wtc.numbers", "wtc.text", "wtc.atomic"),
    ("wtc.spec",),
    ("wtc.graph",),
    ("wtc.widths",),
    ("wtc.widthtransfer", "wtc.plot"),
    ("wtc.nn",),
    ("wtc.export",),
    ("wtc.profile",),
    ("wtc.importer",),
    ("wtc.data",),
    ("wtc.trainer",),
    ("wtc.optimizers",),
    ("wtc.experiment",),
    ("wtc.cli",),
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
WAIVER = "# long:"  # "# long: <why it must be one piece>" near the top waives the size limits


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS here and to "
                         "docs/ARCHITECTURE.md")


def _runtime_nodes(tree: ast.AST):
    """Every node, but not the bodies of `if TYPE_CHECKING:` (annotations only, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def imports_of(module: str) -> set[str]:
    """Every wtc module `module` imports, at any depth of its code (function-level too)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the submodule when there is one
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("wtc"):
                found.add(name)
    found.discard(module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_belongs_to_a_layer():
    for m in MODULES:
        if m != "wtc":
            layer_of(m)


def test_imports_flow_down_the_layers():
    bad = []
    for m, targets in GRAPH.items():
        if m == "wtc":
            continue
        for t in targets:
            if t == "wtc":
                if layer_of(m) != layer_of("wtc.cli"):
                    bad.append(f"{m} imports the top-level package `wtc` (import from the "
                               "module that defines the name instead)")
            elif layer_of(t) > layer_of(m):
                bad.append(f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                cycle = [*stack[stack.index(t):], t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_no_module_is_named_like_a_public_name_of_its_package():
    import importlib

    import wtc

    bad = []
    for m in MODULES:
        parent, _, leaf = m.rpartition(".")
        if not parent:
            continue
        if parent == "wtc":
            exported = set(wtc._LAZY)
        else:
            exported = set(getattr(importlib.import_module(parent), "__all__", ()))
        if leaf in exported:
            bad.append(f"{m} shares its name with {parent}.{leaf}")
    assert not bad, "\n".join(bad)


def _waived(lines: list[str], start: int, count: int = 3) -> bool:
    return any(WAIVER in line for line in lines[start:start + count])


def test_modules_and_functions_are_small():
    bad = []
    for path in MODULES.values():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES and not _waived(lines, 0, 15):
            bad.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                body = node.body[0].lineno - 1
                if n > MAX_FUNCTION_LINES and not _waived(lines, body - 1, 4):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not bad, (f"over {MAX_MODULE_LINES} lines per module or {MAX_FUNCTION_LINES} per "
                     f"function (split it, or say why not in a '{WAIVER}' comment):\n"
                     + "\n".join(bad))


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


def _calls(module: str):
    """(dotted callee, call node) of every call in `module`'s code, e.g. ("torch.set_num_threads",
    node) or ("getattr", node)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


def test_nothing_outside_the_cli_imports_the_cli():
    bad = [f"{m} imports {t}" for m, targets in GRAPH.items()
           if not (m == "wtc.cli" or m.startswith("wtc.cli."))
           for t in targets if t == "wtc.cli" or t.startswith("wtc.cli.")]
    assert not bad, "\n".join(bad)


# process-wide settings belong to the process's entry point, not to a library call
THREAD_SETTERS = {"wtc.trainer.distributed",  # set_process_threads, which entry points call
                  "wtc.experiment.execute",  # a unit worker's entry (pool process, Ray task)
                  "wtc.profile.runtimes"}  # a measurement at a chosen count, restored after


def test_process_wide_state_is_set_by_entry_points_only():
    bad = []
    for m in MODULES:
        for callee, node in _calls(m):
            if callee.endswith("matplotlib.use") or callee == "mpl.use":
                bad.append(f"{m}:{node.lineno} chooses matplotlib's backend (draw on a "
                           "matplotlib Figure instead: wtc.plot.figure)")
            if callee.endswith("set_num_threads") and m not in THREAD_SETTERS:
                bad.append(f"{m}:{node.lineno} sets torch's threads (the process's entry point "
                           "does, with wtc.trainer.set_process_threads)")
            if (callee.endswith("set_process_threads") and not m.startswith("wtc.cli.")
                    and m not in THREAD_SETTERS):
                bad.append(f"{m}:{node.lineno} sets the process's threads from a library call")
    assert not bad, "\n".join(bad)


def test_optimizer_methods_are_called_not_looked_up():
    """The experiment, the report and the CLI call the methods `Optimizer` declares; a
    `getattr(cls, "estimate_train_macs", None)` would let a method that lacks one pass
    silently."""
    base = ast.parse(MODULES["wtc.optimizers.base"].read_text(encoding="utf-8"))
    declared = next(n for n in base.body if isinstance(n, ast.ClassDef) and n.name == "Optimizer")
    names = {n.name for n in declared.body if isinstance(n, ast.FunctionDef)}
    names |= {t.target.id for t in declared.body
              if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
    assert {"estimate_train_macs", "held_out_top1", "run", "check"} <= names
    bad = []
    for m in MODULES:
        if m == "wtc.optimizers.base":
            continue
        for callee, node in _calls(m):
            if callee in ("getattr", "hasattr") and len(node.args) >= 2:
                key = node.args[1]
                if isinstance(key, ast.Constant) and key.value in names - {"name"}:
                    bad.append(f"{m}:{node.lineno} looks up {key.value!r} by name")
    assert not bad, "\n".join(bad)


def test_configs_are_held_not_inherited():
    """A `TrainConfig` holds its `DataConfig` (`cfg.data`): no class extends either config, so
    a data option is never read as if it were a training option (or the reverse)."""
    bad = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                         for b in node.bases}
                bad += [f"{m}:{node.lineno} {node.name} extends {b}"
                        for b in sorted(bases & {"DataConfig", "TrainConfig"})]
    assert not bad, "\n".join(bad)
    from wtc.data import DataConfig
    from wtc.trainer import TrainConfig

    assert not issubclass(TrainConfig, DataConfig)
    assert TrainConfig.model_fields["data"].annotation is DataConfig
