"""One output layer for every command: lines, tables, JSON documents and log records.

Every command of ``deepforcing-eval`` prints through this module (``out`` for results on stdout, ``err`` for
logs, warnings and errors on stderr), so the rules below hold everywhere:

* **Nothing is ever cut.** A table's ``key`` columns (names, hashes: what a user greps or copies) and ``number``
  columns are never truncated, wrapped or folded; only ``text`` columns wrap, and they fold long words instead of
  eliding them. Messages are never hard-wrapped by us (the terminal wraps long lines itself).
* **Pipes get plain text.** When the stream is not a TTY (a pipe, a file, a test's capture) a table is printed as
  plain aligned text, one line per row (a header line first; empty cells as ``-``); no colour codes and no box
  characters, whatever ``COLUMNS``, ``TERM``, ``NO_COLOR`` or ``FORCE_COLOR`` say. ``deepforcing-eval methods
  list | grep deep-forcing-ds`` finds the row.
* **Terminals get tables** (rich), as wide as the terminal; when the unbreakable columns do not fit, each row is
  printed as a small block instead: its first key cell, then one ``column  value`` line per other column.
* **Programs get JSON.** :func:`document` wraps every ``--json`` output with ``schema_version`` and ``kind``
  (schemas: ``docs/cli.md``); :meth:`Output.json` prints it without colour, NaN/inf as ``null``.

Only the standard library is imported at module load; rich is imported when a terminal needs it, so listing
commands stay fast (``benchmarks/bench_cli_startup.py``). Dependencies point one way: ``deepforcing.cli``,
``deepforcing.harness.cli`` and ``deepforcing.report.cli`` import this module, never each other's consoles.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any, Literal

#: Version of every ``--json`` document's schema (``docs/cli.md``); bumped when a field changes meaning or goes.
SCHEMA_VERSION = 1

#: Narrowest a ``text`` column may become in a terminal table before rows are printed as blocks instead.
TEXT_MIN_WIDTH = 12

ColumnKind = Literal["key", "number", "text"]


@dataclass(frozen=True)
class Column:
    """A table column.

    Attributes:
        header: Column heading (for ``key`` and ``number`` columns it is never cut either).
        kind: ``key`` (identifiers: never cut or broken), ``number`` (right-aligned, never broken) or ``text``
            (wraps and folds in a terminal table).
    """

    header: str
    kind: ColumnKind = "text"


@dataclass(frozen=True)
class Styled:
    """Text with a rich style (``bold``, ``red``, …) used in a terminal and ignored in plain text."""

    text: str
    style: str | None = None


CellValue = str | Styled


@dataclass
class Table:
    """A table to print: columns, rows, an optional title and notes below.

    Attributes:
        columns: The columns.
        title: Printed above the table (empty: none).
        notes: Lines printed below the table.
        rows: ``(cells, row style)`` pairs; add them with :meth:`add_row`.
    """

    columns: list[Column]
    title: str = ""
    notes: list[str] = field(default_factory=list)
    rows: list[tuple[tuple[CellValue, ...], str | None]] = field(default_factory=list)

    def add_row(self, *cells: CellValue | None, style: str | None = None) -> None:
        """Append a row (one cell per column; None is an empty cell)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append((tuple("" if c is None else c for c in cells), style))


def _text(cell: CellValue) -> str:
    """The cell's text on one line (tabs and newlines become spaces)."""
    s = cell.text if isinstance(cell, Styled) else cell
    return " ".join(s.split("\n")).replace("\t", " ")


