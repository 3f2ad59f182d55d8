"""Prompt-level bootstrap intervals and paired comparisons: known answers, degenerate cases, determinism."""

import json
import math
import statistics

import numpy as np
import pytest

from deepforcing.stats import (
    CIResult,
    Observation,
    bootstrap_ci,
    ci_overlap,
    observations,
    paired_comparison,
)

Z95 = statistics.NormalDist().inv_cdf(0.975)


def _obs(values, seeds=1):
    """values: flat list, consecutive ``seeds`` values belong to one prompt."""
    return [Observation(f"p{i // seeds:04d}", float(v), key=str(i % seeds)) for i, v in enumerate(values)]


def _width(r: CIResult) -> float:
    return r.ci_high - r.ci_low


# ------------------------------------------------------------------------------------------ known answers
def test_two_identical_methods_differ_by_exactly_zero():
    rng = np.random.default_rng(1)
    a = _obs(rng.normal(0.9, 0.05, 64), seeds=2)
    r = paired_comparison(a, list(a))
    assert r.mean == 0.0 and r.ci_low <= 0.0 <= r.ci_high
    assert (r.ci_low, r.ci_high) == (0.0, 0.0) and r.status == "constant"
    assert r.p_value == 1.0 and r.n == 32 and r.n_pairs == 64 and r.n_nonzero == 0


def test_constant_shift_of_exactly_representable_numbers_gives_delta_and_a_zero_width_interval():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 64, 40) / 64.0  # multiples of 1/64: b + 0.25 - b == 0.25 exactly
    a, b = _obs(base + 0.25), _obs(base)
    r = paired_comparison(a, b)
    assert r.mean == 0.25 and r.ci_low == 0.25 == r.ci_high and r.status == "constant"


def test_constant_shift_of_arbitrary_floats_gives_delta_and_a_zero_width_interval():
    rng = np.random.default_rng(3)
    base = rng.normal(0.8, 0.1, 100)
    delta = 0.031
    r = paired_comparison(_obs(base + delta), _obs(base))
    assert r.mean == pytest.approx(delta, abs=1e-15)
    assert r.ci_high - r.ci_low <= 1e-15 and r.ci_low == pytest.approx(delta, abs=1e-15)
    assert r.p_value < 1e-10  # all 100 differences positive


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_normal_sample_with_known_sigma_has_the_analytic_width(seed, method):
    """n = 200, sample standardised to mean 0.5 and (plug-in) sigma 0.1 exactly: width 2 z sigma / sqrt(n)."""
    n, sigma = 200, 0.1
    z = np.random.default_rng(100 + seed).standard_normal(n)
    x = 0.5 + sigma * (z - z.mean()) / z.std()
    r = bootstrap_ci(_obs(x), seed=seed, method=method)
    analytic = 2 * Z95 * sigma / math.sqrt(n)
    assert abs(_width(r) / analytic - 1) < 0.05, (_width(r), analytic)
    assert r.mean == pytest.approx(0.5, abs=1e-12) and r.ci_low < 0.5 < r.ci_high
    assert r.n == 200 and r.n_resamples == 10_000 and r.status == "ok"


def test_videos_are_nested_in_prompts_not_resampled_alone():
    """Strong prompt effect, 4 seeds per prompt: the interval follows the spread of prompt means, not of videos."""
    rng = np.random.default_rng(7)
    n_prompts, k = 150, 4
    prompt_mean = rng.normal(0, 1.0, n_prompts)
    x = (prompt_mean[:, None] + rng.normal(0, 0.1, (n_prompts, k))).ravel()
    nested = bootstrap_ci(_obs(x, seeds=k))
    flat = bootstrap_ci([Observation(f"v{i}", v) for i, v in enumerate(x)])  # every video its own "prompt"
    cluster_means = x.reshape(n_prompts, k).mean(1)
    assert abs(_width(nested) / (2 * Z95 * cluster_means.std() / math.sqrt(n_prompts)) - 1) < 0.05
    assert abs(_width(flat) / (2 * Z95 * x.std() / math.sqrt(n_prompts * k)) - 1) < 0.05
    assert _width(nested) > 1.8 * _width(flat)  # analytic ratio here ~ sqrt(k) = 2
    assert nested.n == n_prompts and nested.n_videos == n_prompts * k


