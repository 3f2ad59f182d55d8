"""Confidence intervals a paper can cite: a prompt-level bootstrap, paired comparisons and an overlap test.

**The unit of resampling is the prompt.** Prompts are the independent draws of an evaluation; the videos of one
prompt (one per seed) share it and are not independent of each other. So nothing here resamples videos:

* An :class:`Observation` is one number of one video (its per-video metric value) with its prompt id, its key
  inside the prompt (the seed, used to pair two methods) and a weight.
* The statistic is the weighted mean over all observations, ``theta = sum_i w_i v_i / sum_i w_i``. With unit
  weights (the default) it is the mean over videos, i.e. the suite value the harness reports; with ``w_i`` = the
  video's number of clips it is VBench-Long's pooled mean over all clips (``vbench-long-exact``, see
  :mod:`deepforcing.metrics.aggregate`).
* One bootstrap resample draws ``P`` prompts with replacement out of the ``P`` prompts (a prompt drawn ``k``
  times counts ``k`` times). Every drawn prompt brings **all of its videos as given** (no resampling inside a
  prompt), and ``theta`` is recomputed on them. This is the cluster ("case") bootstrap of a ratio estimator: it
  is ``scipy.stats.bootstrap`` on the per-prompt pairs ``(sum_w v, sum_w)``, resampled jointly (``paired=True``),
  with the statistic ``sum(sum_w v) / sum(sum_w)``.
* Interval: two-sided, 95 % by default, ``method="percentile"`` by default (``"basic"`` and ``"BCa"`` are
  scipy's other choices); ``n_resamples`` (default 10,000), the seed of the ``numpy`` generator and the method are
  recorded in every result (:meth:`CIResult.to_dict`), so an interval can be recomputed bit for bit with the same
  scipy version (also recorded).

**Paired comparison** (:func:`paired_comparison`) of two methods scored on the same prompts and seeds:
observations are matched on ``(prompt_id, key)``; the difference ``d = a - b`` of every matched pair has unit
weight, so the reported difference is the mean over pairs of ``a - b`` (equal to the mean of ``a`` minus the mean
of ``b`` over the paired videos) and its interval is the prompt bootstrap above applied to ``d``. The p-value is
the two-sided Wilcoxon signed-rank test on the **per-prompt mean differences** (one number per prompt, the
independent unit): zero differences are dropped first (Wilcoxon's original rule, ``zero_method="wilcox"``); the
null distribution is exact when at most 50 non-zero differences remain and none of their magnitudes tie, and
the normal approximation with tie correction and no continuity correction otherwise (``wilcoxon_method`` in the
result says which).

**Degenerate cases** never raise and never return a bare NaN; ``status`` says which case applied and ``note``
says it in words:

============================  =========================================================================
``status``                    result
============================  =========================================================================
``ok``                        mean and interval
``constant``                  every prompt has the same mean (e.g. two identical methods, or a constant
                              shift with exactly representable numbers): the interval is ``[mean, mean]``
                              (every resample gives that value); a paired p-value is 1.0 if all
                              differences are zero
``single_prompt``             one prompt: the mean, but no interval (``ci_low = ci_high = None``) and no
                              p-value — a single draw says nothing about the spread over prompts
``empty``                     no finite value (or, paired, no matched pair): ``mean = None``
============================  =========================================================================

Non-finite values (NaN, ±inf) are left out and counted in ``n_excluded``; unmatched observations of a paired
comparison are counted in ``n_unpaired_a`` / ``n_unpaired_b``. Duplicate ``(prompt_id, key)`` pairs and
non-positive weights are bad input and raise ``ValueError``.

**Overlap** (:func:`ci_overlap`): closed intervals overlap when ``new_low <= base_high`` and
``base_low <= new_high``; when either side has no interval the answer is ``None`` (undecidable — a regression
gate then falls back to its absolute tolerance).

scipy is imported only when a bootstrap or test actually runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

#: Default number of bootstrap resamples.
N_RESAMPLES = 10_000
#: Default two-sided confidence level.
CONFIDENCE = 0.95
#: Default seed of the ``numpy`` generator that draws the resamples.
SEED = 0
#: Resamples evaluated per vectorised batch (bounds memory: ``batch x n_prompts`` floats per array).
BATCH = 1_000
#: Above this many non-zero differences (or with ties) the Wilcoxon p-value uses the normal approximation.
WILCOXON_EXACT_MAX = 50

CIMethod = Literal["percentile", "basic", "BCa"]
Status = Literal["ok", "constant", "single_prompt", "empty"]


@dataclass(frozen=True)
class Observation:
    """One per-video value.

    Attributes:
        prompt_id: The prompt the video was made from (the resampling unit).
        value: The video's value.
        key: The video's key inside its prompt (the seed), used to pair two methods.
        weight: Weight in the weighted mean (1: mean over videos; clip count: pooled clip mean).
    """

    prompt_id: str
    value: float
    key: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class CIResult:
    """A mean with its prompt-bootstrap confidence interval.

    Attributes:
        n: Prompts that contributed (the resampling unit).
        n_videos: Observations that contributed.
        mean: The weighted mean (None when ``status == "empty"``).
        ci_low: Lower end of the interval (None for ``single_prompt`` / ``empty``).
        ci_high: Upper end of the interval.
        confidence_level: Two-sided coverage, e.g. 0.95.
        n_resamples: Bootstrap resamples.
        seed: Seed of the ``numpy`` generator.
        method: scipy's interval method (``percentile``, ``basic``, ``BCa``).
        status: ``ok``, ``constant``, ``single_prompt`` or ``empty`` (see the module docstring).
        note: The status in words (empty when ``ok``).
        n_excluded: Non-finite values left out.
        resample_unit: Always ``prompt``.
        scipy_version: scipy that drew the resamples (None if no bootstrap ran).
    """

    n: int
    n_videos: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    confidence_level: float
    n_resamples: int
    seed: int
    method: str
    status: Status
    note: str = ""
    n_excluded: int = 0
    resample_unit: str = "prompt"
    scipy_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (None stays None; no NaN)."""
        return asdict(self)

    @property
    def has_interval(self) -> bool:
        """True if both ends of the interval are known."""
        return self.ci_low is not None and self.ci_high is not None

    def overlaps(self, baseline: CIResult | Mapping[str, Any]) -> bool | None:
        """:func:`ci_overlap` of this result (the new value) and ``baseline``."""
        return ci_overlap(self, baseline)

    def format(self, fmt: str = ".4f") -> str:
        """``0.9712 [0.9650, 0.9771], n = 128`` (or what the status allows)."""
        if self.mean is None:
            return f"n/a ({self.note})"
        ci = f" [{self.ci_low:{fmt}}, {self.ci_high:{fmt}}]" if self.has_interval else ""
        return f"{self.mean:{fmt}}{ci}, n = {self.n}"


