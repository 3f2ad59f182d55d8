"""Temporal drift summaries of a per-clip (or per-segment) series, each named after the paper that used it.

A :class:`Series` is a list of time intervals with a value each — the clip rows of one metric and one video
(:func:`series_from_rows`). Window means weight each interval by its overlap with the window, so the padded
last clip of VBench-Long (which overlaps its predecessor) is placed where its frames really are.

Summaries:

* :func:`first_last_delta` — |mean over the first 5 s − mean over the last 5 s|: Deep Forcing's aesthetic
  drift, Rolling Forcing's ΔDrift on imaging quality (id ``drift.first_last@window=5,abs=true``).
* :func:`segment_std` — standard deviation over 2-s segments (Reward Forcing, imaging quality over 30 × 2 s).
* :func:`vde` — Video Drift Error of LV-Bench (Inferix ``LV-Bench/vde.py``): chunk values ``m_1..m_N``,
  ``sum_{i=2..N} w_i |m_i − m_1| / m_1`` with ``w_i = N − i + 1`` (linear) or ``log(N − i + 1)`` (log);
  0 for ``N < 2``, ``inf`` for ``m_1 = 0``. Not normalised by the weights, as in the reference.
* :func:`slope_per_minute` — least-squares slope of value against clip centre time, in units per minute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipRow


@dataclass(frozen=True)
class Series:
    """Values over time intervals of one video.

    Attributes:
        t_start: Interval starts in seconds.
        t_end: Interval ends in seconds (exclusive).
        values: One value per interval.
    """

    t_start: tuple[float, ...]
    t_end: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.t_start) == len(self.t_end) == len(self.values):
            raise ValueError("t_start, t_end and values must have the same length")
        if any(e <= s for s, e in zip(self.t_start, self.t_end, strict=True)):
            raise ValueError("every interval needs t_end > t_start")

    @property
    def duration(self) -> float:
        """End of the last interval (the series starts at 0 for a whole video)."""
        return max(self.t_end)

    @classmethod
    def uniform(cls, values: Sequence[float], segment_s: float) -> Series:
        """Back-to-back segments of ``segment_s`` seconds starting at 0."""
        n = len(values)
        return cls(
            tuple(i * segment_s for i in range(n)),
            tuple((i + 1) * segment_s for i in range(n)),
            tuple(float(v) for v in values),
        )


def series_from_rows(rows: Iterable[ClipRow], metric: str, video_id: str) -> Series:
    """Collect the clip rows of one metric id and video into a time-ordered :class:`Series`.

    Clips whose value is NaN (undefined there, for metrics that declare ``skip_undefined``) are left out; the
    series keeps each clip's own time interval, so the summaries stay time-aligned.
    """
    picked = sorted(
        (
            r
            for r in rows
            if isinstance(r, ClipRow) and r.metric == metric and r.video_id == video_id and not math.isnan(r.value)
        ),
        key=lambda r: r.clip_index,
    )
    if not picked:
        raise ValueError(f"no rows for metric {metric!r} and video {video_id!r}")
    return Series(tuple(r.t_start for r in picked), tuple(r.t_end for r in picked), tuple(r.value for r in picked))


def window_mean(series: Series, t0: float, t1: float) -> float:
    """Overlap-weighted mean of the series over ``[t0, t1)``.

    Raises:
        ValueError: If no interval overlaps the window.
    """
    num, den = [], []
    for s, e, v in zip(series.t_start, series.t_end, series.values, strict=True):
        overlap = min(e, t1) - max(s, t0)
        if overlap > 0:
            num.append(overlap * v)
            den.append(overlap)
    if not den:
        raise ValueError(f"no interval overlaps the window [{t0}, {t1}) s")
    return math.fsum(num) / math.fsum(den)


def first_last_delta(series: Series, window_s: float = 5.0, absolute: bool = True) -> float:
    """Mean over the first ``window_s`` seconds minus mean over the last ``window_s`` seconds.

    Deep Forcing (aesthetic drift) and Rolling Forcing (ΔDrift, imaging quality) report
    |first 5 s − last 5 s|; with ``absolute=False`` the sign is kept (first − last).

    Raises:
        ValueError: If the video is shorter than ``2 * window_s`` (the windows would overlap).
    """
    start, end = min(series.t_start), series.duration
    if end - start < 2 * window_s:
        raise ValueError(f"series spans {end - start:g} s, shorter than two {window_s:g}-s windows")
    d = window_mean(series, start, start + window_s) - window_mean(series, end - window_s, end)
    return abs(d) if absolute else d


def segment_std(values: Sequence[float], ddof: int = 0) -> float:
    """Standard deviation of the per-segment values (Reward Forcing: imaging quality over 2-s segments).

    Args:
        values: One value per segment.
        ddof: Delta degrees of freedom (0: population std, as ``numpy.std``'s default).
    """
    n = len(values)
    if n - ddof <= 0:
        raise ValueError(f"need more than {ddof} values, got {n}")
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - ddof))


def chunk_means(series: Series, n_chunks: int) -> list[float]:
    """Overlap-weighted means of the series over ``n_chunks`` equal time chunks of its span."""
    if n_chunks < 1:
        raise ValueError("n_chunks must be >= 1")
    start, end = min(series.t_start), series.duration
    step = (end - start) / n_chunks
    return [window_mean(series, start + i * step, start + (i + 1) * step) for i in range(n_chunks)]


def vde(chunk_values: Sequence[float], weighting: str = "linear") -> float:
    """Video Drift Error (LV-Bench) of per-chunk metric values ``m_1..m_N``.

    Args:
        chunk_values: The metric on each of N equal chunks, in time order (LV-Bench uses N = 10).
        weighting: ``"linear"`` (``w_i = N - i + 1``) or ``"log"`` (``w_i = log(N - i + 1)``).

    Returns:
        ``sum_{i=2..N} w_i |m_i - m_1| / m_1``; 0 if ``N < 2``; ``inf`` if ``m_1 == 0``. Lower is better.
    """
    if weighting not in ("linear", "log"):
        raise ValueError(f"weighting must be 'linear' or 'log', got {weighting!r}")
    n = len(chunk_values)
    if n < 2:
        return 0.0
    m1 = chunk_values[0]
    if m1 == 0:
        return math.inf
    terms = []
    for i in range(2, n + 1):
        w = float(n - i + 1) if weighting == "linear" else math.log(n - i + 1)
        terms.append(w * abs(chunk_values[i - 1] - m1) / m1)
    return math.fsum(terms)


def slope_per_minute(series: Series) -> float:
    """Least-squares slope of value against interval-centre time, in value units per minute.

    Raises:
        ValueError: With fewer than two distinct centre times.
    """
    t = [(s + e) / 2 / 60.0 for s, e in zip(series.t_start, series.t_end, strict=True)]
    y = series.values
    n = len(t)
    tm, ym = math.fsum(t) / n, math.fsum(y) / n
    sxx = math.fsum((ti - tm) ** 2 for ti in t)
    if n < 2 or sxx == 0:
        raise ValueError("slope needs at least two distinct time points")
    return math.fsum((ti - tm) * (yi - ym) for ti, yi in zip(t, y, strict=True)) / sxx


#: Summary name -> (id, source). Ids carry the protocol; sources are what the paper reported.
DRIFT_SUMMARIES: dict[str, tuple[str, str]] = {
    "first_last": (
        metric_id("drift.first_last", {"window": 5, "abs": True}),
        "Deep Forcing (aesthetic drift); Rolling Forcing (ΔDrift, imaging quality)",
    ),
    "segment_std": (metric_id("drift.segment_std", {"seg": 2, "ddof": 0}), "Reward Forcing"),
    "vde_linear": (metric_id("drift.vde", {"chunks": 10, "w": "linear"}), "LV-Bench (Inferix vde.py)"),
    "vde_log": (metric_id("drift.vde", {"chunks": 10, "w": "log"}), "LV-Bench (Inferix vde.py)"),
    "slope": (metric_id("drift.slope", {"unit": "per_min"}), "least-squares slope (ours)"),
}


def drift_summaries(series: Series, window_s: float = 5.0, n_chunks: int = 10) -> dict[str, float]:
    """All drift summaries of one video's series, keyed by the ids in :data:`DRIFT_SUMMARIES`.

    Summaries that are undefined for this series (too short for two windows, a single clip) are NaN.
    The defaults match the ids; other values change the protocol, so the ids are rebuilt from them.
    """
    ids = {
        "first_last": metric_id("drift.first_last", {"window": window_s, "abs": True}),
        "segment_std": DRIFT_SUMMARIES["segment_std"][0],
        "vde_linear": metric_id("drift.vde", {"chunks": n_chunks, "w": "linear"}),
        "vde_log": metric_id("drift.vde", {"chunks": n_chunks, "w": "log"}),
        "slope": DRIFT_SUMMARIES["slope"][0],
    }
    out: dict[str, float] = {}

    def _try(key: str, fn) -> None:
        try:
            out[ids[key]] = float(fn())
        except ValueError:
            out[ids[key]] = math.nan

    _try("first_last", lambda: first_last_delta(series, window_s))
    _try("segment_std", lambda: segment_std(series.values))
    # A series with gaps (undefined clips left out) may leave a VDE chunk empty: then VDE is undefined too.
    _try("vde_linear", lambda: vde(chunk_means(series, n_chunks), "linear"))
    _try("vde_log", lambda: vde(chunk_means(series, n_chunks), "log"))
    _try("slope", lambda: slope_per_minute(series))
    return out
