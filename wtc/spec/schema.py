"""The spec language as pydantic v2 models: strict (extra keys forbidden), immutable.

Schema classes hold data only; checks that need more than one field (block names, template
parameters, expressions) live in `check.py`, and nothing here knows about torch.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
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

Param = StrictBool | StrictInt | StrictFloat | StrictStr
Expr = StrictInt | StrictFloat | StrictBool | StrictStr  # a literal or an expression string
Ident = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
PositiveInt = Annotated[StrictInt, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(Strict):
    channels: PositiveInt
    resolution: PositiveInt


class NodeSpec(Strict):
    """One op of a block template. Strings in numeric fields are expressions over parameters."""

    name: Ident
    op: Literal["conv", "dwconv", "linear", "bn", "act", "maxpool", "avgpool", "gap", "flatten",
                "dropout", "identity", "add", "mul", "concat"]
    inputs: list[Ident] | None = None  # default: the previous node, or the block input
    when: Expr | None = None  # a false condition removes the node; it then forwards its input
    out: Expr | None = None
    kernel: Expr | None = None
    stride: Expr | None = None
    padding: Expr | None = None
    bias: Expr | None = None
    fn: StrictStr | None = None
    p: Expr | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_input_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("inputs"), str):
            data = {**data, "inputs": [data["inputs"]]}
        return data


class TemplateSpec(Strict):
    """A block: parameters with defaults, and an op graph whose inputs are named."""

    params: dict[Ident, Param] = Field(default_factory=dict)
    nodes: list[NodeSpec] = Field(min_length=1)
    output: Ident | None = None  # default: the last node
    description: str = ""


_CALL_FIELDS = {"block", "width", "stride", "params", "name", "depth"}


class _WithParams(Strict):
    """Block parameters may be written inline (`expansion: 6`); they are gathered in `params`."""

    params: dict[Ident, Param] = Field(default_factory=dict)

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
    width: PositiveInt | None = None
    stride: PositiveInt = 1


class StageSpec(_WithParams):
    """A run of `depth` blocks at one resolution; only the first block strides."""

    name: Ident
    block: Ident
    depth: PositiveInt = 1
    width: PositiveInt
    stride: PositiveInt = 1


class Spec(Strict):
    """A whole network. Immutable: transforms return new specs."""

    name: str = Field(min_length=1)
    description: str = ""
    input: InputSpec
    classes: PositiveInt
    divisor: PositiveInt = 1
    stem: list[BlockCall] = Field(default_factory=list)
    stages: list[StageSpec] = Field(min_length=1)
    head: list[BlockCall] = Field(min_length=1)
    templates: dict[Ident, TemplateSpec] = Field(default_factory=dict)

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
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return digest[:16]

    def scaled(self, **kwargs: Any) -> Spec:
        from wtc.spec.transform import scaled

        return scaled(self, **kwargs)
