"""wtc: a width compiler for convolutional networks.

    spec ──load──▶ Spec ──compile──▶ StageGraph ──build──▶ nn.Module
                                      search ─▶ Widths ─▶ transfer

Importing `wtc` does not import torch: torch-backed names (`build_model`, `export_onnx`, ...)
are resolved lazily on first use, so validating specs, counting MACs and transferring widths
start instantly.

No submodule is named like a public function: `wtc.transfer`, `wtc.search` and `wtc.train`
are the functions in every import order (their packages are `wtc.widthtransfer`,
`wtc.optimizers` and `wtc.trainer`). docs/ARCHITECTURE.md describes the layers.
"""

from __future__ import annotations

from wtc.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "load_spec": "wtc.spec",
    "parse_spec": "wtc.spec",
    "Spec": "wtc.spec",
    "compile_spec": "wtc.graph",
    "StageGraph": "wtc.graph",
    "count_macs": "wtc.graph",
    "count_params": "wtc.graph",
    "cost_table": "wtc.graph",
    "parse_cost": "wtc.graph.cost_registry",
    "Widths": "wtc.widths",
    "base_widths": "wtc.widths",
    "uniform_widths": "wtc.widths",
    "scale_to_macs": "wtc.widths",
    "make_divisible": "wtc.widths",
    "load_widths": "wtc.widths",
    "save_widths": "wtc.widths",
    "check_widths": "wtc.widths",
    "transfer": "wtc.widthtransfer",
    "project_spec": "wtc.widthtransfer",
    "build_model": "wtc.nn",
    "export_onnx": "wtc.export",
    "import_model": "wtc.importer",
    "ImportedSpec": "wtc.importer",
    "profile_spec": "wtc.profile",
    "search": "wtc.optimizers",
    "train": "wtc.trainer",
    "TrainConfig": "wtc.trainer",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
