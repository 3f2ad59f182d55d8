"""The console layer: plain text in pipes, uncut identifiers on terminals of any width, JSON documents."""

import io
import json
import logging
import re

import pytest

from deepforcing import console
from deepforcing.console import Column, Output, Styled, Table

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = "│┃┆┊║|"


def _table(title: str = "") -> Table:
    """Identifiers as long as the real ones, numbers, and a text column that has to fold."""
    t = Table(
        [
            Column("metric (protocol in the files)", "key"),
            Column("deep-forcing-query-denoising", "number"),
            Column("hash", "key"),
            Column("description"),
        ],
        title=title,
        notes=["a note below the table"],
    )
    t.add_row("drift.first_last[image_stats.mean_luma] ↑", "0.4260", "21f7d648af45", "x " * 40)
    t.add_row("deep-forcing", "-12.5", "4202bb11981b", Styled("Deep Sink 10 + Participative Compression", "bold"))
    t.add_row("deep-forcing-ds", "1234.5", "f76b415db4ef", "")
    return t


def _tokens(text: str) -> set[str]:
    """Every whitespace/box-delimited token sequence of each line (to find whole cells)."""
    found = set()
    for line in ANSI.sub("", text).splitlines():
        for part in re.split(f"[{BOX}]", line):
            found.add(part.strip())
            found.update(part.split())
    return found


def _whole(text: str, value: str) -> bool:
    """True when ``value`` is a whole cell or a whole line token of the rendered ``text``."""
    plain = ANSI.sub("", text)
    pattern = rf"(^|[\s{BOX}]){re.escape(value)}($|[\s{BOX}])"
    return re.search(pattern, plain, flags=re.M) is not None


def test_plain_text_ignores_the_terminal_environment(monkeypatch):
    texts = set()
    for env in ({"COLUMNS": "20"}, {"COLUMNS": "300", "FORCE_COLOR": "1", "TERM": "xterm-256color"}, {"NO_COLOR": "1"}):
        for k in ("COLUMNS", "FORCE_COLOR", "TERM", "NO_COLOR"):
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        buf = io.StringIO()
        o = Output(file=buf)
        o.table(_table("title line"))
        o.line("wrote ", Styled("a/very/long/path/" * 8 + "report.html", "bold"), " and more text " * 10)
        o.warning("something " * 20)
        texts.add(buf.getvalue())
    assert len(texts) == 1  # identical output whatever COLUMNS, TERM, NO_COLOR or FORCE_COLOR say
    text = texts.pop()
    assert "\x1b" not in text and "…" not in text and not any(c in text for c in BOX)
    lines = text.splitlines()
    assert lines[0] == "title line"
    assert lines[1].split("  ")[0] == "metric (protocol in the files)"
    assert lines[2].startswith("drift.first_last[image_stats.mean_luma] ↑")  # one line per row
    assert lines[4].startswith("deep-forcing-ds ") and lines[4].split()[1:] == ["1234.5", "f76b415db4ef", "-"]
    assert lines[5] == "a note below the table"
    assert lines[6].startswith("wrote a/very/long/path/") and lines[6].endswith("and more text ")  # never wrapped
    assert lines[7].startswith("warning: something")
    assert len(lines) == 8


@pytest.mark.parametrize("width", [20, 40, 60, 80, 100, 120, 160, 200])
def test_terminal_tables_never_cut_keys_or_numbers(width):
    buf = io.StringIO()
    Output(file=buf, tty=True, width=width, color=False).table(_table("a title that may wrap " * 3))
    text = ANSI.sub("", buf.getvalue())
    assert "…" not in text
    table = _table()
    for cells, _ in table.rows:
        for col, cell in zip(table.columns, cells, strict=True):
            if col.kind != "text":
                assert _whole(text, cell if isinstance(cell, str) else cell.text), (width, cell, text)
    is_table = "┃" in text
    for col in table.columns[0 if is_table else 1 :]:  # blocks name every column but the heading's
        if col.kind != "text":
            assert _whole(text, col.header), (width, col.header, text)
    if is_table:  # a table (it fits): no line wider than the terminal, the text column folded, not cut
        assert max(console.display_width(line) for line in text.splitlines()) <= width
        assert text.count("x") == 40
    else:  # too narrow: one block per row, the key cells as its heading
        lines = text.splitlines()
        i = lines.index("drift.first_last[image_stats.mean_luma] ↑")
        assert lines[i + 1].split() == ["deep-forcing-query-denoising", "0.4260"]
        assert lines[i + 2].split() == ["hash", "21f7d648af45"]


def test_terminal_table_is_used_when_it_fits():
    buf = io.StringIO()
    Output(file=buf, tty=True, width=200, color=False).table(_table())
    assert "┃" in buf.getvalue()


def test_json_documents_are_plain_and_finite():
    buf = io.StringIO()
    Output(file=buf, tty=True, width=40).json(
        console.document("x", value=float("nan"), items=(1, 2.5), inf=float("inf"))
    )
    text = buf.getvalue()
    assert "\x1b" not in text
    assert json.loads(text) == {
        "schema_version": console.SCHEMA_VERSION,
        "kind": "x",
        "value": None,
        "items": [1, 2.5],
        "inf": None,
    }


def test_plain_log_records(monkeypatch):
    buf = io.StringIO()
    handler = Output(file=buf).log_handler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("deepforcing.test_console")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("careful %s", "x " * 60)
        logger.error("broken")
    finally:
        logger.removeHandler(handler)
    assert buf.getvalue().splitlines() == [f"warning: careful {'x ' * 60}", "error: broken"]


def test_rows_must_match_the_columns():
    with pytest.raises(ValueError, match="2 cells for 4 columns"):
        _table().add_row("a", "b")
