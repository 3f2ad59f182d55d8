import math

import pytest
import torch

from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.base import score_video
from deepforcing.metrics.drift import (
    Series,
    chunk_means,
    drift_summaries,
    first_last_delta,
    segment_std,
    series_from_rows,
    slope_per_minute,
    vde,
    window_mean,
)
from deepforcing.metrics.image_stats import (
    ImageStatistics,
    channel_histograms,
    frame_statistics,
    histogram_w1,
)
from deepforcing.metrics.rows import VideoErrorRow


def test_frame_statistics_known_values():
    f = torch.zeros(2, 8, 10, 3, dtype=torch.uint8)
    f[0] = torch.tensor([255, 0, 0], dtype=torch.uint8)  # pure red
    f[1, :, :5] = 255  # half white, half black
    s = frame_statistics(f)
    assert s["mean_luma"][0] == pytest.approx(0.299)
    assert s["saturation"][0] == pytest.approx(1.0) and s["saturation"][1] == pytest.approx(0.0)
    assert s["clipped_fraction"].tolist() == pytest.approx([1.0, 0.5])
    assert s["mean_luma"][1] == pytest.approx(0.5)
    assert s["contrast"][1] == pytest.approx(0.5)  # std of a 50/50 {0, 1} image
    assert s["contrast"][0] == pytest.approx(0.0, abs=1e-7)
    assert s["sharpness"][0] == pytest.approx(0.0)
    assert s["sharpness"][1] > 0


def test_histogram_shift_distance():
    a = torch.randint(0, 200, (3, 16, 16, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    b = a + 10
    assert histogram_w1(channel_histograms(a), channel_histograms(b)) == pytest.approx(10 / 255)
    assert histogram_w1(channel_histograms(a), channel_histograms(a)) == 0.0


def test_constant_video_has_zero_drift():
    frames = torch.full((16 * 30, 12, 16, 3), 120, dtype=torch.uint8)  # 30 s at 16 fps
    m = ImageStatistics()
    rows = score_video("v", frames, 16.0, [m])
    for mid in m.metric_ids:
        s = series_from_rows(rows, mid, "v")
        assert len(s.values) == 15
        d = drift_summaries(s)
        for key, value in d.items():
            if "vde" in key and s.values[0] == 0:
                assert value in (0.0, math.inf)
            else:
                assert value == pytest.approx(0.0, abs=1e-12), (mid, key)


def test_brightening_video_drifts():
    # luma ramps linearly in time: frame k has grey level 40 + k / 4 -> slope per minute is known.
    n, fps = 16 * 20, 16.0
    levels = torch.tensor([40 + k // 4 for k in range(n)], dtype=torch.uint8)
    frames = levels[:, None, None, None].expand(n, 4, 4, 3).contiguous()
    m = ImageStatistics()
    rows = score_video("v", frames, fps, [m])
    luma_id = m.ids["mean_luma"]
    s = series_from_rows(rows, luma_id, "v")
    # exact per-clip means; grey level = 40 + floor(k/4) ~ 40 + 4 t - 3/8 in full scale ~ 4/255 per second
    assert slope_per_minute(s) == pytest.approx(4 * 60 / 255, rel=1e-6)
    # clip c has mean level 43.5 + 8c; windows are overlap-weighted over 2-s clips:
    # first 5 s = (2*43.5 + 2*51.5 + 1*59.5)/5 = 49.9, last 5 s = (1*99.5 + 2*107.5 + 2*115.5)/5 = 109.1
    assert first_last_delta(s) == pytest.approx((109.1 - 49.9) / 255, rel=1e-6)
    hist = series_from_rows(rows, m.ids["hist_w1_to_first"], "v")
    assert hist.values[0] == 0.0 and hist.values[-1] == pytest.approx(4 * 18 / 255, rel=1e-6)
    assert aggregate(rows, luma_id).n_clips == 10


def test_linear_ramp_slope_and_windows():
    s = Series.uniform([1.0 + 0.5 * i for i in range(30)], 2.0)  # +0.5 per 2 s = 15 per minute
    assert slope_per_minute(s) == pytest.approx(15.0)
    # first 5 s: clips [0,2),[2,4) full + half of [4,6): (1 + 1.5 + 0.5 * 2) / 2.5 ... overlap-weighted
    assert window_mean(s, 0, 5) == pytest.approx((2 * 1.0 + 2 * 1.5 + 1 * 2.0) / 5)
    assert window_mean(s, 55, 60) == pytest.approx((1 * 14.5 + 2 * 15.0 + 2 * 15.5) / 5)
    assert first_last_delta(s) == pytest.approx(window_mean(s, 55, 60) - window_mean(s, 0, 5))
    assert first_last_delta(s, absolute=False) < 0
    with pytest.raises(ValueError):
        first_last_delta(Series.uniform([1.0] * 4, 2.0))


def test_segment_std_hand_computed():
    assert segment_std([1.0, 3.0]) == 1.0
    assert segment_std([1.0, 3.0], ddof=1) == pytest.approx(math.sqrt(2))
    assert segment_std([0.7] * 30) == 0.0


def test_vde_hand_computed():
    m = [2.0, 3.0, 1.0, 2.0]  # N = 4: weights linear 3, 2, 1; log: log3, log2, log1 = 0
    assert vde(m, "linear") == pytest.approx(3 * 0.5 + 2 * 0.5 + 1 * 0.0)
    assert vde(m, "log") == pytest.approx(math.log(3) * 0.5 + math.log(2) * 0.5)
    assert vde([5.0]) == 0.0
    assert vde([0.0, 1.0]) == math.inf
    with pytest.raises(ValueError):
        vde(m, "quadratic")


def test_chunk_means_partition():
    s = Series.uniform(list(range(10)), 2.0)
    assert chunk_means(s, 5) == pytest.approx([0.5, 2.5, 4.5, 6.5, 8.5])


def test_short_video_becomes_error_row():
    rows = score_video("tiny", torch.zeros(10, 4, 4, 3, dtype=torch.uint8), 16.0, [ImageStatistics()])
    assert rows and all(isinstance(r, VideoErrorRow) for r in rows)
    assert "shorter than one" in rows[0].reason