def test_coverage_of_the_nested_interval_is_near_nominal():
    """300 simulated evaluations of 40 prompts x 2 seeds: the 95 % interval covers the true mean 90-98 % of the time."""
    rng = np.random.default_rng(11)
    hits = 0
    for sim in range(300):
        x = (rng.normal(0, 1.0, 40)[:, None] + rng.normal(0, 0.5, (40, 2))).ravel()
        r = bootstrap_ci(_obs(x, seeds=2), n_resamples=2000, seed=sim)
        hits += r.ci_low <= 0.0 <= r.ci_high
    assert 0.90 <= hits / 300 <= 0.98, hits / 300


def test_weighted_mean_pools_clips():
    obs = [Observation("a", 1.0, "0", 3), Observation("a", 0.0, "1", 1), Observation("b", 0.5, "0", 4)]
    r = bootstrap_ci(obs)
    assert r.mean == pytest.approx((3 * 1.0 + 0.0 + 4 * 0.5) / 8)
    # Each prompt's pooled mean: a = 0.75, b = 0.5; any resample is a weighted mix of them.
    assert 0.5 <= r.ci_low <= r.ci_high <= 0.75


def test_paired_interval_is_the_bootstrap_of_the_differences():
    rng = np.random.default_rng(5)
    a = _obs(rng.normal(0.9, 0.05, 60), seeds=3)
    b = _obs(rng.normal(0.88, 0.05, 60), seeds=3)
    r = paired_comparison(a, b, seed=9)
    d = [Observation(x.prompt_id, x.value - y.value, x.key) for x, y in zip(a, b, strict=True)]
    ref = bootstrap_ci(d, seed=9)
    assert (r.mean, r.ci_low, r.ci_high) == (ref.mean, ref.ci_low, ref.ci_high)
    assert r.mean == pytest.approx(np.mean([o.value for o in a]) - np.mean([o.value for o in b]), abs=1e-15)


def test_wilcoxon_exact_p_value_known_answer_and_scipy_parity():
    from scipy import stats

    # 10 prompts, all differences positive with distinct magnitudes: exact two-sided p = 2 / 2**10.
    b = _obs(np.zeros(10))
    a = _obs(np.arange(1, 11) / 100)
    r = paired_comparison(a, b)
    assert r.p_value == pytest.approx(2 / 2**10, rel=1e-12) and r.wilcoxon_method == "exact"
    # Per-prompt means of 2 seeds, mixed signs and one zero prompt.
    rng = np.random.default_rng(6)
    a = _obs(rng.normal(0, 1, 40), seeds=2)
    b = [Observation(o.prompt_id, o.value - (0.3 + rng.normal(0, 1)), o.key) for o in a]
    b[0:2] = [Observation(a[i].prompt_id, a[i].value, a[i].key) for i in (0, 1)]  # prompt p0000: zero difference
    r = paired_comparison(a, b)
    per_prompt = [np.mean([a[i].value - b[i].value for i in (j, j + 1)]) for j in range(0, 40, 2)]
    expected = stats.wilcoxon([d for d in per_prompt if d != 0], method="exact").pvalue
    assert r.n == 20 and r.n_nonzero == 19 and r.p_value == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------------ degenerate cases
def test_one_prompt_has_a_mean_but_no_interval():
    r = bootstrap_ci(_obs([0.7, 0.8, 0.9], seeds=3))
    assert r.status == "single_prompt" and r.mean == pytest.approx(0.8)
    assert r.ci_low is None and r.ci_high is None and "one prompt" in r.note
    p = paired_comparison(_obs([0.7]), _obs([0.6]))
    assert p.status == "single_prompt" and p.mean == pytest.approx(0.1) and p.p_value is None and p.ci_low is None


def test_all_equal_values_give_a_zero_width_interval():
    r = bootstrap_ci(_obs([0.5] * 20, seeds=2))
    assert (r.status, r.mean, r.ci_low, r.ci_high) == ("constant", 0.5, 0.5, 0.5) and r.scipy_version is None


