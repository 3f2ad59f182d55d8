"""overall_consistency (ViCLIP): parity with vbench 0.1.5 on a tiny seeded ViCLIP, plus known answers.

Two parity layers, as in ``test_vbench_parity.py``:
* against ``parity/fixtures/vbench_parity_overall.json`` (made by ``parity/make_overall_fixture.py`` running
  vbench's own ``overall_consistency``) — runs everywhere;
* live against vbench when the isolated reference install is configured (``parity/overall_ref.py``).
"""

import json
import math
from pathlib import Path

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.backbones.clip_tokenizer import load_clip_bpe_tokenizer, tokenize
from deepforcing.metrics.backbones.viclip import ViCLIPConfig, load_viclip
from deepforcing.metrics.base import score_video
from deepforcing.metrics.rows import ClipRow, VideoErrorRow
from deepforcing.metrics.vbench.frame_sampling import middle_frame_indices
from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickering
from tests.metrics.parity import overall_ref
from tests.metrics.parity.overall_setup import TINY_VICLIP, TOKENIZER_ONLY, build_overall_scenario
from tests.metrics.parity.tiny import synthetic_clip

pytest.importorskip("open_clip", reason="open_clip_torch not installed (the CLIP BPE tokenizer comes from it)")

FIXTURE = json.loads((Path(__file__).parent / "parity" / "fixtures" / "vbench_parity_overall.json").read_text())
TOL = 1e-4


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    s = build_overall_scenario(tmp_path_factory.mktemp("viclip"))
    for key, digest in s.sha256.items():
        assert FIXTURE["sha256"][key] == digest, (
            f"seeded tiny {key} differs from the one the fixture was made with; regenerate it with "
            "tests/metrics/parity/make_overall_fixture.py"
        )
    return s


@pytest.fixture(scope="module")
def metric(scenario):
    from deepforcing.metrics.vbench.overall_consistency import OverallConsistency, OverallConsistencyConfig

    torch.set_num_threads(1)
    return OverallConsistency(OverallConsistencyConfig(str(scenario.checkpoint), arch=TINY_VICLIP))


def _ours(metric, scenario) -> tuple[float, dict[str, float]]:
    """Each clip scored as one whole-video clip through the public row path; (suite mean, per video)."""
    rows = []
    for name, frames in scenario.clips.items():
        rows += score_video(name, frames, 1.0, [metric], prompt=scenario.prompts[name], duration_s=frames.shape[0])
    result = aggregate(rows, metric.metric_ids[0])
    return result.value, result.per_video


def _max_diff(ours: dict[str, float], ref: dict[str, float]) -> float:
    assert ours.keys() == ref.keys()
    return max(abs(ours[k] - ref[k]) for k in ref)


def test_matches_vbench_fixture(metric, scenario):
    expected = FIXTURE["overall_consistency"]
    assert expected["prompts"] == scenario.prompts
    agg, per = _ours(metric, scenario)
    diff = _max_diff(per, expected["per_video"])
    assert diff <= TOL, f"max |ours - vbench| = {diff:.3g}\nours={per}\nvbench={expected['per_video']}"
    assert abs(agg - expected["aggregate"]) <= TOL
    assert len({round(v, 3) for v in per.values()}) == len(per), "clips should not all score alike"


def test_tokens_match_vbench_fixture():
    tok = load_clip_bpe_tokenizer(None, 32)
    texts = [e["text"] for e in FIXTURE["viclip_tokens"]]
    assert texts[-len(TOKENIZER_ONLY) :] == TOKENIZER_ONLY
    ours = tokenize(tok, texts, 32).tolist()
    for text, got, entry in zip(texts, ours, FIXTURE["viclip_tokens"], strict=True):
        assert got == entry["ids"], f"tokens of {text!r} differ from vbench's"
    long_ids = ours[texts.index("word " * 40)]
    assert long_ids[0] == 49406 and long_ids[-1] == 49407 and 0 not in long_ids  # truncated to 32, ends with EOT


@pytest.mark.parametrize(
    ("n", "vlen", "expected"),
    [
        (8, 160, [9, 29, 49, 69, 89, 109, 129, 149]),
        (8, 8, [0, 1, 2, 3, 4, 5, 6, 7]),
        (8, 5, [0, 1, 2, 3, 4, 4, 4, 4]),
        (8, 1, [0] * 8),
        (8, 12, [0, 1, 3, 4, 6, 7, 9, 10]),  # bounds 0,1,3,4,6,7,9,10,12
        (3, 10, [1, 4, 7]),  # bounds 0,3,6,10
    ],
)
def test_middle_frame_indices(n, vlen, expected):
    assert middle_frame_indices(n, vlen) == expected


def test_video_shorter_than_a_clip_and_prompt_required(metric, scenario):
    frames = scenario.clips["landscape"]
    rows = score_video("v", frames, 1.0, [metric], duration_s=frames.shape[0])
    assert len(rows) == 1 and isinstance(rows[0], VideoErrorRow) and "prompt" in rows[0].reason


