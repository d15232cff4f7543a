"""YAML → Spec, with every error located at file, line and key path.

The file is size-limited before it is read and parsed by `wtc.safe_yaml` (bounded aliases and
nesting, duplicate keys refused), which also gives the line of each key so pydantic's error
locations (`('stages', 2, 'depth')`) can be turned into `resnet20.yaml:14 at 'stages[2].depth'`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wtc.errors import SpecError
from wtc.limits import LimitError, max_file_bytes, read_limited_text
from wtc.safe_yaml import YamlError, load_yaml, shorten
from wtc.spec.check import check_spec
from wtc.spec.schema import Spec


def load_spec(path: str | Path, *, max_bytes: int | None = None) -> Spec:
    """Read, validate and check a YAML spec file (at most `max_bytes`, default: the file size
    limit of `wtc.limits`, 1 MB unless WTC_MAX_FILE_BYTES says otherwise)."""
    p = Path(path)
    try:
        text = read_limited_text(p, "spec file", max_bytes)
    except FileNotFoundError:
        raise SpecError("no such spec file", file=str(p)) from None
    except LimitError as e:
        raise SpecError(str(e), file=str(p)) from None
    return parse_spec(text, source=str(p), max_chars=max_bytes)


def parse_spec(text: str, source: str | None = None, *, max_chars: int | None = None) -> Spec:
    """Validate YAML text as a spec; `source` names it in error messages. Text longer than
    `max_chars` (default: the file size limit) is refused before it is parsed."""
    limit = max_file_bytes() if max_chars is None else max_chars
    if len(text) > limit:
        raise SpecError(f"the spec is {len(text):,} characters, over the limit of {limit:,} "
                        "(set WTC_MAX_FILE_BYTES to read larger specs)", file=source)
    try:
        data, lines = load_yaml(text)
    except YamlError as e:
        raise SpecError(e.reason, file=source, line=e.line, path=e.path) from None
    if not isinstance(data, dict):
        raise SpecError(f"a spec is a YAML mapping (name, input, classes, stages, head, ...), "
                        f"not {type(data).__name__}", file=source, line=1)
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


def _located(error: ValidationError, source: str | None, lines: dict[str, int]) -> SpecError:
    problems = []
    first_path, first_line = None, None
    items = _one_per_union(error.errors())
    for item in items[:4]:
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
            msg = f"{msg} (got {shorten(repr(item['input']))})"
        at = f"line {line}, " if line else ""
        problems.append(f"{at}'{path or '<top>'}': {msg}")
    more = len(items) - len(problems)
    text = "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
    return SpecError(f"invalid spec: {text}", file=source, line=first_line, path=first_path)


# the members of a union (`int | float | bool | str`) pydantic names in an error location
_BRANCHES = {"bool": bool, "int": int, "float": float, "str": str, "constrained-str": str,
             "constrained-int": int, "constrained-float": float}

_KIND = {bool: "true/false", int: "a number", float: "a number", str: "text (an expression)"}


def _one_per_union(items: list[Any]) -> list[Any]:
    """One error per value: of a union's failed members, the one of the value's own type (a
    500-character string reports the string's limit, not 'should be a valid integer'), else
    one that lists what the value may be."""
    out: list[Any] = []
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for item in items:
        loc = item["loc"]
        if loc and loc[-1] in _BRANCHES:
            key = tuple(loc[:-1])
            if key not in groups:
                groups[key] = []
                out.append(key)
            groups[key].append(item)
        else:
            out.append(item)
    result = []
    for entry in out:
        if not isinstance(entry, tuple):
            result.append(entry)
            continue
        members = groups[entry]
        value = members[0].get("input")
        own = [m for m in members if type(value) is _BRANCHES[m["loc"][-1]]]
        if len(members) == 1 or own:
            result.append({**(own[0] if own else members[0]), "loc": entry})
            continue
        kinds = dict.fromkeys(_KIND[_BRANCHES[m["loc"][-1]]] for m in members)
        result.append({**members[0], "loc": entry, "type": "union",
                       "msg": f"should be {', '.join(kinds)}"})
    return result


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part.startswith(("function-", "union[", "tagged-union["))


def _nearest(lines: dict[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None
