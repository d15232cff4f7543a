"""The spec language as pydantic v2 models: strict (extra keys forbidden), immutable.

Schema classes hold data only; checks that need more than one field (block names, template
parameters, expressions) live in `check.py`, and nothing here knows about torch.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from wtc.limits import (
    MAX_CALLS,
    MAX_CHANNELS,
    MAX_CLASSES,
    MAX_DEPTH,
    MAX_DIVISOR,
    MAX_EXPR_CHARS,
    MAX_NAME_CHARS,
    MAX_RESOLUTION,
    MAX_STAGES,
    MAX_STRIDE,
    MAX_TEMPLATE_NODES,
    MAX_TEMPLATES,
    MAX_TEXT_CHARS,
)
from wtc.spec.ops import OP_NAMES
from wtc.text import printable

FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Text = Annotated[StrictStr, Field(max_length=MAX_EXPR_CHARS)]
Param = StrictBool | StrictInt | FiniteFloat | Text
Expr = StrictInt | FiniteFloat | StrictBool | Text  # a literal or an expression string
Ident = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=MAX_NAME_CHARS)]
Channels = Annotated[StrictInt, Field(gt=0, le=MAX_CHANNELS)]
Params = Annotated[dict[Ident, Param], Field(max_length=64)]
# a stage may give a parameter per block (`expansion: [4, 6, 6]`, one entry per block)
PerBlock = Annotated[list[Param], Field(min_length=1, max_length=MAX_DEPTH)]
StageParams = Annotated[dict[Ident, Param | PerBlock], Field(max_length=64)]
OpName = Literal[OP_NAMES]  # type: ignore[valid-type]


# node fields added after specs were first hashed: left out of the hash while unset, so the
# hash of every existing spec (and the committed results keyed by it) stays the same
_LATER_NODE_FIELDS = ("forwards", "size", "ceil_mode", "momentum")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(Strict):
    channels: Channels
    resolution: Annotated[StrictInt, Field(gt=0, le=MAX_RESOLUTION)]


class NodeSpec(Strict):
    """One op of a block template. Strings in numeric fields are expressions over parameters."""

    name: Ident
    op: OpName
    inputs: Annotated[list[Ident], Field(max_length=8)] | None = None  # default: the previous
    when: Expr | None = None  # a false condition removes the node; it then forwards `forwards`
    # what a removed node forwards: `input` or an earlier node (default: its first input)
    forwards: Ident | None = None
    out: Expr | None = None
    kernel: Expr | None = None
    stride: Expr | None = None
    padding: Expr | None = None
    dilation: Expr | None = None
    groups: Expr | None = None
    group_width: Expr | None = None
    chunks: Expr | None = None
    chunk: Expr | None = None
    bias: Expr | None = None
    fn: Annotated[StrictStr, Field(max_length=MAX_NAME_CHARS)] | None = None
    p: Expr | None = None
    eps: Expr | None = None
    init: Expr | None = None
    size: Expr | None = None
    ceil_mode: Expr | None = None
    momentum: Expr | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_input_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("inputs"), str):
            data = {**data, "inputs": [data["inputs"]]}
        return data


class TemplateSpec(Strict):
    """A block: parameters with defaults, and an op graph whose inputs are named."""

    params: Params = Field(default_factory=dict)
    nodes: list[NodeSpec] = Field(min_length=1, max_length=MAX_TEMPLATE_NODES)
    output: Ident | None = None  # default: the last node
    description: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] = ""


_CALL_FIELDS = {"block", "width", "stride", "params", "name", "depth"}


class _WithParams(Strict):
    """Block parameters may be written inline (`expansion: 6`); they are gathered in `params`."""

    params: Params = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = set(cls.model_fields)
        inline = {k: v for k, v in data.items() if k not in fields}
        if not inline:
            return data
        params = data.get("params") or {}
        if not isinstance(params, dict):
            return data
        return {**{k: v for k, v in data.items() if k in fields}, "params": {**params, **inline}}


class BlockCall(_WithParams):
    """One block of the stem or head."""

    block: Ident
    width: Channels | None = None
    stride: Annotated[StrictInt, Field(gt=0, le=MAX_STRIDE)] = 1


class StageSpec(_WithParams):
    """A run of `depth` blocks at one resolution; only the first block strides. A parameter
    given as a list has one entry per block (its length must be the depth)."""

    params: StageParams = Field(default_factory=dict)
    name: Ident
    block: Ident
    depth: Annotated[StrictInt, Field(gt=0, le=MAX_DEPTH)] = 1
    width: Channels | None = None  # None: the block's input channels (a template without width)
    stride: Annotated[StrictInt, Field(gt=0, le=MAX_STRIDE)] = 1


class Spec(Strict):
    """A whole network. Immutable: transforms return new specs."""

    name: Annotated[str, AfterValidator(printable)] = Field(min_length=1)  # printed, written
    description: str = Field("", max_length=MAX_TEXT_CHARS)
    input: InputSpec
    classes: Annotated[StrictInt, Field(gt=0, le=MAX_CLASSES)]
    divisor: Annotated[StrictInt, Field(gt=0, le=MAX_DIVISOR)] = 1
    stem: list[BlockCall] = Field(default_factory=list, max_length=MAX_CALLS)
    stages: list[StageSpec] = Field(min_length=1, max_length=MAX_STAGES)
    head: list[BlockCall] = Field(min_length=1, max_length=MAX_CALLS)
    templates: dict[Ident, TemplateSpec] = Field(default_factory=dict, max_length=MAX_TEMPLATES)

    # where the spec came from, for located errors; never part of the hash
    _source: str | None = PrivateAttr(default=None)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Specs are equal when they say the same thing, wherever they were read from."""
        if not isinstance(other, Spec):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @property
    def source(self) -> str | None:
        return self._source

    def line_of(self, path: str) -> int | None:
        """The YAML line of a key path such as `stages[2].depth` (or its nearest parent)."""
        while path:
            if path in self._lines:
                return self._lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None

    @property
    def structural_hash(self) -> str:
        """Hash of everything that shapes the network (not its name, description or comments)."""
        body = self.model_dump(mode="json", exclude={"name", "description"})
        for template in body["templates"].values():  # fields added later hash as before
            for node in template["nodes"]:
                for key in _LATER_NODE_FIELDS:
                    if node.get(key) is None:
                        node.pop(key, None)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return digest[:16]

    def scaled(self, **kwargs: Any) -> Spec:
        from wtc.spec.transform import scaled

        return scaled(self, **kwargs)
