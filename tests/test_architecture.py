"""The package's shape (issue 13, docs/ARCHITECTURE.md): layers that import only downwards, no
import cycles, no module named like a public function, small modules and functions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wtc"

# bottom to top; a module may import its own layer and the layers below, never above.
# wtc/__init__.py (lazy exports) is the top-level exception; wtc.experiment is reserved.
LAYERS: list[tuple[str, ...]] = [
    ("wtc.errors", "wtc.registry", "wtc.options", "wtc.limits", "wtc.safe_yaml", "wtc.paths",
     "wtc.numbers", "wtc.text", "wtc.atomic", "wtc.lazy"),
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


def test_a_graphs_cache_is_written_by_the_graph_only():
    """What is computed from a graph once is kept through `StageGraph.derived(key, make)`; no
    module reads or writes another object's `_cache`."""
    bad = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr == "_cache"
                    and ast.unparse(node.value) != "self"):
                bad.append(f"{m}:{node.lineno} {ast.unparse(node)} (use graph.derived)")
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


TYPED_PARAMS = {"graph": "StageGraph", "widths": "Widths"}


def test_graphs_and_widths_are_typed_not_any():
    """A parameter named `graph` or `widths` says what it takes (`StageGraph`, `Widths`, or a
    named union), never `Any`: accept-anything entry points are how a dict or a path slipped
    through where a compiled graph was meant."""
    bad = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                ann = arg.annotation
                if (arg.arg in TYPED_PARAMS and ann is not None
                        and ast.unparse(ann).strip("'\"") == "Any"):
                    bad.append(f"{m}:{node.lineno} {node.name}({arg.arg}: Any): "
                               f"say {TYPED_PARAMS[arg.arg]}")
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


# --- the command line (issue 21): module-level apps, one option style, help from registries

CLI = PACKAGE / "cli"


def _cli_trees() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(CLI.glob("*.py"))}


