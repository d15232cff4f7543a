"""One registry class for everything looked up by name: block templates, ops, optimizers, datasets.

It refuses duplicates and an unknown name is an error that lists the valid ones (timm warns and
overwrites; torchvision's `register_model` raises; we raise). An entry may be declared by its
import path (`declare`): its name is known at once, so help text and validation list it
without importing the module behind it (a dataset's torch), which is imported on first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from wtc.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping that fails loudly."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._declared: dict[str, str] = {}  # name -> "module:attr", not imported yet

    def add(self, name: str, item: T) -> T:
        if name in self:
            raise RegistryError(f"{self.kind} '{name}' is already registered")
        self._items[name] = item
        return item

    def declare(self, name: str, target: str) -> None:
        """Register `name` as the object at `target` ("package.module:attr"), imported on the
        first `get` of it; a target that is not there fails then with an ImportError naming
        it (a bug, not bad input)."""
        module, sep, attr = target.partition(":")
        if not (module and sep and attr):
            raise RegistryError(f"{self.kind} '{name}': '{target}' is not 'module:attr'")
        if name in self:
            raise RegistryError(f"{self.kind} '{name}' is already registered")
        self._declared[name] = target

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def deco(item: T) -> T:
            return self.add(name, item)

        return deco

    def get(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        target = self._declared.get(name)
        if target is None:
            raise RegistryError(
                f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}")
        module, _, attr = target.partition(":")
        try:
            item: T = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:  # a bug in wtc, not the user's input
            raise ImportError(f"{self.kind} '{name}' is declared as '{target}', which cannot "
                              f"be loaded: {e}") from e
        self._items[name] = item
        return item

    def names(self) -> list[str]:
        return sorted(self._items.keys() | self._declared.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items.keys() | self._declared.keys())
