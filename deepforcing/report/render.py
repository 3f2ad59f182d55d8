"""Renderers of the table model: Markdown, LaTeX (booktabs), CSV, HTML, the console and JSON.

Each renderer reads only a :class:`~deepforcing.report.table.Table`; none computes or rounds a number itself
(the display string is the cell's). Best cells (:attr:`Cell.best`) are bold everywhere. A cell's confidence
interval (:attr:`Cell.ci`) is shown beside its number in every format: ``0.9712 [0.9650, 0.9771]`` in Markdown and
on the console, a smaller ``[…]`` after the number in LaTeX and HTML, ``ci_low`` / ``ci_high`` columns in CSV.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from typing import Any

from deepforcing import console
from deepforcing.report.table import Cell, Column, Table


def _arrow(col: Column) -> str:
    return {"higher": " ↑", "lower": " ↓"}.get(col.direction or "", "")


# ------------------------------------------------------------------------------------------ markdown
def _md_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def to_markdown(table: Table, title_level: int = 3) -> str:
    """GitHub-flavoured Markdown: a heading, the table (numbers right-aligned), the notes as a list.

    Args:
        table: The table.
        title_level: Heading level of the title (0: no heading).
    """
    out = []
    if title_level:
        out += ["#" * title_level + " " + table.title, ""]
    out.append("| " + " | ".join(_md_escape(c.label + _arrow(c)) for c in table.columns) + " |")
    out.append("|" + "|".join("---:" if c.kind in ("ours", "paper", "delta") else "---" for c in table.columns) + "|")
    for row in table.rows:
        cells = []
        for cell in row:
            s = _md_escape(cell.display)
            s = f"**{s}**" if cell.best else s
            cells.append(f"{s} {_md_escape(cell.ci_display)}" if cell.ci_display else s)
        out.append("| " + " | ".join(cells) + " |")
    if table.notes:
        out.append("")
        out += [f"- {_md_escape(n)}" for n in table.notes]
    return "\n".join(out) + "\n"


def to_markdown_tables(tables: Sequence[Table], title_level: int = 3) -> str:
    """Several tables as one Markdown document (a blank line between them)."""
    return "\n".join(to_markdown(t, title_level) for t in tables)


# --------------------------------------------------------------------------------------------- latex
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "Δ": r"$\Delta$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "—": "--",
    "−": "-",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "∞": r"$\infty$",
    "…": r"\ldots{}",
}


def latex_escape(s: str) -> str:
    """Escape text for LaTeX (special characters and the few symbols the report uses)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def _latex_cell(cell: Cell) -> str:
    s = latex_escape(cell.display)
    s = rf"\textbf{{{s}}}" if cell.best else s
    if cell.ci_display:
        s += rf" {{\scriptsize {latex_escape(cell.ci_display)}}}"
    return s