def test_non_finite_values_are_left_out_and_counted():
    r = bootstrap_ci(_obs([0.1, float("nan"), 0.3, float("inf"), 0.5]))
    assert r.n == 3 and r.n_excluded == 2 and "2 non-finite" in r.note and math.isfinite(r.mean)
    empty = bootstrap_ci(_obs([float("nan")] * 3))
    assert empty.status == "empty" and empty.mean is None and empty.n == 0 and empty.n_excluded == 3
    assert bootstrap_ci([]).status == "empty"
    p = paired_comparison(_obs([0.1, float("nan"), 0.3]), _obs([0.0, 0.0, 0.0]))
    assert p.n_excluded == 1 and p.n_pairs == 2


def test_unpaired_and_duplicate_observations():
    a = [Observation("p0", 1.0, "0"), Observation("p0", 1.0, "1"), Observation("p1", 2.0, "0")]
    b = [Observation("p0", 0.5, "0"), Observation("p1", 1.0, "0"), Observation("p2", 9.0, "0")]
    r = paired_comparison(a, b)
    assert (r.n_pairs, r.n_unpaired_a, r.n_unpaired_b) == (2, 1, 1) and r.mean == pytest.approx(0.75)
    assert "1 of a and 1 of b unpaired" in r.note
    none = paired_comparison(a, [Observation("q", 0.0)])
    assert none.status == "empty" and none.mean is None and "no matched pair" in none.note
    with pytest.raises(ValueError, match="two observations for prompt 'p0' key '0'"):
        paired_comparison(a + [Observation("p0", 3.0, "0")], b)
    with pytest.raises(ValueError, match="weights must be > 0"):
        bootstrap_ci([Observation("p", 1.0, weight=0.0)])
    with pytest.raises(ValueError, match="confidence_level"):
        bootstrap_ci(a, confidence_level=95)


# ------------------------------------------------------------------------------------------ records and API
def test_seeded_resamples_are_recorded_and_reproducible():
    x = np.random.default_rng(8).normal(0, 1, 50)
    r1, r2 = bootstrap_ci(_obs(x), seed=3), bootstrap_ci(_obs(x), seed=3)
    assert r1 == r2
    assert bootstrap_ci(_obs(x), seed=4).ci_low != r1.ci_low
    d = r1.to_dict()
    assert {"n", "mean", "ci_low", "ci_high", "n_resamples", "seed", "method", "confidence_level"} <= d.keys()
    assert (d["n_resamples"], d["seed"], d["method"], d["resample_unit"]) == (10_000, 3, "percentile", "prompt")
    assert json.loads(json.dumps(d)) == d  # JSON-ready, no NaN
    small = bootstrap_ci(_obs(x), n_resamples=500)
    assert small.to_dict()["n_resamples"] == 500
    single = bootstrap_ci(_obs([1.0])).to_dict()
    assert single["ci_low"] is None and json.dumps(single)


def test_observations_from_per_video_values():
    obs = observations({"u2": 0.5, "u1": 0.25}, {"u1": "p0", "u2": "p0"}, key_of={"u1": "0", "u2": "1"})
    assert obs == [Observation("p0", 0.25, "0"), Observation("p0", 0.5, "1")]
    with pytest.raises(ValueError, match="no prompt id for video"):
        observations({"u3": 1.0}, {})


def test_format_lines():
    p = paired_comparison(_obs(np.arange(1, 11) / 100 + 0.5), _obs(np.full(10, 0.5)), n_resamples=1000)
    text = p.format()
    assert text.startswith("+0.055 [+0.") and text.endswith(", p = 0.00195, n = 10")
    assert bootstrap_ci(_obs([0.25])).format() == "0.2500, n = 1"
    assert "n/a" in bootstrap_ci([]).format()


def test_ci_overlap():
    new = {"ci_low": 0.90, "ci_high": 0.95}
    assert ci_overlap(new, {"ci_low": 0.95, "ci_high": 0.99}) is True  # touching closed intervals overlap
    assert ci_overlap(new, {"ci_low": 0.951, "ci_high": 0.99}) is False
    assert ci_overlap(new, {"ci_low": 0.80, "ci_high": 0.89}) is False
    assert ci_overlap(new, {"ci_low": 0.0, "ci_high": 1.0}) is True
    assert ci_overlap(new, {"ci_low": None, "ci_high": None}) is None
    assert ci_overlap(new, {}) is None
    r = bootstrap_ci(_obs(np.linspace(0.9, 0.95, 30)))
    assert r.overlaps(new) is True and r.overlaps(bootstrap_ci(_obs([1.0]))) is None
