"""The bounded field types of a plan: seeds, depths and names (which end up in unit ids, file
names and terminals), all with the bounds of `wtc.limits`."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wtc.limits import MAX_DEPTH, MAX_SEED
from wtc.text import plain_name, printable


class Strict(BaseModel):
    """Unknown keys are errors; numbers are finite; sections are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Depth = Annotated[int, Field(ge=1, le=MAX_DEPTH)]
Name = Annotated[str, AfterValidator(plain_name)]  # proxy and method names: in unit ids, files
Title = Annotated[str, AfterValidator(printable)]  # the plan's name: printed and in reports
