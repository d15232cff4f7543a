"""The torch layer: the only place ops become torch modules.

build.py turns StageGraph + widths into a `WtcNet` (state_dict keys follow the spec);
weights.py loads saved weights with errors that name the layer; bn.py recalibrates BatchNorm
statistics (supernets, evaluation at new widths).
"""

from wtc.nn.bn import recalibrate_bn
from wtc.nn.build import OP_MODULES, WtcNet, build_model, init_weights, module_path
from wtc.nn.weights import load_state_checked, load_weights, read_checkpoint

__all__ = [
    "OP_MODULES", "WtcNet", "build_model", "init_weights", "load_state_checked", "load_weights",
    "module_path", "read_checkpoint", "recalibrate_bn",
]
