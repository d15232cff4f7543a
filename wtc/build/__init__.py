"""The build layer: the only place ops become torch modules."""

from wtc.build.module import WtcNet, build_model, init_weights, module_path

__all__ = ["WtcNet", "build_model", "init_weights", "module_path"]