@dataclass(frozen=True)
class PairedResult:
    """Mean difference ``a - b`` of two methods on matched (prompt, seed) pairs.

    Attributes:
        n: Prompts with at least one matched pair (the resampling unit and the Wilcoxon sample size before
            zeros are dropped).
        n_pairs: Matched (prompt, key) pairs.
        mean: Mean over pairs of ``a - b`` (None when ``status == "empty"``).
        ci_low: Lower end of the paired bootstrap interval.
        ci_high: Upper end.
        p_value: Two-sided Wilcoxon signed-rank p-value on per-prompt mean differences (None when undefined).
        wilcoxon_method: ``exact``, ``approx`` or ``none`` (no test ran).
        n_nonzero: Per-prompt mean differences that are not zero (what the Wilcoxon test ranks).
        confidence_level: Two-sided coverage.
        n_resamples: Bootstrap resamples.
        seed: Seed of the ``numpy`` generator.
        method: scipy's interval method.
        status: ``ok``, ``constant``, ``single_prompt`` or ``empty``.
        note: The status in words.
        n_unpaired_a: Observations of ``a`` without a partner in ``b`` (left out).
        n_unpaired_b: Observations of ``b`` without a partner in ``a`` (left out).
        n_excluded: Pairs left out because a value was not finite.
        test: Always ``wilcoxon_signed_rank``.
        resample_unit: Always ``prompt``.
        scipy_version: scipy that ran the bootstrap and the test.
    """

    n: int
    n_pairs: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    wilcoxon_method: str
    n_nonzero: int
    confidence_level: float
    n_resamples: int
    seed: int
    method: str
    status: Status
    note: str = ""
    n_unpaired_a: int = 0
    n_unpaired_b: int = 0
    n_excluded: int = 0
    test: str = "wilcoxon_signed_rank"
    resample_unit: str = "prompt"
    scipy_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return asdict(self)

    def format(self, fmt: str = "+.3f") -> str:
        """``+0.031 [+0.012, +0.050], p = 0.004, n = 128`` (or what the status allows)."""
        if self.mean is None:
            return f"n/a ({self.note})"
        ci = f" [{self.ci_low:{fmt}}, {self.ci_high:{fmt}}]" if self.ci_low is not None else ""
        p = f", p = {self.p_value:.3g}" if self.p_value is not None else ""
        return f"{self.mean:{fmt}}{ci}{p}, n = {self.n}"


