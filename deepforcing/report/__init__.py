"""Reports and regression checks built from the files a run writes (``results/aggregate.json`` and friends).

Everything numeric goes through one table model (:mod:`deepforcing.report.table`): builders turn one or several
runs (plus the published numbers of ``baselines/published``) into :class:`~deepforcing.report.table.Table`
objects whose cells keep their raw value, display value, direction, n, source and confidence interval; renderers
(:mod:`deepforcing.report.render`) turn a table into Markdown, LaTeX (booktabs), CSV, HTML or a console table.

Layout:

* ``runs`` — load a run directory (aggregate, clip/video rows, manifest) with clear errors.
* ``catalog`` — display names of metric ids (``labels.yaml``); the protocol stays in the id.
* ``published`` — the papers' numbers and how they map onto our methods and metrics.
* ``table`` — the table model and its builders (summary, paper comparison, drift, speed, paired comparisons,
  long-horizon coherence).
* ``render`` — Markdown / LaTeX / CSV / HTML / rich renderers of a table.
* ``charts`` — matplotlib SVG charts (drift over time, ablations, speed, coherence against Δt), with CI bars.
* ``filmstrip`` — a frame every few seconds of an mp4, as inline JPEG.
* ``html`` — the self-contained HTML report.
* ``regress`` — compare a run with committed reference numbers under declared tolerances (or overlapping CIs).
* ``cli`` — the ``report`` and ``regress`` subcommands.

Adding a renderer: write ``to_<format>(table) -> str`` in ``render.py`` reading only the table model (never a
run), and add a golden test under ``tests/report/``.
"""
