"""YAML for files wtc did not write: bounded, located, and strict about the surprises of YAML.

`load_yaml(text)` builds plain data (dicts, lists, str, int, float, bool, None) straight from
the parser's event stream (libyaml when present), and refuses, with the line:

- more than MAX_YAML_NODES nodes, counting every use of an alias as a copy of what it names, so
  an alias "bomb" (a few hundred bytes naming a billion nodes) stops at the limit, not at the
  end of the expansion; an alias to a node that is still open (a recursive structure);
- nesting deeper than MAX_YAML_DEPTH;
- the same key twice in one mapping (located at the second), keys that are not text, keys
  longer than MAX_KEY_CHARS;
- tags other than the plain YAML types (`!!python/object`, `!!binary`, `!!set`, ...),
  numbers that are not finite (`.nan`, `.inf`, `1e999`) or too long to convert;
- more than one document.

Merge keys (`<<: *defaults`) work as in YAML 1.1: explicit keys win over merged ones. Besides
the data it returns the line of every key path (`stages[2].depth` → 14), for located errors.
No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from wtc.errors import UserInputError
from wtc.limits import MAX_KEY_CHARS, MAX_YAML_DEPTH, MAX_YAML_NODES

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_T = "tag:yaml.org,2002:"
_SCALARS = {
    _T + "str": None, _T + "timestamp": None,  # a date is read as its text
    _T + "int": _CONSTRUCTOR.construct_yaml_int, _T + "float": _CONSTRUCTOR.construct_yaml_float,
    _T + "bool": _CONSTRUCTOR.construct_yaml_bool, _T + "null": _CONSTRUCTOR.construct_yaml_null,
}


class YamlError(UserInputError):
    """YAML that is malformed or over a limit; `line` (1-based) and `path` say where."""

    def __init__(self, message: str, line: int | None = None, path: str | None = None) -> None:
        self.reason, self.line, self.path = message, line, path
        super().__init__(message)


@dataclass
class _Frame:
    data: dict[str, Any] | list[Any]
    path: str
    anchor: str | None
    start_count: int
    line: int | None = None  # where the mapping or list starts
    key: Any = None  # mapping: the pending key (None: a key comes next)
    key_line: int = 0
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    merge_line: int = 0


_NO_KEY = object()


def shorten(text: str, limit: int = 60) -> str:
    """`text`, cut to `limit` characters with an ellipsis (for keys quoted in messages)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def load_yaml(text: str, *, max_nodes: int = MAX_YAML_NODES,
              max_depth: int = MAX_YAML_DEPTH) -> tuple[Any, dict[str, int]]:
    """(data, {key path: line}) of one YAML document; YamlError says what is wrong, and where."""
    return _Builder(max_nodes, max_depth).run(text)


