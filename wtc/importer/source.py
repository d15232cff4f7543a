"""`module:callable` and `path/to/file.py:callable` → the nn.Module `wtc import` imports, and
the `--input 3x224x224` shape; every bad value is an ImportFailure (exit 2) saying which."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

from torch import nn

from wtc.importer.trace import ImportFailure


def load_callable(target: str) -> Any:
    """The object `target` names: `package.module:attr` or `file.py:attr`."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not re.fullmatch(r"[A-Za-z_][\w.]*", attr):
        raise ImportFailure(f"'{target}' is not MODULE:CALLABLE or FILE.py:CALLABLE "
                            "(e.g. torchvision.models:resnet50)")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ImportFailure(f"no such file {path}")
        spec = importlib.util.spec_from_file_location(f"wtc_import_{path.stem}", path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py file always loads
            raise ImportFailure(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        _run(lambda: spec.loader.exec_module(module), f"running {path}")
    else:
        module = _run(lambda: importlib.import_module(where), f"importing {where}")
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportFailure(f"{where} has no '{attr}'")
        obj = getattr(obj, part)
    return obj


def _run(fn: Any, what: str) -> Any:
    try:
        return fn()
    except ImportFailure:
        raise
    except Exception as e:  # the user's code: any error is theirs to read
        raise ImportFailure(f"{what} failed: {type(e).__name__}: {str(e)[:300]}") from None


def make_module(target: str, kwargs_json: str | None = None) -> nn.Module:
    """Call the callable `target` names with `kwargs_json` (a JSON object) to get a module."""
    kwargs: Any = {}
    if kwargs_json:
        try:
            kwargs = json.loads(kwargs_json)
        except json.JSONDecodeError as e:
            raise ImportFailure(f"--kwargs is not JSON: {e.msg}") from None
        if not isinstance(kwargs, dict):
            raise ImportFailure("--kwargs must be a JSON object, e.g. '{\"num_classes\": 10}'")
    obj = load_callable(target)
    if isinstance(obj, nn.Module):
        module = obj
    elif callable(obj):
        module = _run(lambda: obj(**kwargs), f"calling {target}")
    else:
        raise ImportFailure(f"{target} is neither a module nor callable")
    if not isinstance(module, nn.Module):
        raise ImportFailure(f"{target} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def parse_input(text: str) -> tuple[int, int, int]:
    """`3x224x224` → (3, 224, 224): channels and a square resolution."""
    m = re.fullmatch(r"\s*(\d{1,5})x(\d{1,5})x(\d{1,5})\s*", text)
    if not m:
        raise ImportFailure(f"--input '{text}' is not CxHxW, e.g. 3x224x224")
    c, h, w = (int(v) for v in m.groups())
    if h != w or not c or not h:
        raise ImportFailure(f"--input {text}: wtc inputs are square and non-empty (H = W)")
    return c, h, w