def display_width(s: str) -> int:
    """Terminal cells taken by ``s`` (East Asian wide characters count 2, combining marks 0)."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def plain_lines(table: Table) -> list[str]:
    """The table as plain aligned text: [title], header, one line per row, [notes]; empty cells as ``-``."""
    header = [c.header for c in table.columns]
    body = [[_text(c) or "-" for c in cells] for cells, _ in table.rows]
    widths = [max(display_width(r[i]) for r in [header, *body]) for i in range(len(header))]
    last = len(header) - 1

    def fmt(row: list[str]) -> str:
        parts = []
        for i, (s, col) in enumerate(zip(row, table.columns, strict=True)):
            pad = " " * (widths[i] - display_width(s))
            if col.kind == "number":
                parts.append(pad + s)
            else:
                parts.append(s if i == last else s + pad)
        return "  ".join(parts).rstrip()

    out = [table.title] if table.title else []
    out += [fmt(header), *(fmt(r) for r in body)]
    return out + list(table.notes)


def record_lines(table: Table) -> list[tuple[str, bool]]:
    """The table as blocks, one per row: the row's first key cell (a heading), then ``  header  value`` lines.

    Returns:
        ``(line, is_heading)`` pairs: the title and each row's heading are headings.
    """
    first = next((i for i, c in enumerate(table.columns) if c.kind == "key"), 0)
    others = [i for i in range(len(table.columns)) if i != first]
    pad = max((display_width(table.columns[i].header) for i in others), default=0)
    out = [(table.title, True)] if table.title else []
    for cells, _ in table.rows:
        out.append((_text(cells[first]) or "-", True))
        for i in others:
            h = table.columns[i].header
            out.append((f"  {h}{' ' * (pad - display_width(h))}  {_text(cells[i]) or '-'}", False))
    return out + [(n, False) for n in table.notes]


def _finite(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as None, tuples as lists and paths as strings (JSON-ready)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


def document(kind: str, **fields: Any) -> dict[str, Any]:
    """A ``--json`` document: ``{"schema_version": SCHEMA_VERSION, "kind": kind, **fields}``."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, **fields}