class _Builder:
    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes, self.max_depth = max_nodes, max_depth
        self.count = 0
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name → (value, expanded size)
        self.open_anchors: set[str] = set()
        self.lines: dict[str, int] = {}
        self.root: Any = None
        self.documents = 0

    def run(self, text: str) -> tuple[Any, dict[str, int]]:
        events = yaml.parse(text, Loader=_LOADER)
        try:
            for event in events:
                self.event(event)
        except yaml.reader.ReaderError as e:  # a character YAML does not allow
            line = text.count("\n", 0, e.position) + 1
            raise YamlError(f"character #x{e.character:04x} is not allowed in YAML "
                            f"({e.reason})", line) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise YamlError(f"malformed YAML: {problem}",
                            mark.line + 1 if mark is not None else None) from None
        except RecursionError:  # pragma: no cover - the depth limit comes first
            raise YamlError(f"nested deeper than {self.max_depth} levels") from None
        finally:
            events.close()
        return self.root, self.lines

    # ----------------------------------------------------------------------- events

    def event(self, ev: yaml.Event) -> None:
        line = ev.start_mark.line + 1 if ev.start_mark is not None else None
        if isinstance(ev, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise YamlError("more than one YAML document (a '---' line); a file holds one",
                                line)
        elif isinstance(ev, yaml.ScalarEvent):
            self.tick(line)
            value = self.scalar(ev, line)
            if ev.anchor:
                self.anchors[ev.anchor] = (value, 1)
            self.add(value, line, ev)
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor in self.open_anchors:
                raise YamlError(f"alias *{shorten(ev.anchor)} refers to a node that contains "
                                "it (a recursive structure)", line, self.here())
            if ev.anchor not in self.anchors:
                raise YamlError(f"alias *{shorten(ev.anchor)} names no earlier anchor", line,
                                self.here())
            value, size = self.anchors[ev.anchor]
            self.tick(line, size)
            self.add(value, line, ev)
        elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self.start(ev, line)
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.end()

    def here(self) -> str | None:
        if not self.stack:
            return None
        top = self.stack[-1]
        if isinstance(top.data, dict):
            if top.key is _NO_KEY or top.key is _MERGE:
                return top.path or None
            return self.child_path(top, top.key)
        return self.child_path(top, len(top.data))

    def tick(self, line: int | None, n: int = 1) -> None:
        self.count += n
        if self.count > self.max_nodes:
            raise YamlError(f"more than {self.max_nodes:,} YAML nodes (aliases counted as "
                            "copies of what they name); a spec needs far fewer", line,
                            self.here())

    def scalar(self, ev: yaml.ScalarEvent, line: int | None) -> Any:
        tag = ev.tag
        if tag is None or tag == "!":
            tag = (_T + "str" if tag == "!" else
                   _RESOLVER.resolve(yaml.ScalarNode, ev.value, ev.implicit))
        if tag == _T + "merge":
            return _MERGE
        if tag not in _SCALARS:
            raise YamlError(f"tag {shorten(tag)} is not allowed here (plain text, numbers, "
                            "true/false and null only)", line, self.here())
        construct = _SCALARS[tag]
        if construct is None:
            return ev.value
        try:
            value = construct(yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark))
        except (ValueError, OverflowError, yaml.YAMLError):
            raise YamlError(f"cannot read '{shorten(ev.value)}' as a number", line,
                            self.here()) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise YamlError(f"'{shorten(ev.value)}' is not a finite number", line, self.here())
        return value

    def start(self, ev: yaml.CollectionStartEvent, line: int | None) -> None:
        is_map = isinstance(ev, yaml.MappingStartEvent)
        want = _T + ("map" if is_map else "seq")
        if ev.tag not in (None, "!", want):
            raise YamlError(f"tag {shorten(ev.tag)} is not allowed here (plain mappings and "
                            "lists only)", line, self.here())
        if self.stack and isinstance(self.stack[-1].data, dict) \
                and self.stack[-1].key is _NO_KEY:
            raise YamlError("a key must be a plain name, not a mapping or a list", line,
                            self.here())
        self.tick(line)
        if len(self.stack) >= self.max_depth:
            raise YamlError(f"nested deeper than {self.max_depth} levels", line, self.here())
        path = self.here() or ""
        frame = _Frame({} if is_map else [], path, ev.anchor, self.count, line)
        frame.key = _NO_KEY
        if ev.anchor:
            self.open_anchors.add(ev.anchor)
        self.stack.append(frame)

    def end(self) -> None:
        frame = self.stack.pop()
        value: Any = frame.data
        if isinstance(value, dict) and frame.merges:
            merged: dict[str, Any] = {}
            for m in reversed(frame.merges):  # earlier mappings win over later ones
                merged.update(m)
            value = {**merged, **value}
            for key in merged:
                self.lines.setdefault(self.child_path(frame, key), frame.merge_line)
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, self.count - frame.start_count + 1)
        self.place(value, frame.line)

    # ----------------------------------------------------------------------- placing values

    def add(self, value: Any, line: int | None, ev: yaml.Event) -> None:
        if self.stack and isinstance(self.stack[-1].data, dict) \
                and self.stack[-1].key is _NO_KEY:
            self.key(value, line, ev)
            return
        self.place("<<" if value is _MERGE else value, line)

    def key(self, value: Any, line: int | None, ev: yaml.Event) -> None:
        frame = self.stack[-1]
        if isinstance(ev, yaml.AliasEvent):
            raise YamlError("a key must be a plain name, not an alias", line, frame.path or None)
        if value is _MERGE:
            frame.key, frame.key_line = _MERGE, line or 0
            return
        if not isinstance(value, str):
            raise YamlError(f"key {ev.value!r} is not text (quote it if you mean the text)",
                            line, frame.path or None)
        if len(value) > MAX_KEY_CHARS:
            raise YamlError(f"a key of {len(value):,} characters ('{shorten(value)}'); keys "
                            f"have at most {MAX_KEY_CHARS}", line, frame.path or None)
        if value in frame.key_lines:
            raise YamlError(f"duplicate key '{value}' (first on line {frame.key_lines[value]});"
                            " a key may appear once per mapping", line,
                            self.child_path(frame, value))
        frame.key_lines[value] = line or 0
        frame.key, frame.key_line = value, line or 0

    def place(self, value: Any, line: int | None) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if isinstance(frame.data, list):
            path = self.child_path(frame, len(frame.data))
            frame.data.append(value)
            if line is not None:
                self.lines[path] = line
            return
        if frame.key is _MERGE:
            parts = value if isinstance(value, list) else [value]
            if not all(isinstance(p, dict) for p in parts):
                raise YamlError("a merge key '<<' takes a mapping or a list of mappings",
                                frame.key_line, frame.path or None)
            frame.merges.extend(parts)
            frame.merge_line = frame.key_line
        else:
            frame.data[frame.key] = value
            self.lines[self.child_path(frame, frame.key)] = frame.key_line
        frame.key = _NO_KEY

    @staticmethod
    def child_path(frame: _Frame, key: Any) -> str:
        if isinstance(key, int):
            return f"{frame.path}[{key}]"
        return f"{frame.path}.{key}" if frame.path else str(key)


_MERGE = object()