def test_own_clip_seconds_and_identical_clips(scenario, metric):
    """A 10-s clip length set in the config gives 10-s rows next to a 2-s metric; equal clips score equally."""
    from deepforcing.metrics.vbench.overall_consistency import OverallConsistency, OverallConsistencyConfig

    ten = OverallConsistency(OverallConsistencyConfig(str(scenario.checkpoint), arch=TINY_VICLIP, clip_seconds=10))
    assert "clip=10s" in ten.id and ten.id != metric.id
    block = synthetic_clip(40, frames=10, height=40, width=56)
    video = torch.cat([block, block, block])  # 30 frames at 1 fps: three identical 10-s clips
    rows = score_video("v", video, 1.0, [ten, TemporalFlickering()], prompt="a red square", duration_s=2.0)
    mine = [r for r in rows if isinstance(r, ClipRow) and r.metric == ten.id]
    flicker = [r for r in rows if isinstance(r, ClipRow) and r.metric != ten.id]
    assert [(r.start_frame, r.stop_frame) for r in mine] == [(0, 10), (10, 20), (20, 30)]
    assert len(flicker) == 15
    assert mine[0].value == mine[1].value == mine[2].value
    assert mine[0].value == pytest.approx(ten.score_frames(block, "a red square"), abs=1e-6)


def test_strict_load_names_the_problem(tmp_path, scenario):
    with pytest.raises(UserError, match="shape mismatch"):
        load_viclip(scenario.checkpoint, ViCLIPConfig(**{**TINY_VICLIP.__dict__, "embed_dim": 40}))
    with pytest.raises(UserError, match="vision_encoder.temporal_positional_embedding"):
        state = torch.load(scenario.checkpoint, weights_only=True)["model"]
        del state["vision_encoder.temporal_positional_embedding"]
        torch.save({"model": state}, tmp_path / "bad.pth")
        load_viclip(tmp_path / "bad.pth", TINY_VICLIP)
    with pytest.raises(UserError, match="not found"):
        load_viclip(tmp_path / "absent.pth", TINY_VICLIP)


def test_vocab_file_is_checked(tmp_path):
    bad = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    bad.write_bytes(b"not the vocabulary")
    with pytest.raises(UserError, match="bpe_simple_vocab_16e6"):
        load_clip_bpe_tokenizer(bad)


def test_full_size_config_is_the_released_viclip():
    c = ViCLIPConfig()
    grid = c.image_size // c.patch_size
    assert (c.vision_width, c.vision_layers, c.embed_dim, c.text_width, c.context_length) == (1024, 24, 768, 768, 32)
    assert grid * grid + 1 == 257
    # Parameter count of the released ViCLIP ViT-L (427.6 M, metrics.md §2.7), without instantiating it.
    vision = 3 * c.vision_width * c.patch_size**2 + (grid * grid + 1 + 1 + c.num_frames) * c.vision_width
    vision += c.vision_layers * (12 * c.vision_width**2 + 13 * c.vision_width) + 4 * c.vision_width
    vision += c.vision_width * c.embed_dim
    text = (c.vocab_size + c.context_length) * c.text_width + c.text_layers * (12 * c.text_width**2 + 13 * c.text_width)
    text += 2 * c.text_width + c.text_width * c.embed_dim
    assert math.isclose((vision + text + 1) / 1e6, 427.6, abs_tol=0.05)


# ---- live comparison with vbench's own code (skips unless the isolated install is configured) ----


def test_live_overall_consistency(metric, scenario):
    agg, per = overall_ref.ref_overall_consistency(scenario.clips, scenario.prompts, scenario.checkpoint, TINY_VICLIP)
    ours_agg, ours = _ours(metric, scenario)
    assert _max_diff(ours, per) <= TOL
    assert abs(ours_agg - agg) <= TOL


def test_live_tokens():
    texts = [e["text"] for e in FIXTURE["viclip_tokens"]]
    ref = overall_ref.ref_viclip_tokens(texts, 32)
    assert tokenize(load_clip_bpe_tokenizer(None, 32), texts, 32).tolist() == ref


def test_live_frame_indices():
    from tests.metrics.parity import vbench_ref

    vbench_ref.require_vbench()
    import importlib

    utils = importlib.import_module("vbench.utils")
    for vlen in (1, 5, 7, 8, 9, 12, 31, 32, 33, 160, 161, 481):
        ref = [int(i) for i in utils.get_frame_indices(8, vlen, sample="middle")]
        assert middle_frame_indices(8, vlen) == ref, vlen


def test_metrics_yaml_has_the_default_id():
    import yaml

    from deepforcing.metrics.vbench.overall_consistency import OverallConsistencyConfig, overall_consistency_id

    meta = yaml.safe_load((Path(__file__).parents[2] / "eval" / "metrics.yaml").read_text())
    entry = next(m for m in meta["metrics"] if m["name"] == "overall_consistency")
    assert entry["id"] == overall_consistency_id(OverallConsistencyConfig("ViClip-InternVid-10M-FLT.pth"))
