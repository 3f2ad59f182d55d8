"""Progress reporting for the runner: a no-op default, one line per unit (logs, pipes) and rich progress bars."""

from __future__ import annotations

import time
from typing import Any


class Progress:
    """Receives progress events; this base class ignores them (quiet mode, non-zero ranks, tests)."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stage(self, name: str, total: int) -> None:
        """A stage (``generate`` / ``score``) starts with ``total`` units."""

    def unit(self, label: str, num_chunks: int | None = None) -> None:
        """A unit starts (``num_chunks`` for a chunk bar)."""

    def chunk(self, done: int, total: int) -> None:
        """``done`` of ``total`` chunks of the current unit are finished."""

    def advance(self) -> None:
        """The current unit finished."""

    def close(self) -> None:
        """Stop rendering."""


class LineProgress(Progress):
    """One line per finished unit on a :class:`deepforcing.console.Output` (stderr piped to a file or a pipe).

    ``generating 3/12: deep-forcing toy-002 s0 (41.2 s)`` — what a progress bar shows, in a form a log file keeps.
    """

    def __init__(self, output: Any):
        self._out = output
        self._name = ""
        self._total = 0
        self._done = 0
        self._label = ""
        self._t0 = time.monotonic()

    def stage(self, name: str, total: int) -> None:
        """Remember the stage; say how many units it has."""
        self._name, self._total, self._done = name, total, 0
        self._out.line(f"{name}: {total} unit(s)")

    def unit(self, label: str, num_chunks: int | None = None) -> None:
        """Remember which unit runs."""
        self._label, self._t0 = label, time.monotonic()

    def advance(self) -> None:
        """Print the finished unit."""
        self._done += 1
        elapsed = time.monotonic() - self._t0
        self._out.line(f"{self._name} {self._done}/{self._total}: {self._label} ({elapsed:.1f} s)")


class RichProgress(Progress):
    """Two rich bars: units of the stage (with ETA) and chunks of the current unit.

    Args:
        console: A ``rich.console.Console`` (stderr in the CLI).
    """

    def __init__(self, console: Any):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBars

        self._bars = RichBars(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._bars.start()
        self._units = None
        self._chunks = None

    def stage(self, name: str, total: int) -> None:
        """Add the stage's unit bar."""
        if self._chunks is not None:
            self._bars.remove_task(self._chunks)
            self._chunks = None
        self._units = self._bars.add_task(name, total=total, unit="units")

    def unit(self, label: str, num_chunks: int | None = None) -> None:
        """Reset the chunk bar for a new unit."""
        if self._units is not None:
            self._bars.update(self._units, unit=f"units  {label}")
        if num_chunks is None:
            return
        if self._chunks is None:
            self._chunks = self._bars.add_task("  chunks", total=num_chunks, unit="")
        else:
            self._bars.reset(self._chunks, total=num_chunks)

    def chunk(self, done: int, total: int) -> None:
        """Move the chunk bar."""
        if self._chunks is not None:
            self._bars.update(self._chunks, completed=done, total=total)

    def advance(self) -> None:
        """Move the unit bar."""
        if self._units is not None:
            self._bars.advance(self._units)

    def close(self) -> None:
        """Stop the live display."""
        self._bars.stop()
