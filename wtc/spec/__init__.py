"""The spec layer: YAML → validated, immutable Spec. No torch here."""

from wtc.spec.blocks import BLOCKS
from wtc.spec.check import check_template, template_for
from wtc.spec.load import dump_spec, load_spec, parse_spec
from wtc.spec.schema import BlockCall, InputSpec, NodeSpec, Spec, StageSpec, TemplateSpec
from wtc.spec.transform import scaled

__all__ = [
    "BLOCKS", "BlockCall", "InputSpec", "NodeSpec", "Spec", "StageSpec", "TemplateSpec",
    "check_template", "dump_spec", "load_spec", "parse_spec", "scaled", "template_for",
]
