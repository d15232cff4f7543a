"""The progress display of a run: a rich bar over units on a terminal, one plain line per unit
with progress="plain", nothing otherwise."""

from __future__ import annotations

import sys
from typing import Any

from wtc.errors import ConfigError


class Display:
    """A rich progress bar over units on a terminal, plain lines with progress="plain",
    nothing otherwise."""

    def __init__(self, mode: str, total: int) -> None:
        if mode == "auto":
            mode = "rich" if sys.stdout.isatty() else "none"
        if mode not in ("rich", "plain", "none"):
            raise ConfigError(f"progress must be auto, rich, plain or none, not {mode!r}")
        self.mode, self.total, self.count = mode, total, 0
        self._bar: Any = None
        self._task: Any = None
        self._running: list[str] = []

    def __enter__(self) -> Display:
        if self.mode == "rich":
            from wtc.trainer.progress import rich_bar

            self._bar = rich_bar(remaining=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("units", total=self.total, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def started(self, uid: str) -> None:
        self._running.append(uid)
        self._update()

    def advance(self, uid: str, skipped: bool = False, failed: bool = False,
                reused: bool = False) -> None:
        self.count += 1
        if uid in self._running:
            self._running.remove(uid)
        if self.mode == "plain":
            what = ("skipped" if skipped else "FAILED" if failed else
                    "reused (same computation as another unit)" if reused else "done")
            print(f"[{self.count}/{self.total}] {what} {uid}", flush=True)
        if self._bar is not None:
            self._bar.update(self._task, advance=1)
        self._update()

    def _update(self) -> None:
        if self._bar is not None:
            shown = ", ".join(self._running[:3]) + (" ..." if len(self._running) > 3 else "")
            self._bar.update(self._task, info=shown)

