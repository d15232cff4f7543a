"""Bring your own model: a PyTorch module → a wtc spec with its weights (`import_model`), and
the `module:callable` loader of `wtc import` (`load_callable`). Needs torch (layer after
`export`); see docs/ARCHITECTURE.md."""

from wtc.importer.core import ImportedSpec, import_model
from wtc.importer.trace import ImportFailure

__all__ = ["ImportFailure", "ImportedSpec", "import_model"]
