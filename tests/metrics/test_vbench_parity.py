"""Parity of our VBench dimensions with vbench 0.1.5's own functions, on tiny random weights.

Two layers:
* against ``parity/fixtures/vbench_parity.json`` (numbers produced by vbench's code, see
  ``parity/make_fixtures.py``) — runs everywhere;
* live against vbench itself when the isolated reference install is present (``parity/vbench_ref.py``).
"""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from deepforcing.metrics.aggregate import Aggregation, aggregate
from deepforcing.metrics.backbones.dino_vit import DinoViTConfig
from deepforcing.metrics.base import score_video
from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickering
from tests.metrics.parity import vbench_ref
from tests.metrics.parity.setup import TINY_DINO_ARCH, build_scenario

FIXTURE = json.loads((Path(__file__).parent / "parity" / "fixtures" / "vbench_parity.json").read_text())
TOL = 1e-4
needs_open_clip = pytest.mark.skipif(
    importlib.util.find_spec("open_clip") is None,
    reason="open_clip_torch not installed (pip install 'deepforcing-eval[metrics]')",
)
SHORT_VBENCH = Aggregation(clip_to_video="weighted_mean", video_to_suite="weighted_mean")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    pytest.importorskip("open_clip", reason="open_clip_torch not installed; needed to write the tiny CLIP archives")
    s = build_scenario(tmp_path_factory.mktemp("weights"))
    for key, digest in s.sha256.items():
        assert FIXTURE["sha256"][key] == digest, (
            f"seeded tiny {key} differs from the one the fixture was made with; regenerate the fixture with "
            "tests/metrics/parity/make_fixtures.py"
        )
    return s


def _ours_per_video(metric, clips):
    out = {}
    for name, frames in clips.items():
        scores = metric.score_clip(frames, 0)
        assert len(scores) == 1
        out[name] = scores[0].value
    return out


def _short_vbench_aggregate(metric, clips):
    """Dimension aggregate as short-video VBench computes it: each clip a whole video, frame-pair weighted."""
    rows = []
    for name, frames in clips.items():
        rows += score_video(name, frames, fps=1.0, metrics=[metric], duration_s=frames.shape[0])
    return aggregate(rows, metric.metric_ids[0], SHORT_VBENCH).value


def _assert_close(ours: dict, ref: dict, what: str):
    assert ours.keys() == ref.keys()
    diff = max(abs(ours[k] - ref[k]) for k in ref)
    assert diff <= TOL, f"{what}: max |ours - vbench| = {diff:.3g} > {TOL}\nours={ours}\nvbench={ref}"
    return diff


def _subject(s):
    from deepforcing.metrics.vbench.subject_consistency import SubjectConsistency, SubjectConsistencyConfig

    return SubjectConsistency(SubjectConsistencyConfig(str(s.dino), arch=DinoViTConfig(**TINY_DINO_ARCH)))


def _background(s):
    from deepforcing.metrics.vbench.background_consistency import (
        BackgroundConsistency,
        BackgroundConsistencyConfig,
    )

    return BackgroundConsistency(BackgroundConsistencyConfig(str(s.clip_b32)))


def _aesthetic(s):
    from deepforcing.metrics.vbench.aesthetic_quality import AestheticQuality, AestheticQualityConfig

    return AestheticQuality(
        AestheticQualityConfig(str(s.clip_l14), str(s.aesthetic_dir / "sa_0_4_vit_l_14_linear.pth"))
    )


BUILDERS = {
    "subject_consistency": _subject,
    "background_consistency": _background,
    "aesthetic_quality": _aesthetic,
}


def test_temporal_flickering_matches_fixture():
    from tests.metrics.parity.tiny import synthetic_clip

    still = synthetic_clip(12, frames=1)
    clips = {
        "landscape": synthetic_clip(10),
        "portrait": synthetic_clip(11, frames=9, height=48, width=36),
        "static": still.expand(6, -1, -1, -1).contiguous(),
    }
    ours = _ours_per_video(TemporalFlickering(), clips)
    _assert_close(ours, FIXTURE["dimensions"]["temporal_flickering"]["per_video"], "temporal_flickering")
    assert ours["static"] == 1.0