def _is_command_decorator(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and ast.unparse(node.func).endswith(".command")


def test_cli_commands_live_on_module_level_apps():
    """Each command module defines its commands on its own module-level `app = Commands()`;
    main.py puts them together in one place; no `register(app)` closures."""
    from wtc.cli import main

    bad, with_commands = [], set()
    for name, tree in _cli_trees().items():
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            if node.name == "register":
                bad.append(f"cli/{name}.py:{node.lineno} register(): decorate the commands "
                           "on the module's `app` instead")
            if any(_is_command_decorator(d) for d in node.decorator_list):
                if id(node) not in top:
                    bad.append(f"cli/{name}.py:{node.lineno} {node.name} is a command defined "
                               "inside a function")
                elif not all(ast.unparse(d.func) == "app.command"
                             for d in node.decorator_list if _is_command_decorator(d)):
                    bad.append(f"cli/{name}.py:{node.lineno} {node.name} is not on `app`")
                else:
                    with_commands.add(name)
        assigns = {ast.unparse(n.targets[0]): ast.unparse(n.value) for n in tree.body
                   if isinstance(n, ast.Assign) and len(n.targets) == 1}
        if name in with_commands and assigns.get("app") != "Commands()":
            bad.append(f"cli/{name}.py has commands but no module-level `app = Commands()`")
    assert not bad, "\n".join(bad)
    assert {m.__name__.rpartition(".")[2] for m in main.COMMAND_MODULES} == with_commands


def test_cli_options_are_written_one_way():
    """Every typer.Option/typer.Argument sits inside `Annotated[...]` (an alias in
    cli/params.py when several commands share it), never as a default value or a bare
    module-level option object."""
    bad = []
    for name, tree in _cli_trees().items():
        annotated: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "Annotated":
                annotated |= {id(n) for n in ast.walk(node.slice)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and ast.unparse(node.func) in
                    ("typer.Option", "typer.Argument") and id(node) not in annotated):
                bad.append(f"cli/{name}.py:{node.lineno} {ast.unparse(node.func)} outside "
                           "Annotated[...]")
    assert not bad, "\n".join(bad)


def _registries() -> dict[str, list[str]]:
    pytest.importorskip("torch")
    from wtc.cli.params import REGISTRY_NAMES

    return {key: names() for key, names in REGISTRY_NAMES.items()}


def test_cli_help_writes_no_registry_list_by_hand():
    """A list of two or more names of one registry (`a | b`, `a, b`) in a CLI string is a list
    that goes stale when a method, dataset, cost model, runtime or backend is added: help says
    `{methods}` (and the like) instead, filled in from the registry when shown."""
    bad = []
    for key, names in _registries().items():
        word = "|".join(re.escape(n.split(":")[0]) for n in names)
        listed = re.compile(rf"\b({word})\b(:\w+)?\s*[|,/]\s*\b({word})\b")
        for name, tree in _cli_trees().items():
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found = listed.search(node.value)
                    if found:
                        bad.append(f"cli/{name}.py:{node.lineno} lists {key} by hand: "
                                   f"'{found.group(0)}' (write {{{key}}})")
    assert not bad, "\n".join(bad)


# (command, option, registry): the help of that option lists exactly the registry's names
REGISTRY_HELP = [("search", "--method", "methods"), ("search", "--data", "datasets"),
                 ("train", "--data", "datasets"), ("eval", "--data", "datasets"),
                 ("search", "--cost", "costs"), ("transfer", "--cost", "costs"),
                 ("show", "--cost", "costs"), ("profile", "--runtime", "runtimes"),
                 ("experiment", "--backend", "backends")]


def _help(command: str) -> str:
    from typer.testing import CliRunner

    from wtc.cli.main import app

    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize(("command", "option", "key"), REGISTRY_HELP)
def test_cli_help_lists_exactly_the_registry(command, option, key):
    names = _registries()[key]
    row = next(line for line in _help(command).splitlines()
               if re.match(rf"\W*{re.escape(option)}[\s,]", line))
    lists = re.findall(r"[\w:.-]+(?: \| [\w:.-]+)+", row)
    assert lists, row
    assert lists[0].split(" | ") == names, row


def _commands():
    import click
    import typer

    from wtc.cli.main import app

    group = typer.main.get_command(app)
    ctx = click.Context(group)
    return {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}


# options that mean one thing wherever they appear: one help and at most one default value
# (None where a --config file supplies it: train and eval)
ALIKE = ("--json", "--data", "--data-root", "--epochs", "--batch-size", "--fraction", "--seed",
         "--resolution", "--device", "--precision", "--channels-last")
ALIKE_EXCEPT = {("import", "--seed")}  # the seed of the imported callable's initialisation


def test_shared_options_have_one_help_and_one_default():
    commands = _commands()
    for option in ALIKE:
        params = {name: p for name, c in commands.items() for p in c.params
                  if option in p.opts and (name, option) not in ALIKE_EXCEPT}
        assert len(params) >= 2, f"{option} is not shared"
        helps = {p.help for p in params.values()}
        assert len(helps) == 1, f"{option} has several helps: {helps}"
        defaults = {repr(p.default) for p in params.values() if p.default is not None
                    and p.default is not False}
        assert len(defaults) <= 1, f"{option} has several defaults: {defaults}"


def test_every_command_help_is_complete():
    """Every command's help renders with its registry lists filled in."""
    placeholders = re.compile(r"\{(" + "|".join(_registries()) + r")\}")
    for name in _commands():
        text = _help(name)
        assert not placeholders.search(text), (name, text)


# --- the tests' own shape (issue 21): one tier per module, one way to share helpers

TESTS = ROOT / "tests"
TIERS = ("unit", "integration")


def _test_modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(TESTS)): ast.parse(p.read_text(encoding="utf-8"))
            for p in sorted(TESTS.rglob("test_*.py"))}


def test_every_test_module_declares_one_tier():
    """`pytestmark` names exactly one of unit / integration (pyproject.toml says which is
    which), so `-m unit` and `-m integration` split the suite."""
    bad = []
    for name, tree in _test_modules().items():
        marks = [ast.unparse(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and any(ast.unparse(t) == "pytestmark" for t in n.targets)]
        tiers = [t for t in TIERS if any(f"pytest.mark.{t}" in m for m in marks)]
        if len(tiers) != 1:
            bad.append(f"tests/{name}: tiers {tiers or 'none'} (set pytestmark to one of "
                       f"{', '.join(f'pytest.mark.{t}' for t in TIERS)})")
    assert not bad, "\n".join(bad)


def test_tests_share_helpers_one_way():
    """What tests share is imported from `tests.helpers` (fixtures come from conftest.py by
    name); no test module imports another test module or conftest."""
    bad = []
    for name, tree in _test_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                leaf = t.rpartition(".")[2]
                if leaf == "conftest" or leaf.startswith("test_") or t == "helpers":
                    bad.append(f"tests/{name}:{node.lineno} imports {t} (import from "
                               "tests.helpers)")
    assert not bad, "\n".join(bad)


def test_the_tests_mirror_the_package():
    """Every folder of tests/ (but fixtures/) is the tests of the wtc package of its name."""
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    bad = sorted(f for f in folders - {"fixtures"} if not (PACKAGE / f / "__init__.py").is_file())
    assert not bad, f"tests/ folders with no wtc package of that name: {bad}"
    assert all((TESTS / f / "__init__.py").is_file() for f in folders - {"fixtures"})