def observations(
    per_video: Mapping[str, float],
    prompt_of: Mapping[str, str],
    key_of: Mapping[str, str] | None = None,
    weight_of: Mapping[str, float] | None = None,
) -> list[Observation]:
    """Build observations from the harness's per-video values.

    Args:
        per_video: Video id -> value (e.g. :attr:`AggregateResult.per_video`).
        prompt_of: Video id -> prompt id.
        key_of: Video id -> key inside the prompt (the seed, as a string); default: the video id.
        weight_of: Video id -> weight; default 1.

    Returns:
        One observation per video, in video-id order.

    Raises:
        ValueError: If a video has no prompt id.
    """
    missing = sorted(v for v in per_video if v not in prompt_of)
    if missing:
        raise ValueError(f"no prompt id for video(s) {', '.join(missing)}")
    return [
        Observation(
            prompt_of[vid],
            float(per_video[vid]),
            str(key_of[vid]) if key_of is not None else vid,
            float(weight_of[vid]) if weight_of is not None else 1.0,
        )
        for vid in sorted(per_video)
    ]


def _check_options(confidence_level: float, n_resamples: int, method: str) -> None:
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if method not in ("percentile", "basic", "BCa"):
        raise ValueError(f"method must be 'percentile', 'basic' or 'BCa', got {method!r}")


def _clusters(obs: Iterable[Observation]) -> tuple[dict[str, list[Observation]], int]:
    """Finite observations grouped by prompt (sorted prompt ids), and the count of non-finite ones."""
    groups: dict[str, list[Observation]] = defaultdict(list)
    excluded = 0
    for o in obs:
        if not (math.isfinite(o.weight) and o.weight > 0):
            raise ValueError(f"observation of prompt {o.prompt_id!r} has weight {o.weight}; weights must be > 0")
        if not math.isfinite(o.value):
            excluded += 1
            continue
        groups[o.prompt_id].append(o)
    return {p: groups[p] for p in sorted(groups)}, excluded


