import pytest
import torch

from deepforcing.metrics.clips import split_clips
from deepforcing.toyworld.oracle import SEGMENT_METRICS, ToyOracle, analyse, connected_components, score_video
from deepforcing.toyworld.world import CaptionSpec, Scene, ShapeSpec, ShapeState, WorldConfig, sample_scene

SPEC = CaptionSpec((ShapeSpec("circle", "red"), ShapeSpec("triangle", "yellow")), "dark blue")
# Two shapes whose bounding boxes never overlap: one moves in the top half, one in the bottom half.
SCENE = Scene(SPEC, (ShapeState(5, 6, 6, 0.9, 0.0), ShapeState(5, 20, 26, -0.7, 0.0)))


@pytest.fixture(scope="module")
def clip():
    return SCENE.render(84)


def test_ground_truth_has_full_presence_and_no_background_error(clip):
    rows = score_video(clip, SPEC.caption)
    assert len(rows) == 4
    for r in rows:
        assert r["presence"] == 1.0
        assert r["background_error"] < 2e-3
        assert r["colour_error"] < 0.03
        assert r["spurious"] == 0.0
        assert r["frozen"] == 0.0
        assert 0.6 < r["motion"] < 1.0
        assert r["repetition"] == 0.0


def test_frozen_copy_has_zero_motion_and_full_repetition(clip):
    frozen = clip[:1].expand(84, -1, -1, -1).contiguous()
    rows = score_video(frozen, SPEC.caption)
    for r in rows:
        assert r["presence"] == 1.0
        assert r["motion"] == 0.0
        assert r["frozen"] == 1.0
        assert r["frame_change"] == 0.0
    assert rows[0]["repetition"] == 0.0  # nothing is 21 frames older yet
    assert all(r["repetition"] == 1.0 for r in rows[2:])


def test_looping_clip_is_repetition(clip):
    looped = torch.cat([clip[:21]] * 4)
    rows = score_video(looped, SPEC.caption)
    assert rows[0]["repetition"] == 0.0
    # frame 21 has no velocity match (the loop jumps back) but every later frame of a loop recurs.
    assert all(r["repetition"] >= 0.9 for r in rows[1:])


def test_missing_object_and_wrong_background(clip):
    other = CaptionSpec((ShapeSpec("circle", "red"), ShapeSpec("square", "green")), "dark blue")
    r = score_video(clip, other)[0]
    assert r["presence"] == 0.5  # the green square is not there
    assert r["spurious"] == 1.0  # the yellow triangle is not in this caption
    gray = CaptionSpec(SPEC.shapes, "gray")
    r = score_video(clip, gray)[0]
    assert r["presence"] == 1.0
    # Dark blue against gray differs by 0.21 per pixel; the walls (23 % of the frame) are right.
    assert r["background_error"] > 0.12


def test_colour_shift_and_noise_raise_errors(clip):
    shifted = (clip.int() + torch.tensor([-40, 30, 30])).clamp(0, 255).to(torch.uint8)
    base, moved = score_video(clip, SPEC)[0], score_video(shifted, SPEC)[0]
    assert moved["colour_error"] > base["colour_error"] + 0.05
    assert moved["background_error"] > 0.1
    noise = torch.randint(0, 256, clip.shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    r = score_video(noise, SPEC)[0]
    assert r["presence"] < 0.2


def test_upscaled_frames_score_like_native(clip):
    big = clip.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
    assert score_video(big, SPEC) == score_video(clip, SPEC)


def test_random_ground_truth_is_nearly_perfect():
    for seed in range(6):
        scene = sample_scene(seed)
        rows = score_video(scene.render(63), scene.caption)
        assert min(r["presence"] for r in rows) > 0.6  # shapes may occlude each other
        assert max(r["background_error"] for r in rows) < 3e-3
        assert max(r["spurious"] for r in rows) == 0.0
        assert max(r["frozen"] for r in rows) == 0.0


def test_walls_are_background_to_the_oracle():
    world = WorldConfig(border=2)
    for seed in range(6):
        scene = sample_scene(seed, world)
        rows = score_video(scene.render(42), scene.caption, world=world)
        assert min(r["presence"] for r in rows) > 0.6
        assert max(r["background_error"] for r in rows) < 3e-3
        assert max(r["spurious"] for r in rows) == 0.0


def test_connected_components():
    m = torch.zeros(1, 5, 5, dtype=torch.bool)
    m[0, 0, 0:2] = True
    m[0, 3:5, 3] = True
    m[0, 1, 1] = True
    labels = connected_components(m)
    assert labels[0, 0, 0] == labels[0, 1, 1] == 0
    assert labels[0, 3, 3] == labels[0, 4, 3] != 0
    assert (labels[~m] == -1).all()


def test_oracle_as_clip_metric(clip):
    oracle = ToyOracle(SPEC.caption)
    spans = split_clips(84, 16.0, 2.0)
    scores = oracle.score_video(clip, spans)
    assert len(scores) == len(spans) * len(SEGMENT_METRICS)
    assert all(s.metric.startswith("toyworld.") for s in scores)
    presence = [s.value for s in scores if s.metric.startswith("toyworld.presence@")]
    assert presence == [1.0] * len(spans)


def test_analysis_shapes(clip):
    a = analyse(clip[:5], SPEC)
    assert a.present.shape == (5, 2) and a.centroid.shape == (5, 2, 2)
    assert torch.isnan(a.frame_change[0]) and not torch.isnan(a.frame_change[1:]).any()
