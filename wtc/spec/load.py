"""YAML → Spec, with every error located at file, line and key path.

YAML is parsed safely; a composed node tree gives the line of each key so pydantic's error
locations (`('stages', 2, 'depth')`) can be turned into `resnet20.yaml:14 at 'stages[2].depth'`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wtc.errors import SpecError
from wtc.spec.check import check_spec
from wtc.spec.schema import Spec


def load_spec(path: str | Path) -> Spec:
    """Read, validate and check a YAML spec file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such spec file", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read spec file: {e}", file=str(p)) from None
    return parse_spec(text, source=str(p))


def parse_spec(text: str, source: str | None = None) -> Spec:
    """Validate YAML text as a spec; `source` names it in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(f"malformed YAML: {problem}", file=source, line=line) from None
    if not isinstance(data, dict):
        raise SpecError(f"a spec is a YAML mapping (name, input, classes, stages, head, ...), "
                        f"not {type(data).__name__}", file=source, line=1)
    lines = _key_lines(root)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        raise _located(e, source, lines) from None
    spec._source = source
    spec._lines = lines
    check_spec(spec)
    return spec


def dump_spec(spec: Spec) -> str:
    """The spec as YAML (for `wtc proxy` and friends); loads back to an equal spec."""
    body = spec.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)


def format_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if node is None:
        return lines
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            lines[path] = key.start_mark.line + 1
            lines.update(_key_lines(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}[{i}]"
            lines[path] = item.start_mark.line + 1
            lines.update(_key_lines(item, path))
    return lines


def _located(error: ValidationError, source: str | None, lines: dict[str, int]) -> SpecError:
    problems = []
    first_path, first_line = None, None
    for item in error.errors()[:4]:
        loc = tuple(p for p in item["loc"] if not _is_union_tag(p))
        path = format_path(loc)
        line = _nearest(lines, path)
        if first_path is None:
            first_path, first_line = path, line
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling)"
        elif item["type"] == "missing":
            msg = "required key is missing"
        elif "input" in item and not isinstance(item["input"], (dict, list)):
            msg = f"{msg} (got {item['input']!r})"
        at = f"line {line}, " if line else ""
        problems.append(f"{at}'{path or '<top>'}': {msg}")
    more = len(error.errors()) - len(problems)
    text = "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
    return SpecError(f"invalid spec: {text}", file=source, line=first_line, path=first_path)


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part.startswith(("function-", "union[", "tagged-union["))


def _nearest(lines: dict[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None
