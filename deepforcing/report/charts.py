"""Charts of a report as inline SVG (matplotlib, no pyplot state, text kept as text, reproducible ids).

* :func:`drift_curves` — every per-clip metric over time, one line per method (mean over videos, band = range).
* :func:`panels_svg` — any grid of panels; the ablation plots (a knob of an ablation grid, e.g. the Deep Sink size,
  against chosen metrics as in the paper's Fig. 5) use it directly.
* :func:`speed_chart` — per-chunk latency and attention length (latent frames attended) over the chunk index.
* :func:`coherence_chart` — long-horizon coherence against the gap Δt (log axis), one line per method.

A curve may carry a confidence interval per point (:attr:`Curve.ci_lo` / :attr:`Curve.ci_hi`), drawn as a bar with
caps from ``ci_lo`` to ``ci_hi`` (whatever the point: a percentile interval need not be centred on the mean); the
bars of curve ``j`` of panel ``k`` are the SVG group ``ci-bars-k-j``.

Every function takes plain data (built by :mod:`deepforcing.report.html` from the run files) and returns SVG text
without the XML prologue, ready to inline.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deepforcing.errors import UserError

#: Line colours, by series index (matplotlib's tab10).
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def color(i: int) -> str:
    """Colour of series ``i``."""
    return COLORS[i % len(COLORS)]


@dataclass(frozen=True)
class Curve:
    """One line: x values, mean y, an optional band (min/max over videos) and optional CI bars.

    Attributes:
        label: Legend label.
        x: x values.
        y: y values (NaN for gaps).
        lo: Lower band (None: no band).
        hi: Upper band.
        color_index: Index into :data:`COLORS`.
        ci_lo: Lower end of each point's confidence interval (NaN: none at that point; None: no CI bars).
        ci_hi: Upper end.
        points: Draw the points only (markers, no connecting line), e.g. run-level means beside a curve.
    """

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    lo: tuple[float, ...] | None = None
    hi: tuple[float, ...] | None = None
    color_index: int = 0
    ci_lo: tuple[float, ...] | None = None
    ci_hi: tuple[float, ...] | None = None
    points: bool = False

    def ci_bars(self) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """``(x, low, high)`` of the points that have a finite interval."""
        if self.ci_lo is None or self.ci_hi is None:
            return (), (), ()
        keep = [
            (x, lo, hi)
            for x, lo, hi in zip(self.x, self.ci_lo, self.ci_hi, strict=True)
            if math.isfinite(lo) and math.isfinite(hi)
        ]
        return tuple(k[0] for k in keep), tuple(k[1] for k in keep), tuple(k[2] for k in keep)


@dataclass(frozen=True)
class Panel:
    """One subplot.

    Attributes:
        title: Panel title.
        curves: Lines.
        ylabel: y-axis label.
        xlabel: x-axis label.
        note: Small text under the title (e.g. the metric's protocol).
        markers: Draw markers on the points (for few points).
        xscale: ``linear`` or ``log``.
        xticks: Tick positions (labelled with ``:g``); empty: matplotlib's.
        divider: x of a dotted vertical line (e.g. between curves and run-level points beside them); None: none.
    """

    title: str
    curves: tuple[Curve, ...]
    ylabel: str = ""
    xlabel: str = ""
    note: str = ""
    markers: bool = False
    xscale: str = "linear"
    xticks: tuple[float, ...] = ()
    divider: float | None = None


def _matplotlib():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - a dependency
        raise UserError("matplotlib is needed for report charts", "pip install matplotlib") from exc
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    return matplotlib, Figure, FigureCanvasSVG


def panels_svg(panels: Sequence[Panel], name: str, ncols: int = 3, panel_size: tuple[float, float] = (3.6, 2.5)) -> str:
    """Render panels as a grid of subplots with one shared legend; returns inline SVG.

    Args:
        panels: The subplots.
        name: Chart name; seeds the SVG ids so they are reproducible and unique within a page.
        ncols: Columns of the grid.
        panel_size: Width and height of one panel in inches.
    """
    matplotlib, Figure, FigureCanvasSVG = _matplotlib()
    ncols = max(1, min(ncols, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    rc = {
        "svg.hashsalt": f"deepforcing-{name}",
        "svg.fonttype": "none",
        "font.size": 8,
        "axes.titlesize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.5), layout="constrained")
        FigureCanvasSVG(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        handles: dict[str, object] = {}
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.set_axis_off()
                continue
            p = panels[k]
            for j, c in enumerate(p.curves):
                col = color(c.color_index)
                (line,) = ax.plot(
                    c.x,
                    c.y,
                    color=col,
                    lw=0 if c.points else 1.4,
                    linestyle="none" if c.points else "-",
                    marker="o" if p.markers or c.points else None,
                    ms=3.5,
                    label=c.label,
                )
                if c.lo is not None and c.hi is not None and any(a != b for a, b in zip(c.lo, c.hi, strict=True)):
                    ax.fill_between(c.x, c.lo, c.hi, color=col, alpha=0.15, lw=0)
                bx, blo, bhi = c.ci_bars()
                if bx:
                    mid = [(lo + hi) / 2 for lo, hi in zip(blo, bhi, strict=True)]
                    half = [(hi - lo) / 2 for lo, hi in zip(blo, bhi, strict=True)]
                    bars = ax.errorbar(
                        bx, mid, yerr=half, fmt="none", ecolor=col, elinewidth=1.1, capsize=2.5, capthick=1.1
                    )
                    bars.lines[2][0].set_gid(f"ci-bars-{k}-{j}")  # one path per bar: <g id="ci-bars-PANEL-CURVE">
                handles.setdefault(c.label, line)
            ax.set_title(p.title + (f"\n{p.note}" if p.note else ""), loc="left")
            ax.set_xlabel(p.xlabel)
            ax.set_ylabel(p.ylabel)
            ax.grid(True, lw=0.4, alpha=0.5)
            if p.divider is not None:
                ax.axvline(p.divider, color="#9aa1ad", lw=0.8, ls=":")
            if p.xscale == "log":
                ax.set_xscale("log")
            if p.xticks:
                ax.set_xticks(list(p.xticks), [f"{t:g}" for t in p.xticks])
                ax.minorticks_off()
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 5))
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return strip_prologue(buf.getvalue())


def strip_prologue(svg: str) -> str:
    """Drop the XML declaration, DOCTYPE and leading comments so the SVG can be inlined in HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def drift_curves(panels: Sequence[Panel]) -> str:
    """Per-clip metric values over time (one panel per metric id)."""
    return panels_svg(panels, "drift-curves", ncols=3)


def speed_chart(panels: Sequence[Panel]) -> str:
    """Per-chunk latency and attention length over the chunk index."""
    return panels_svg(panels, "speed", ncols=2, panel_size=(4.6, 2.8))


def coherence_chart(panels: Sequence[Panel]) -> str:
    """Long-horizon coherence against the gap Δt, one panel per configuration."""
    return panels_svg(panels, "coherence", ncols=2, panel_size=(4.6, 3.0))


def band(values_per_x: Mapping[float, Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    """``(x, mean, min, max)`` columns of values grouped by x (sorted by x; NaN values skipped)."""
    xs, ys, lo, hi = [], [], [], []
    for x in sorted(values_per_x):
        vals = [v for v in values_per_x[x] if v is not None and math.isfinite(v)]
        xs.append(float(x))
        ys.append(math.fsum(vals) / len(vals) if vals else math.nan)
        lo.append(min(vals) if vals else math.nan)
        hi.append(max(vals) if vals else math.nan)
    return tuple(xs), tuple(ys), tuple(lo), tuple(hi)
