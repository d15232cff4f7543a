"""The bounded field types of a plan: seeds, depths and names (which end up in unit ids, file
names and terminals), all with the bounds of `wtc.limits`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wtc.errors import PlanError
from wtc.limits import MAX_DEPTH, MAX_SEED
from wtc.text import plain_name, printable


class Strict(BaseModel):
    """Unknown keys are errors; numbers are finite; sections are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Depth = Annotated[int, Field(ge=1, le=MAX_DEPTH)]
Name = Annotated[str, AfterValidator(plain_name)]  # proxy and method names: in unit ids, files
Title = Annotated[str, AfterValidator(printable)]  # the plan's name: printed and in reports


def image_counts(data: dict[str, Any], file: str | None) -> tuple[int | None, int | None]:
    """Pop the dry-run image counts (`train_images`, `test_images`) off a plan's data
    section: each absent, or a positive whole number."""
    counts = []
    for key in ("train_images", "test_images"):
        n = data.pop(key, None)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool)
                              or not 0 < n < 2**40):
            raise PlanError(f"must be a positive whole number, got {n!r}", key=f"data.{key}",
                            file=file)
        counts.append(n)
    return counts[0], counts[1]
