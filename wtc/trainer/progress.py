"""Progress display of a training run: a rich bar on a terminal, plain lines per epoch
otherwise, or silence (the library prints nothing by default)."""

from __future__ import annotations

import sys
from typing import Any


def rich_bar(remaining: bool = True) -> Any:
    """wtc's rich progress bar: description, bar, n/total, elapsed (and remaining) time, and a
    free-text `info` field per task (the trainer's epochs, the experiment's units)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    if remaining:
        columns.append(TimeRemainingColumn())
    return RichProgress(*columns, TextColumn("{task.fields[info]}"), transient=False)


class Progress:
    """A rich bar on a terminal, plain lines per epoch otherwise, or silence."""

    def __init__(self, mode: str, enabled: bool) -> None:
        if mode == "auto":
            mode = "rich" if sys.stdout.isatty() else "plain"
        self.mode = mode if enabled else "none"
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.mode == "rich":
            self._bar = rich_bar()
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(f"epoch {epoch + 1}/{epochs}", total=steps, info="")

    def step(self, info: str | None = None) -> None:
        if self._bar is not None:
            kw = {"info": info} if info is not None else {}
            self._bar.update(self._task, advance=1, **kw)

    def epoch_end(self, row: dict[str, Any]) -> None:
        keys = ("train_loss", "train_top1", "val_top1", "top1", "lr", "seconds")
        text = f"epoch {row['epoch'] + 1}/{row['epochs']} " + " ".join(
            f"{k}={row[k]:.4g}" for k in keys if row.get(k) is not None)
        if self._bar is not None:
            self._bar.update(self._task, info=text.split(" ", 2)[-1])
        elif self.mode == "plain":
            print(text, flush=True)

    def start(self, description: str, total: int | None = None) -> None:
        """A task that is not an epoch (a search phase); `total` None: open-ended."""
        self._desc = description
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total, info="")

    def advance(self, info: str) -> None:
        """One unit of the current task: the bar moves, or one plain line is printed."""
        if self._bar is not None:
            self._bar.update(self._task, advance=1, info=info)
        elif self.mode == "plain":
            print(f"{getattr(self, '_desc', '')} {info}", flush=True)
