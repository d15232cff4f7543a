"""Lazy package exports: a package names its public objects at once and imports the module that
defines each (torch, often) only when the name is first used, so `import wtc`, help and
validation stay torch-free."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(package: str, table: Mapping[str, str], namespace: dict[str, Any],
                 submodules: Iterable[str] = ()
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`: `table` maps a public name to the module
    defining it; `submodules` are importable as attributes. A resolved name is cached in the
    package's `namespace`, so the import happens once."""
    subs = tuple(submodules)

    def getattr_(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(list(namespace) + list(table) + list(subs))

    return getattr_, dir_
