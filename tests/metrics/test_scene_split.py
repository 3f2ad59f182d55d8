"""Scene-cut splitting (VBench-Long ``--use_semantic_splitting``): a hard cut splits the clips at the cut."""

import importlib.util
import sys

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.base import score_video
from deepforcing.metrics.clips import ClipSpan, detect_scene_cuts, split_scene_clips
from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickering

HAS_SCENEDETECT = importlib.util.find_spec("scenedetect") is not None


def two_colour_video(cut: int = 23, total: int = 40) -> torch.Tensor:
    """Solid red frames, then solid blue ones from frame ``cut``: ``(total, 48, 64, 3)`` uint8."""
    frames = torch.zeros(total, 48, 64, 3, dtype=torch.uint8)
    frames[:cut, ..., 0] = 200
    frames[cut:, ..., 2] = 180
    return frames


def test_split_scene_clips_splits_each_scene():
    # 8 fps, 2-s clips of 16 frames; scenes 0..22 and 23..39, each padded from its own earlier frames
    assert split_scene_clips(40, [23], 8.0) == [
        ClipSpan(0, 0, 16, 0),
        ClipSpan(1, 7, 23, 16),
        ClipSpan(2, 23, 39, 23),
        ClipSpan(3, 24, 40, 39),
    ]
    # a scene shorter than one clip is kept whole (VBench-Long), clip indices run on
    assert split_scene_clips(30, [20], 8.0) == [ClipSpan(0, 0, 16, 0), ClipSpan(1, 4, 20, 16), ClipSpan(2, 20, 30, 20)]
    with pytest.raises(UserError, match="single frame"):
        split_scene_clips(30, [29], 8.0)
    with pytest.raises(UserError, match="increasing"):
        split_scene_clips(30, [20, 10], 8.0)


@pytest.mark.skipif(not HAS_SCENEDETECT, reason="PySceneDetect not installed (pip install 'deepforcing-eval[scenes]')")
def test_hard_cut_is_detected_and_clips_split_there():
    frames = two_colour_video()
    assert detect_scene_cuts(frames, 8.0) == [23]
    assert detect_scene_cuts(torch.full((40, 48, 64, 3), 90, dtype=torch.uint8), 8.0) == []  # one scene: no cut
    rows = score_video("v", frames, 8.0, [TemporalFlickering()], scene_threshold=35.0)
    assert [(r.start_frame, r.stop_frame) for r in rows] == [(0, 16), (7, 23), (23, 39), (24, 40)]
    assert all(r.value == 1.0 for r in rows)  # no clip straddles the cut
    plain = score_video("v", frames, 8.0, [TemporalFlickering()])
    assert [(r.start_frame, r.stop_frame) for r in plain] == [(0, 16), (16, 32), (24, 40)]
    assert plain[1].value < 1.0  # the clip over the cut flickers


def test_missing_scenedetect_names_the_extra(monkeypatch):
    for name in ("scenedetect", "scenedetect.detectors"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: the import raises ImportError
    with pytest.raises(UserError) as err:
        detect_scene_cuts(two_colour_video(), 8.0)
    assert "deepforcing-eval[scenes]" in err.value.hint
    rows = score_video("v", two_colour_video(), 8.0, [TemporalFlickering()], scene_threshold=35.0)
    assert len(rows) == 1 and "PySceneDetect" in rows[0].reason