def to_latex(table: Table, label: str | None = None, environment: bool = True) -> str:
    r"""A booktabs table (``\toprule``/``\midrule``/``\bottomrule``), best per column in bold.

    Grouped columns (ours / paper / delta of one metric) get a ``\multicolumn`` header with a ``\cmidrule``.
    Needs ``\usepackage{booktabs}`` in the preamble.

    Args:
        table: The table.
        label: ``\label`` (default ``tab:<table name>``).
        environment: Wrap the tabular in a ``table`` float with caption, label and the notes.
    """
    align = "".join("r" if c.kind in ("ours", "paper", "delta") else "l" for c in table.columns)
    lines = []
    if environment:
        lines += [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{latex_escape(table.title)}}}"]
        lines.append(rf"\label{{{label or 'tab:' + table.name}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    if table.grouped:
        top, rules = [], []
        j = 0
        cols = table.columns
        while j < len(cols):
            g = cols[j].group
            k = j
            while g and k + 1 < len(cols) and cols[k + 1].group == g:
                k += 1
            if g:
                top.append(rf"\multicolumn{{{k - j + 1}}}{{c}}{{{latex_escape(g + _arrow(cols[j]))}}}")
                rules.append(rf"\cmidrule(lr){{{j + 1}-{k + 1}}}")
            else:
                top.append("")
            j = k + 1
        lines.append(" & ".join(top) + r" \\")
        lines.append(" ".join(rules))
        sub = [latex_escape(c.sub if c.group else c.label + _arrow(c)) for c in cols]
        lines.append(" & ".join(sub) + r" \\")
    else:
        lines.append(" & ".join(latex_escape(c.label + _arrow(c)) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        lines.append(" & ".join(_latex_cell(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if environment:
        if table.notes:
            lines.append(r"\par\smallskip\footnotesize")
            lines += [latex_escape(n) + r"\par" for n in table.notes]
        lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_latex_tables(tables: Sequence[Table]) -> str:
    """Several tables as consecutive ``table`` floats (labels ``tab:<name>``)."""
    return "\n".join(to_latex(t) for t in tables)


# ----------------------------------------------------------------------------------------------- csv
def _csv_value(cell: Cell) -> str:
    if cell.value is None:
        return ""
    return repr(cell.value) if isinstance(cell.value, float) else str(cell.value)


def _csv_number(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def _ci_bounds(cell: Cell) -> tuple[float | None, float | None]:
    if cell.ci is None or cell.number is None or not cell.ci.known:
        return None, None
    return cell.ci.low, cell.ci.high


def to_csv(table: Table, layout: str = "wide") -> str:
    """CSV of raw values (full precision; empty when missing).

    Args:
        table: The table.
        layout: ``wide`` — one line per row, one column per table column (headers are the column keys); a
            column whose cells have intervals is followed by ``ci_low:<key>`` and ``ci_high:<key>``;
            ``long`` — one line per cell with display, direction, n, best and source, then ``ci_low``,
            ``ci_high``, ``n_prompts`` and ``ci_status`` (empty when the cell has no interval).
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if layout == "wide":
        with_ci = [any(row[j].ci is not None for row in table.rows) for j in range(len(table.columns))]
        header = []
        for col, ci in zip(table.columns, with_ci, strict=True):
            header += [col.key, f"ci_low:{col.key}", f"ci_high:{col.key}"] if ci else [col.key]
        w.writerow(header)
        for row in table.rows:
            line = []
            for cell, ci in zip(row, with_ci, strict=True):
                line.append(_csv_value(cell))
                if ci:
                    line += [_csv_number(b) for b in _ci_bounds(cell)]
            w.writerow(line)
        return buf.getvalue()
    if layout != "long":
        raise ValueError(f"layout must be 'wide' or 'long', got {layout!r}")
    w.writerow(
        [
            "table",
            "row",
            "column",
            "kind",
            "value",
            "display",
            "direction",
            "n",
            "best",
            "method",
            "config_hash",
            "run",
            "reference",
            "ci_low",
            "ci_high",
            "n_prompts",
            "ci_status",
        ]
    )
    for row in table.rows:
        for col, cell in zip(table.columns, row, strict=True):
            src = cell.source
            w.writerow(
                [
                    table.name,
                    row[0].display,
                    col.key,
                    col.kind,
                    _csv_value(cell),
                    cell.display,
                    cell.direction or "",
                    "" if cell.n is None else cell.n,
                    int(cell.best),
                    src.method if src else "",
                    src.config_hash if src and src.config_hash else "",
                    src.run if src and src.run else "",
                    src.reference if src and src.reference else "",
                    *(_csv_number(b) for b in _ci_bounds(cell)),
                    "" if cell.ci is None or cell.ci.n is None else cell.ci.n,
                    "" if cell.ci is None else cell.ci.status,
                ]
            )
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- html
def _attr(s: str) -> str:
    return html.escape(s, quote=True)


def to_html(table: Table, caption: bool = True) -> str:
    """An HTML ``<table>`` (classes ``df-table``, ``num``, ``best``; tooltips carry raw value, n, interval, source).

    Numeric cells carry ``data-value`` (raw) so the report's script can sort columns, and ``data-ci-low`` /
    ``data-ci-high`` with the interval shown in a ``<span class="ci">`` after the number.
    """
    out = [f'<table class="df-table" data-table="{_attr(table.name)}">']
    if caption:
        out.append(f"<caption>{html.escape(table.title)}</caption>")
    out.append("<thead>")
    cols = table.columns
    if table.grouped:
        out.append("<tr>")
        j = 0
        while j < len(cols):
            g = cols[j].group
            k = j
            while g and k + 1 < len(cols) and cols[k + 1].group == g:
                k += 1
            if g:
                desc = _attr(cols[j].description or g)
                label = html.escape(g + _arrow(cols[j]))
                out.append(f'<th colspan="{k - j + 1}" class="group" title="{desc}">{label}</th>')
            else:
                c = cols[j]
                out.append(
                    f'<th rowspan="2" data-key="{_attr(c.key)}" title="{_attr(c.description or c.label)}">'
                    f"{html.escape(c.label + _arrow(c))}</th>"
                )
            j = k + 1
        out.append("</tr><tr>")
        for c in cols:
            if c.group:
                out.append(f'<th class="sub" data-key="{_attr(c.key)}">{html.escape(c.sub)}</th>')
        out.append("</tr>")
    else:
        out.append("<tr>")
        for c in cols:
            out.append(
                f'<th data-key="{_attr(c.key)}" title="{_attr(c.description or c.label)}">'
                f"{html.escape(c.label + _arrow(c))}</th>"
            )
        out.append("</tr>")
    out.append("</thead><tbody>")
    for row in table.rows:
        out.append("<tr>")
        for j, (col, cell) in enumerate(zip(cols, row, strict=True)):
            classes = []
            if col.kind in ("ours", "paper", "delta"):
                classes.append("num")
            if col.kind in ("paper", "delta"):
                classes.append(col.kind)
            if col.kind == "text":
                classes.append("txt")
            if cell.best:
                classes.append("best")
            attrs = f' class="{" ".join(classes)}"' if classes else ""
            if cell.number is not None:
                attrs += f' data-value="{cell.number!r}"'
            low, high = _ci_bounds(cell)
            if low is not None and high is not None:
                attrs += f' data-ci-low="{low!r}" data-ci-high="{high!r}"'
            tip = cell.tooltip()
            if tip:
                attrs += f' title="{_attr(tip)}"'
            content = html.escape(cell.display)
            if cell.best:
                content = f"<strong>{content}</strong>"
            if cell.ci_display:
                content += " " + f'<span class="ci">{html.escape(cell.ci_display)}</span>'
            tag = "th" if j == 0 and col.kind == "label" else "td"
            scope = ' scope="row"' if tag == "th" else ""
            out.append(f"<{tag}{scope}{attrs}>{content}</{tag}>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if table.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- console
_CONSOLE_KIND: dict[str, console.ColumnKind] = {"label": "key", "ours": "number", "paper": "number", "delta": "number"}


def _empty(cell: Cell) -> bool:
    return cell.value is None or cell.display in ("", "—")


def to_console(table: Table) -> console.Table:
    """A :class:`deepforcing.console.Table` (best cells bold on a terminal; notes below).

    Row labels are ``key`` columns and numbers ``number`` columns, so neither is ever cut; a column without any
    value is left out and named in a note (a table of dashes says nothing at any width).
    """
    keep = [
        i
        for i, c in enumerate(table.columns)
        if not table.rows or c.kind in ("label", "text") or not all(_empty(row[i]) for row in table.rows)
    ]
    dropped = [table.columns[i].label for i in range(len(table.columns)) if i not in keep]
    notes = list(table.notes)
    if dropped and table.rows:
        notes.append(f"{len(dropped)} column(s) without any value left out: {', '.join(dropped)}")
    out = console.Table(
        [
            console.Column(
                table.columns[i].label + _arrow(table.columns[i]), _CONSOLE_KIND.get(table.columns[i].kind, "text")
            )
            for i in keep
        ],
        title=table.title,
        notes=notes,
    )
    for row in table.rows:
        out.add_row(
            *(console.Styled(row[i].full_display, "bold") if row[i].best else row[i].full_display for i in keep)
        )
    return out


# ---------------------------------------------------------------------------------------------- json
def _json_interval(cell: Cell) -> dict[str, Any]:
    low, high = _ci_bounds(cell)
    ci = cell.ci
    return {
        "ci_low": low,
        "ci_high": high,
        "n_prompts": ci.n if ci else None,
        "status": ci.status if ci else None,
        "level": ci.level if ci else None,
    }


def to_json(table: Table) -> dict[str, Any]:
    """The table as JSON.

    Fields: ``columns`` (key, label, kind, direction), ``rows`` (one object per row: column key -> raw value),
    ``intervals`` (one object per row: column key -> ``ci_low``, ``ci_high``, ``n_prompts``, ``status``,
    ``level``, for the cells that have an interval) and ``notes``.
    """
    return {
        "name": table.name,
        "title": table.title,
        "columns": [{"key": c.key, "label": c.label, "kind": c.kind, "direction": c.direction} for c in table.columns],
        "rows": [{c.key: cell.value for c, cell in zip(table.columns, row, strict=True)} for row in table.rows],
        "intervals": [
            {c.key: _json_interval(cell) for c, cell in zip(table.columns, row, strict=True) if cell.ci is not None}
            for row in table.rows
        ],
        "notes": list(table.notes),
    }