@needs_open_clip
@pytest.mark.parametrize("dim", sorted(BUILDERS))
def test_dimension_matches_vbench_fixture(scenario, dim):
    metric = BUILDERS[dim](scenario)
    expected = FIXTURE["dimensions"][dim]
    _assert_close(_ours_per_video(metric, scenario.clips), expected["per_video"], dim)
    if dim == "aesthetic_quality":  # plain mean over videos
        agg = aggregate(
            [r for n, f in scenario.clips.items() for r in score_video(n, f, 1.0, [metric], duration_s=len(f))],
            metric.metric_ids[0],
        ).value
    else:
        agg = _short_vbench_aggregate(metric, scenario.clips)
    assert abs(agg - expected["aggregate"]) <= TOL


def test_identical_frames_score_one(scenario):
    for dim in ("subject_consistency", "background_consistency"):
        value = _ours_per_video(BUILDERS[dim](scenario), {"s": scenario.clips["static"]})["s"]
        assert value == pytest.approx(1.0, abs=1e-6)


# ---- live comparison with vbench's own code (skips unless the isolated install is configured) ----


def test_live_temporal_flickering(scenario):
    ref = vbench_ref.ref_temporal_flickering(scenario.clips)
    _assert_close(_ours_per_video(TemporalFlickering(), scenario.clips), ref, "temporal_flickering (live)")


def test_live_subject_consistency(scenario):
    vbench_ref.require_vbench()
    dino = vbench_ref.load_reference_dino(scenario.dino, **TINY_DINO_ARCH)
    agg, per = vbench_ref.ref_subject_consistency(scenario.clips, dino)
    metric = _subject(scenario)
    _assert_close(_ours_per_video(metric, scenario.clips), per, "subject_consistency (live)")
    assert abs(_short_vbench_aggregate(metric, scenario.clips) - agg) <= TOL


@needs_open_clip
def test_live_background_consistency(scenario):
    agg, per = vbench_ref.ref_background_consistency(scenario.clips, scenario.clip_b32)
    metric = _background(scenario)
    _assert_close(_ours_per_video(metric, scenario.clips), per, "background_consistency (live)")
    assert abs(_short_vbench_aggregate(metric, scenario.clips) - agg) <= TOL


@needs_open_clip
def test_live_aesthetic_quality(scenario):
    agg, per = vbench_ref.ref_aesthetic_quality(scenario.clips, scenario.clip_l14, scenario.aesthetic_dir)
    _assert_close(_ours_per_video(_aesthetic(scenario), scenario.clips), per, "aesthetic_quality (live)")


def test_dino_rejects_mismatched_checkpoint(tmp_path):
    from deepforcing.errors import UserError
    from deepforcing.metrics.backbones.dino_vit import load_dino_vit
    from tests.metrics.parity.tiny import tiny_dino_state_dict

    p = tmp_path / "dino.pth"
    torch.save(tiny_dino_state_dict(dim=32), p)
    with pytest.raises(UserError, match="does not match"):
        load_dino_vit(p)  # default ViT-B/16 architecture
    with pytest.raises(UserError, match="not found"):
        load_dino_vit(tmp_path / "missing.pth")


def test_openai_clip_runs_sequence_first_with_open_clips_numbers(tmp_path):
    # the loader switches open_clip's transformers to OpenAI's (L, N, D) layout: same outputs, other kernels
    from open_clip.model import build_model_from_openai_state_dict

    from deepforcing.metrics.backbones.openai_clip import load_openai_clip
    from tests.metrics.parity.tiny import tiny_openai_clip_state_dict

    state = tiny_openai_clip_state_dict(seed=3)
    torch.save(state, tmp_path / "clip.pt")
    ours = load_openai_clip(tmp_path / "clip.pt")
    plain = build_model_from_openai_state_dict(dict(state), quick_gelu=True, cast_dtype=None).float().eval()
    assert not ours.visual.transformer.batch_first and not ours.transformer.resblocks[0].attn.batch_first
    images = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    tokens = torch.randint(1, 100, (2, 77), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.allclose(ours.encode_image(images), plain.encode_image(images), atol=1e-5, rtol=0)
        assert torch.allclose(ours.encode_text(tokens), plain.encode_text(tokens), atol=1e-5, rtol=0)