class Output:
    """One output stream (stdout or stderr) and how to print on it.

    Args:
        stream: ``stdout`` or ``stderr`` (looked up at every print, so test captures and redirections apply).
        file: A fixed file instead (tests).
        tty: Force terminal (True) or plain (False) output; None: ``file.isatty()``.
        width: Terminal width for tables; None: the terminal's (rich's rules). Unused in plain output.
        color: False: no colour even on a terminal; None: rich's rules (``NO_COLOR`` …).
    """

    def __init__(
        self,
        stream: Literal["stdout", "stderr"] = "stdout",
        *,
        file: IO[str] | None = None,
        tty: bool | None = None,
        width: int | None = None,
        color: bool | None = None,
    ):
        self.stream = stream
        self._file = file
        self._tty = tty
        self._width = width
        self._color = color
        self._rich = None

    @property
    def file(self) -> IO[str]:
        """The stream printed to (the current ``sys.stdout`` / ``sys.stderr`` unless a file was given)."""
        return self._file if self._file is not None else getattr(sys, self.stream)

    @property
    def is_tty(self) -> bool:
        """True when output goes to a terminal (tables, colour and progress bars); False: plain text."""
        if self._tty is not None:
            return self._tty
        try:
            return bool(self.file.isatty())
        except (AttributeError, ValueError, OSError):
            return False

    @property
    def rich(self):
        """A ``rich.console.Console`` on this stream (for progress bars and the terminal log handler)."""
        if self._rich is None:
            from rich.console import Console

            self._rich = Console(
                file=self._file,
                stderr=self.stream == "stderr",
                width=self._width,
                force_terminal=self._tty,
                no_color=None if self._color is None else not self._color,
                highlight=False,
            )
        return self._rich

    # ------------------------------------------------------------------------------------------- text
    def _write(self, text: str) -> None:
        f = self.file
        f.write(text)
        f.flush()

    def line(self, *parts: str | Styled, style: str | None = None) -> None:
        """Print one message line (parts concatenated; styles used on a terminal only; never hard-wrapped)."""
        if not self.is_tty:
            self._write("".join(p.text if isinstance(p, Styled) else p for p in parts) + "\n")
            return
        from rich.text import Text

        text = Text(style=style or "")
        for p in parts:
            if isinstance(p, Styled):
                text.append(p.text, style=p.style or "")
            else:
                text.append(p)
        self.rich.print(text, soft_wrap=True)

    def block(self, text: str) -> None:
        """Print preformatted text as is (a diff, Markdown): no styling, no wrapping."""
        self._write(text if text.endswith("\n") else text + "\n")

    def error(self, message: str) -> None:
        """``error: message``."""
        self.line(Styled("error:", "bold red"), " ", message)

    def warning(self, message: str) -> None:
        """``warning: message``."""
        self.line(Styled("warning:", "yellow"), " ", message)

    def note(self, message: str) -> None:
        """``note: message``."""
        self.line(Styled("note:", "yellow"), " ", message)

    # ------------------------------------------------------------------------------------------- json
    def json(self, doc: Any) -> None:
        """Print a JSON document (2-space indent, UTF-8, NaN/inf as null, never coloured)."""
        self._write(json.dumps(_finite(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n")

    # ------------------------------------------------------------------------------------------ table
    def table(self, table: Table) -> None:
        """Print a table: plain lines when not a TTY; a rich table, or row blocks if too narrow, on a terminal."""
        if not self.is_tty:
            self._write("".join(s + "\n" for s in plain_lines(table)))
            return
        width = self.rich.width
        if not table.rows or not _fits(table, width):
            for s, heading in record_lines(table):
                self.line(s, style="bold" if heading else None)
            return
        self.rich.print(_rich_table(table), soft_wrap=False)

    # ---------------------------------------------------------------------------------------- logging
    def log_handler(self) -> logging.Handler:
        """A logging handler on this stream: ``message`` / ``warning: message`` lines, never hard-wrapped."""
        return _LineHandler(self)


def _natural(table: Table, i: int) -> int:
    col = table.columns[i]
    return max([display_width(col.header), *(display_width(_text(cells[i])) for cells, _ in table.rows)])


def _fits(table: Table, width: int) -> bool:
    """True when every key/number column fits whole and every text column gets TEXT_MIN_WIDTH (or its width)."""
    need = 0
    for i, col in enumerate(table.columns):
        n = _natural(table, i)
        need += n if col.kind != "text" else min(n, TEXT_MIN_WIDTH)
    need += 3 * len(table.columns) + 1  # rich's default box: one rule and two padding cells per column
    return need <= width


def _rich_table(table: Table):
    from rich.table import Table as RichTable
    from rich.text import Text

    t = RichTable(
        title=table.title or None,
        caption="\n".join(table.notes) or None,
        caption_justify="left",
        title_justify="left",
    )
    for i, col in enumerate(table.columns):
        if col.kind == "text":
            t.add_column(col.header, overflow="fold")
        else:
            t.add_column(
                col.header,
                no_wrap=True,
                min_width=_natural(table, i),
                justify="right" if col.kind == "number" else "left",
            )
    for cells, style in table.rows:
        t.add_row(
            *(Text(_text(c) or "-", style=(c.style or "") if isinstance(c, Styled) else "") for c in cells),
            style=style,
        )
    return t


#: Style of a log record's level prefix on a terminal.
_LEVEL_STYLES = {"debug": "dim", "warning": "yellow", "error": "bold red", "critical": "bold red"}


class _LineHandler(logging.Handler):
    """Log records as lines on an :class:`Output`: ``message`` at INFO, ``warning: message`` etc. otherwise.

    The same words on a terminal (the prefix coloured) and in a file; a long record stays one line (the run's
    log file under ``<run>/logs/`` has timestamps and logger names).
    """

    def __init__(self, output: Output):
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            level = record.levelname.lower()
            if record.levelno == logging.INFO:
                self.output.line(msg)
            else:
                self.output.line(Styled(f"{level}:", _LEVEL_STYLES.get(level)), " ", msg)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


#: Results of every command (stdout).
out = Output("stdout")
#: Logs, progress, warnings and errors (stderr).
err = Output("stderr")