def _cluster_interval(
    sums: list[float], weights: list[float], confidence_level: float, n_resamples: int, seed: int, method: str
) -> tuple[float, float, str]:
    """Prompt-bootstrap interval of ``sum(sums) / sum(weights)`` (``len(sums) >= 2``, not all ratios equal)."""
    import numpy as np
    import scipy
    from scipy import stats

    def ratio(s, w, axis=-1):
        return np.sum(s, axis=axis) / np.sum(w, axis=axis)

    res = stats.bootstrap(
        (np.asarray(sums, dtype=np.float64), np.asarray(weights, dtype=np.float64)),
        ratio,
        n_resamples=n_resamples,
        batch=BATCH,
        vectorized=True,
        paired=True,
        confidence_level=confidence_level,
        method=method,
        rng=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa on near-degenerate data
        raise ValueError(f"scipy's {method} interval is not finite ({low}, {high}); use method='percentile'")
    return low, high, scipy.__version__


def _summarise(
    groups: dict[str, list[tuple[float, float]]],
    n_excluded: int,
    confidence_level: float,
    n_resamples: int,
    seed: int,
    method: str,
) -> CIResult:
    """CI of the weighted mean of ``(value, weight)`` pairs grouped by prompt."""
    common = {"confidence_level": confidence_level, "n_resamples": n_resamples, "seed": seed, "method": method}
    excluded_note = f"; {n_excluded} non-finite value(s) left out" if n_excluded else ""
    n_videos = sum(len(g) for g in groups.values())
    if not groups:
        return CIResult(
            0,
            0,
            None,
            None,
            None,
            status="empty",
            note="no finite value" + excluded_note,
            n_excluded=n_excluded,
            **common,
        )
    sums = [math.fsum(v * w for v, w in g) for g in groups.values()]
    weights = [math.fsum(w for _, w in g) for g in groups.values()]
    mean = math.fsum(sums) / math.fsum(weights)
    if len(groups) == 1:
        note = "one prompt: no interval over prompts" + excluded_note
        return CIResult(
            1, n_videos, mean, None, None, status="single_prompt", note=note, n_excluded=n_excluded, **common
        )
    ratios = {s / w for s, w in zip(sums, weights, strict=True)}
    if len(ratios) == 1:
        note = "every prompt has the same mean: zero-width interval" + excluded_note
        return CIResult(
            len(groups), n_videos, mean, mean, mean, status="constant", note=note, n_excluded=n_excluded, **common
        )
    low, high, version = _cluster_interval(sums, weights, confidence_level, n_resamples, seed, method)
    return CIResult(
        len(groups),
        n_videos,
        mean,
        low,
        high,
        status="ok",
        note=excluded_note.lstrip("; "),
        n_excluded=n_excluded,
        scipy_version=version,
        **common,
    )


def bootstrap_ci(
    obs: Iterable[Observation],
    *,
    confidence_level: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    method: CIMethod = "percentile",
) -> CIResult:
    """Weighted mean of per-video values and its prompt-bootstrap confidence interval.

    Args:
        obs: Per-video observations (any order; see :func:`observations`).
        confidence_level: Two-sided coverage.
        n_resamples: Bootstrap resamples.
        seed: Seed of the ``numpy`` generator that draws them.
        method: scipy's interval method.

    Returns:
        The result; degenerate inputs give the ``status`` of the module docstring, never an exception or NaN.

    Raises:
        ValueError: On a non-positive weight or a bad option.
    """
    _check_options(confidence_level, n_resamples, method)
    clusters, excluded = _clusters(obs)
    groups = {p: [(o.value, o.weight) for o in g] for p, g in clusters.items()}
    return _summarise(groups, excluded, confidence_level, n_resamples, seed, method)


def _index(obs: Iterable[Observation], side: str) -> dict[tuple[str, str], Observation]:
    out: dict[tuple[str, str], Observation] = {}
    for o in obs:
        k = (o.prompt_id, o.key)
        if k in out:
            raise ValueError(f"method {side}: two observations for prompt {o.prompt_id!r} key {o.key!r}")
        out[k] = o
    return out


def _wilcoxon(per_prompt: list[float]) -> tuple[float | None, str, int]:
    """Two-sided signed-rank p-value of per-prompt mean differences: (p, method, non-zero count)."""
    import numpy as np
    from scipy import stats

    d = np.asarray([x for x in per_prompt if x != 0.0], dtype=np.float64)
    if d.size == 0:
        return 1.0, "none", 0
    mags = np.abs(d)
    exact = d.size <= WILCOXON_EXACT_MAX and np.unique(mags).size == d.size
    how = "exact" if exact else "approx"
    res = stats.wilcoxon(d, zero_method="wilcox", correction=False, alternative="two-sided", method=how)
    return float(res.pvalue), how, int(d.size)


def paired_comparison(
    a: Iterable[Observation],
    b: Iterable[Observation],
    *,
    confidence_level: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    method: CIMethod = "percentile",
) -> PairedResult:
    """Mean difference ``a - b`` on matched ``(prompt_id, key)`` pairs, paired-bootstrap CI and Wilcoxon p-value.

    Args:
        a: Observations of the first method (weights are ignored: every pair counts once).
        b: Observations of the second method.
        confidence_level: Two-sided coverage.
        n_resamples: Bootstrap resamples.
        seed: Seed of the ``numpy`` generator.
        method: scipy's interval method.

    Returns:
        The comparison; degenerate inputs give the ``status`` of the module docstring.

    Raises:
        ValueError: On a duplicate ``(prompt_id, key)`` within one method or a bad option.
    """
    _check_options(confidence_level, n_resamples, method)
    ia, ib = _index(a, "a"), _index(b, "b")
    common = sorted(ia.keys() & ib.keys())
    n_ua, n_ub = len(ia) - len(common), len(ib) - len(common)
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    excluded = 0
    for k in common:
        d = ia[k].value - ib[k].value
        if not math.isfinite(d):
            excluded += 1
            continue
        groups[k[0]].append((d, 1.0))
    ci = _summarise(dict(groups), excluded, confidence_level, n_resamples, seed, method)
    unpaired = f"{n_ua} of a and {n_ub} of b unpaired, left out" if n_ua or n_ub else ""
    note = "; ".join(x for x in (("no matched pair" if not common else ci.note), unpaired) if x)
    p, how, nonzero, version = None, "none", 0, ci.scipy_version
    if ci.n >= 2:
        import scipy

        per_prompt = [math.fsum(d for d, _ in g) / len(g) for g in groups.values()]
        p, how, nonzero = _wilcoxon(per_prompt)
        version = scipy.__version__
    return PairedResult(
        n=ci.n,
        n_pairs=ci.n_videos,
        mean=ci.mean,
        ci_low=ci.ci_low,
        ci_high=ci.ci_high,
        p_value=p,
        wilcoxon_method=how,
        n_nonzero=nonzero,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        seed=seed,
        method=method,
        status=ci.status,
        note=note,
        n_unpaired_a=n_ua,
        n_unpaired_b=n_ub,
        n_excluded=excluded,
        scipy_version=version,
    )


def _bounds(x: CIResult | PairedResult | Mapping[str, Any]) -> tuple[float | None, float | None]:
    if isinstance(x, Mapping):
        return x.get("ci_low"), x.get("ci_high")
    return x.ci_low, x.ci_high


def ci_overlap(
    new: CIResult | PairedResult | Mapping[str, Any], baseline: CIResult | PairedResult | Mapping[str, Any]
) -> bool | None:
    """Whether the new value's interval overlaps the baseline's (closed intervals).

    Args:
        new: A result, or a mapping with ``ci_low`` / ``ci_high`` (e.g. read back from ``aggregate.json``).
        baseline: The same for the reference value.

    Returns:
        True if ``new_low <= base_high`` and ``base_low <= new_high``; None if either side has no interval
        (``single_prompt`` / ``empty``, or a published number), so the caller must decide another way.
    """
    nl, nh = _bounds(new)
    bl, bh = _bounds(baseline)
    if None in (nl, nh, bl, bh):
        return None
    return bool(nl <= bh and bl <= nh)
