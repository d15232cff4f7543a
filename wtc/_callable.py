"""Modules that share their name with their main function (`wtc.transfer`, `wtc.search`,
`wtc.train`) stay callable as that function.

`wtc.transfer(...)` is the public call; but `import wtc.transfer` makes Python set the package
attribute `wtc.transfer` to the module, hiding the lazily exported function. Making the module
itself callable keeps both spellings working, whichever import ran first.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def make_module_callable(module_name: str, function_name: str) -> None:
    """Calling the module `module_name` calls its attribute `function_name`."""

    class CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(self, function_name)(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule
