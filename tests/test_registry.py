"""`wtc.registry.Registry`: duplicates and unknown names fail loudly, entries declared by import
path are listed without importing their module and loaded on first lookup."""

from __future__ import annotations

import pytest

from wtc.errors import RegistryError
from wtc.registry import Registry

pytestmark = pytest.mark.unit


def test_added_and_declared_entries_share_one_namespace():
    reg: Registry[object] = Registry("thing")
    reg.add("b", 1)
    reg.declare("a", "json:dumps")
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    assert "a" in reg and "b" in reg and "c" not in reg
    with pytest.raises(RegistryError, match="thing 'a' is already registered"):
        reg.add("a", 2)
    with pytest.raises(RegistryError, match="thing 'b' is already registered"):
        reg.declare("b", "json:loads")
    import json

    assert reg.get("a") is json.dumps


def test_unknown_names_list_the_declared_ones_too():
    reg: Registry[object] = Registry("thing")
    reg.add("b", 1)
    reg.declare("a", "json:dumps")
    with pytest.raises(RegistryError, match=r"unknown thing 'c'; choose one of: a, b$"):
        reg.get("c")


def test_a_bad_declaration_fails_naming_it():
    reg: Registry[object] = Registry("thing")
    with pytest.raises(RegistryError, match=r"'json\.dumps' is not 'module:attr'"):
        reg.declare("x", "json.dumps")
    reg.declare("gone", "json:no_such_attr")
    reg.declare("nowhere", "wtc.no_such_module:x")
    with pytest.raises(ImportError, match="thing 'gone' is declared as 'json:no_such_attr'"):
        reg.get("gone")
    with pytest.raises(ImportError, match=r"'wtc\.no_such_module:x', which cannot be loaded"):
        reg.get("nowhere")
