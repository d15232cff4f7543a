"""Checks that span several fields: block names, template parameters, node wiring, expressions.

pydantic checks each value's type; these check that the values fit together. Every failure is a
SpecError located at a key path (and, for loaded files, a file and line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wtc.errors import SpecError
from wtc.limits import MAX_GRAPH_NODES
from wtc.spec import expr
from wtc.spec.catalog import BLOCKS, IMPLICIT_NAMES
from wtc.spec.ops import ACTIVATIONS, EXPR_FIELDS, OPS

if TYPE_CHECKING:  # the schema calls these checks (Spec.scaled): annotations only
    from wtc.spec.schema import BlockCall, Spec, StageSpec, TemplateSpec

RESERVED_STAGE_NAMES = frozenset({"stem", "head", "input"})
_NUMERIC_FIELDS = EXPR_FIELDS


def spec_error(spec: Spec, path: str, message: str) -> SpecError:
    return SpecError(message, file=spec.source, line=spec.line_of(path), path=path)


def template_for(spec: Spec, name: str) -> TemplateSpec:
    """The spec's own template of that name, else the built-in."""
    if name in spec.templates:
        return spec.templates[name]
    return BLOCKS.get(name)


def check_spec(spec: Spec) -> None:
    for name, template in spec.templates.items():
        if name in BLOCKS:
            raise spec_error(spec, f"templates.{name}",
                             f"template '{name}' shadows a built-in block; give it another name")
        problem = check_template(template)
        if problem:
            path, message = problem
            raise spec_error(spec, f"templates.{name}{path}", message)
    known = sorted(set(BLOCKS.names()) | set(spec.templates))
    seen: set[str] = set()
    for i, stage in enumerate(spec.stages):
        path = f"stages[{i}]"
        if stage.name in RESERVED_STAGE_NAMES:
            raise spec_error(spec, f"{path}.name",
                             f"stage name '{stage.name}' is reserved (stem, head, input)")
        if stage.name in seen:
            raise spec_error(spec, f"{path}.name", f"stage name '{stage.name}' is used twice")
        seen.add(stage.name)
        _check_call(spec, stage, path, known)
    for part in ("stem", "head"):
        for i, call in enumerate(getattr(spec, part)):
            _check_call(spec, call, f"{part}[{i}]", known)
    _check_size(spec)


def _check_size(spec: Spec) -> None:
    """At most MAX_GRAPH_NODES ops in the compiled network (counted before compiling it)."""
    sizes = {f"stages[{i}].depth": s.depth * len(template_for(spec, s.block).nodes)
             for i, s in enumerate(spec.stages)}
    for part in ("stem", "head"):
        for i, call in enumerate(getattr(spec, part)):
            sizes[f"{part}[{i}]"] = len(template_for(spec, call.block).nodes)
    total = sum(sizes.values())
    if total > MAX_GRAPH_NODES:
        worst = max(sizes, key=lambda k: sizes[k])
        raise spec_error(spec, worst, f"the network would have up to {total:,} ops, over the "
                         f"limit of {MAX_GRAPH_NODES:,} (this part alone: {sizes[worst]:,})")


def _check_call(spec: Spec, call: BlockCall | StageSpec, path: str, known: list[str]) -> None:
    if call.block not in known:
        raise spec_error(spec, f"{path}.block",
                         f"unknown block '{call.block}'; choose one of: {', '.join(known)}")
    template = template_for(spec, call.block)
    depth = getattr(call, "depth", 1)
    for key, given in call.params.items():
        if key not in template.params:
            allowed = ", ".join(sorted(template.params)) or "none"
            raise spec_error(spec, f"{path}.{key}",
                             f"unknown parameter '{key}' for block '{call.block}'; "
                             f"its parameters are: {allowed}")
        if isinstance(given, list) and len(given) != depth:
            raise spec_error(spec, f"{path}.{key}",
                             f"'{key}' lists {len(given)} values, one per block, but the stage "
                             f"has depth {depth}")
        default = template.params[key]
        for value in given if isinstance(given, list) else [given]:
            if not _same_kind(default, value):
                raise spec_error(spec, f"{path}.{key}",
                                 f"parameter '{key}' of block '{call.block}' should be a "
                                 f"{type(default).__name__} like {default!r}, not {value!r}")
            if key == "act" and value not in ACTIVATIONS:
                raise spec_error(spec, f"{path}.{key}",
                                 f"unknown activation '{value}'; choose one of: "
                                 f"{', '.join(ACTIVATIONS)}")


def template_names(template: TemplateSpec) -> set[str]:
    """Every parameter name the template's expressions (and `fn` fields) read."""
    out: set[str] = set()
    for node in template.nodes:
        for field in _NUMERIC_FIELDS:
            value = getattr(node, field)
            if isinstance(value, str):
                out |= expr.names(value)
        if node.fn is not None:
            out.add(node.fn)
    return out


def _same_kind(default: object, value: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return type(default) is type(value)


def check_template(template: TemplateSpec) -> tuple[str, str] | None:
    """The first wiring problem of a template as (relative path, message), or None."""
    names = set(template.params) | set(IMPLICIT_NAMES)
    defined = {"input"}
    for i, node in enumerate(template.nodes):
        path = f".nodes[{i}]"
        info = OPS.get(node.op)
        if node.name in defined:
            return f"{path}.name", f"node name '{node.name}' is used twice (or is 'input')"
        given = {f for f in (*_NUMERIC_FIELDS, "fn") if getattr(node, f) is not None} - {"when"}
        extra = given - info.fields
        if extra:
            allowed = ", ".join(sorted(info.fields)) or "no fields besides inputs/when"
            return (f"{path}.{sorted(extra)[0]}",
                    f"op '{node.op}' takes no '{sorted(extra)[0]}'; it takes: {allowed}")
        missing = info.required - given
        if missing:
            return f"{path}", f"op '{node.op}' needs '{sorted(missing)[0]}'"
        inputs = node.inputs if node.inputs is not None else ["<previous>"]
        if not info.min_inputs <= len(inputs) <= info.max_inputs:
            return (f"{path}.inputs", f"op '{node.op}' takes {info.min_inputs}"
                    f"{'' if info.min_inputs == info.max_inputs else f'..{info.max_inputs}'}"
                    f" inputs, got {len(inputs)}")
        for ref in node.inputs or []:
            if ref not in defined:
                return (f"{path}.inputs", f"input '{ref}' is not 'input' or an earlier node; "
                        f"earlier nodes: {', '.join(sorted(defined - {'input'})) or 'none'}")
        for field in _NUMERIC_FIELDS:
            value = getattr(node, field)
            if isinstance(value, str):
                try:
                    unknown = expr.names(value) - names
                except expr.ExprError as e:
                    return f"{path}.{field}", str(e)
                if unknown:
                    return (f"{path}.{field}", f"'{value}' reads unknown name "
                            f"'{sorted(unknown)[0]}'; known: {', '.join(sorted(names))}")
        if node.forwards is not None and node.when is None:
            return (f"{path}.forwards", "'forwards' says what a removed node passes on; it "
                    "needs a 'when'")
        if node.forwards is not None and node.forwards not in defined:
            return (f"{path}.forwards", f"'{node.forwards}' is not 'input' or an earlier node")
        if node.fn is not None and node.fn not in names and node.fn not in ACTIVATIONS:
            return (f"{path}.fn", f"'{node.fn}' is neither a parameter nor an activation; "
                    f"activations: {', '.join(ACTIVATIONS)}")
        defined.add(node.name)
    if template.output is not None and template.output not in defined - {"input"}:
        return ".output", f"output '{template.output}' is not a node of the template"
    return None
