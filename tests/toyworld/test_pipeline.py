"""The shipped toy model through the engine's generator interface, the oracle as a registry metric, findings."""

import json
import math

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics import get_metric
from deepforcing.metrics.aggregate import Aggregation, aggregate
from deepforcing.metrics.base import score_video
from deepforcing.metrics.rows import ClipRow
from deepforcing.model.config import PRESETS
from deepforcing.pipeline import create_generator
from deepforcing.toyworld.autoencoder import ToyAutoencoder
from deepforcing.toyworld.drift import DriftStudy, findings_tables, load_summary, prompt_id, summarise
from deepforcing.toyworld.kind import BUNDLE_FILES, SHIPPED_DIR, ToyCodec, ToyWorldModel
from deepforcing.toyworld.model import load_toy_model
from deepforcing.toyworld.world import parse_caption, sample_scene

CAPTION = "a red circle bouncing on a dark blue background"


@pytest.fixture(scope="module")
def generator():
    torch.set_num_threads(1)
    return create_generator("toyworld", "deep-forcing")


def test_shipped_bundle_is_small_and_documented():
    sizes = {name: (SHIPPED_DIR / name).stat().st_size for name in BUNDLE_FILES}
    assert sum(sizes.values()) <= 20 * 2**20, sizes
    card = json.loads((SHIPPED_DIR / "card.json").read_text())
    run = card["run"]
    assert run["teacher"]["steps"] == card["training"]["teacher"]["steps"]
    assert run["distill"]["steps"] == card["training"]["distill"]["steps"]
    assert run["teacher"]["final_val_loss"] < run["teacher"]["initial_val_loss"] / 3
    assert run["cpu_seconds"] <= 6 * 3600  # the budget of `toyworld train`
    assert run["command"].startswith("deepforcing-eval toyworld train")
    for name in ("MODEL_CARD.md", "loss.svg", "loss.csv", "distill.svg", "distill.csv"):
        assert (SHIPPED_DIR / name).is_file()


def test_toy_preset_timing_matches_the_wan_latent_timeline():
    toy, wan = PRESETS["toyworld"], PRESETS["wan2.1-t2v-1.3b"]
    assert toy.pixel_frames(210) == 210 and wan.pixel_frames(21) == 81
    # One toy frame lasts as long as one Wan latent frame: durations in seconds mean the same latent frames.
    assert toy.frames_per_latent / toy.fps == wan.frames_per_latent / wan.fps


def test_generator_keeps_the_policy_and_takes_the_cards_sampler(generator):
    assert isinstance(generator.kind, ToyWorldModel)
    cfg = generator.method.sampler_config
    card = json.loads((SHIPPED_DIR / "card.json").read_text())
    assert tuple(cfg.denoising_steps) == tuple(card["sampling"]["denoising_steps"])
    assert generator.method.policy == "participative-compression" and generator.method.checkpoint == "toyworld"


def test_shipped_weights_generate_deterministic_videos(generator, tmp_path):
    from deepforcing.metrics.video_io import decode_video

    a = generator.generate(CAPTION, num_latent_frames=6, seed=3, prompt_id="toy-test", output=tmp_path / "a.mp4")
    b = generator.generate(CAPTION, num_latent_frames=6, seed=3, prompt_id="toy-test")
    c = generator.generate(CAPTION, num_latent_frames=6, seed=4, prompt_id="toy-test")
    assert a.latents.shape == (1, 6, 16, 8, 8) and torch.isfinite(a.latents).all()
    assert torch.equal(a.latents, b.latents) and not torch.equal(a.latents, c.latents)
    assert a.num_pixel_frames == 6
    video = decode_video(tmp_path / "a.mp4")
    assert video.frames.shape == (6, 128, 128, 3) and video.fps == 4.0
    # The mp4 holds the autoencoder's decode, upscaled 4x, up to H.264 at CRF 12.
    exact = load_toy_model().autoencoder.decode(a.latents[0]).repeat_interleave(4, 1).repeat_interleave(4, 2)
    err = (video.frames.float() - exact.float()).abs().mean()
    assert err < 3.0, err


def test_prompts_outside_the_toy_grammar_fail_before_compute(generator):
    with pytest.raises(UserError, match="toy caption"):
        generator.generate("A stylish woman walks down a Tokyo street", num_latent_frames=3)


def test_codec_decodes_chunks_independently():
    torch.manual_seed(0)
    ae = ToyAutoencoder(16, 8).eval()
    z = ae.encode(sample_scene(7).render(5))[None]  # [1, 5, 16, 8, 8]
    codec = ToyCodec(ae).streaming_decoder()
    out = codec.decode(z)
    assert out.shape == (1, 5, 3, 128, 128)
    back = ((out[0] + 1) * 127.5).round().to(torch.uint8).movedim(1, -1)[:, ::4, ::4]
    assert torch.equal(back, ae.decode(z[0]))  # nearest-neighbour upscale of the autoencoder's frames
    torch.testing.assert_close(torch.cat([codec.decode(z[:, :2]), codec.decode(z[:, 2:])], 1), out, rtol=0, atol=0)


def test_oracle_from_the_registry_reads_the_prompt():
    scene = sample_scene(2 * 10**12)
    frames = scene.render(24)
    oracle = get_metric("toy_oracle")()
    rows = score_video("v", frames, 4.0, [oracle], prompt=scene.caption, duration_s=2.0)
    presence = [r.value for r in rows if r.metric.startswith("toyworld.presence@")]
    assert presence == [1.0, 1.0, 1.0]
    errors = score_video("v", frames, 4.0, [oracle], duration_s=2.0)  # no prompt: one clear row per id
    assert {type(r).__name__ for r in errors} == {"VideoErrorRow"} and "caption" in errors[0].reason


def test_undefined_clips_are_skipped_only_when_declared():
    rows = [
        ClipRow("m", "a", 0, 0, 8, 0, 4.0, 1.0),
        ClipRow("m", "a", 1, 8, 16, 8, 4.0, math.nan),
        ClipRow("m", "b", 0, 0, 8, 0, 4.0, math.nan),
    ]
    res = aggregate(rows, "m", Aggregation(skip_undefined=True))
    assert res.per_video == {"a": 1.0} and res.n_clips == 1 and res.value == 1.0
    with pytest.raises(ValueError, match="NaN"):
        aggregate(rows, "m", Aggregation())


CAPTIONS = (
    "a red circle bouncing on a gray background",
    "a red circle and a blue square bouncing on a gray background",
)


def _rows(study):
    out = []
    for p in range(study.prompts):
        for method, late_presence in (("ground-truth", 1.0), ("self-forcing", 0.5), ("deep-forcing", 0.5 + p / 10)):
            for seg in range(study.num_frames // study.segment_frames):
                presence = 1.0 if seg == 0 else late_presence
                out.append(
                    {
                        "method": method,
                        "prompt": p,
                        "seed": 0,
                        "segment": seg,
                        "seconds": 1.0,
                        "caption": CAPTIONS[p % 2],
                        **{
                            m: 0.0
                            for m in (
                                "colour_error",
                                "background_error",
                                "spurious",
                                "motion",
                                "frozen",
                                "frame_change",
                                "repetition",
                            )
                        },
                        "presence": presence,
                    }
                )
    return out


def test_findings_known_answers(tmp_path):
    study = DriftStudy(methods=("self-forcing", "deep-forcing"), prompts=3, seeds=1, num_frames=84)
    summary = summarise(_rows(study), study)
    pres = summary["table"]["deep-forcing"]["presence"]
    assert pres["early"] == [1.0, 0.0] and pres["late"][0] == pytest.approx(0.6)
    # late - self-forcing per prompt: 0.0, 0.1, 0.2 -> mean 0.1, half-width t(0.975, 2) * 0.1 / sqrt(3)
    m, h = pres["late_minus_self-forcing"]
    assert m == pytest.approx(0.1) and h == pytest.approx(4.303 * 0.1 / math.sqrt(3), rel=1e-6)
    # by shape count: prompts 0 and 2 have one shape (late 0.5, 0.7), prompt 1 two (late 0.6, a single prompt)
    one, two = (summary["by_shapes"]["deep-forcing"]["presence"][k] for k in ("1", "2"))
    assert one["late"][0] == pytest.approx(0.6) and one["late_prompts"] == 2 and one["early"] == [1.0, 0.0]
    assert two["late"][0] == pytest.approx(0.6) and two["late_prompts"] == 1 and math.isnan(two["late"][1])
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({k: v for k, v in summary.items() if k != "markdown"}))
    intro, tables, notes = findings_tables(load_summary(path))
    assert "3 held-out captions" in intro and [t for t, _ in tables][0] == "presence"
    cell = tables[0][1].cell("deep-forcing", "late_minus_self-forcing")
    assert cell.display == f"0.100 ± {h:.3f}"
    with pytest.raises(UserError, match="not a drift-study summary"):
        (tmp_path / "bad.json").write_text("{}")
        load_summary(tmp_path / "bad.json")


def test_study_prompt_ids_are_the_prompt_sets():
    from deepforcing.harness.prompts import load_set

    prompts = load_set("toyworld")
    assert prompts[0].prompt_id == prompt_id(0) and prompts[0].text == sample_scene(2 * 10**12).caption
    assert prompts[5].text == sample_scene(2 * 10**12 + 5).caption


def test_bundle_loader_rejects_a_foreign_card(tmp_path):
    import shutil

    for name in BUNDLE_FILES:
        shutil.copy(SHIPPED_DIR / name, tmp_path / name)
    card = json.loads((tmp_path / "card.json").read_text())
    card["wan"]["dim"] = 128
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(UserError, match="different model"):
        load_toy_model(tmp_path)


def _first_horizon(index: int) -> dict[str, float]:
    """Oracle of the first 21 frames of held-out caption ``index`` (prompt id toy-00<index+1>), self-forcing, seed 0."""
    from deepforcing.toyworld.generate import generate_toy_video
    from deepforcing.toyworld.oracle import score_video

    torch.set_num_threads(1)
    caption = sample_scene(2 * 10**12 + index).caption
    video = generate_toy_video(caption, "self-forcing", num_frames=21, seed=0, prompt_id=prompt_id(index))
    return score_video(video.frames, caption)[0]


@pytest.mark.parametrize(
    ("caption", "index"),
    [
        ("a magenta triangle bouncing on a gray background", 0),
        ("a red triangle bouncing on a gradient from dark blue to dark green", 1),
    ],
)
def test_shipped_weights_draw_the_captioned_shapes(caption, index):
    """The shipped student draws what the caption says inside its trained horizon (a random model scores presence
    0), on the two captions the smoke suite (`make demo`) shows. Measured when shipped: presence 1.0 / 1.0, colour
    error 0.054 / 0.052, motion 0.56 / 1.78 px/frame, background error 0.017 / 0.010. The second video draws a
    spurious second red triangle in its first frames, and the largest red component jumping between the two reads
    as fast motion. The bounds on colour and motion guard that level (the goal of docs/toyworld.md, colour <= 0.03,
    is not met yet)."""
    assert sample_scene(2 * 10**12 + index).caption == caption
    row = _first_horizon(index)
    assert row["presence"] >= 0.9
    assert row["colour_error"] <= 0.08
    assert 0.4 <= row["motion"] <= 2.0  # the world's shapes move at 0.6-1.4 px/frame
    assert row["background_error"] < 0.03


def test_shipped_weights_keep_one_of_two_shapes_at_least():
    """Two-shape captions are the shipped model's weak spot: it often draws one of the two shapes only (toy-003,
    "a red triangle and a white triangle ...": presence 0.881 when shipped, i.e. the white triangle throughout and
    the red one fading out in the last third of the clip). Guard that level; raise it when the model improves."""
    assert len(parse_caption(sample_scene(2 * 10**12 + 2).caption).shapes) == 2
    assert _first_horizon(2)["presence"] >= 0.75


def test_drift_summaries_of_a_series_with_undefined_clips():
    from deepforcing.metrics.drift import drift_summaries, series_from_rows

    # 20 two-second clips; clips 3-9 undefined (NaN, e.g. no shape to measure) are left out of the series.
    rows = [
        ClipRow("m", "v", i, 8 * i, 8 * i + 8, 8 * i, 4.0, math.nan if 3 <= i <= 9 else float(i)) for i in range(20)
    ]
    series = series_from_rows(rows, "m", "v")
    assert len(series.values) == 13
    out = drift_summaries(series)
    first_last = next(v for k, v in out.items() if k.startswith("drift.first_last"))
    # first 5 s: clips 0, 1 and half of 2 -> (0*2 + 1*2 + 2*1) / 5; last 5 s: 17.5..19 -> (17*1 + 18*2 + 19*2) / 5
    assert first_last == pytest.approx(abs(4 / 5 - 91 / 5))
    vde = [v for k, v in out.items() if k.startswith("drift.vde")]
    assert vde and all(math.isnan(v) for v in vde)  # a 4-s VDE chunk falls in the gap: undefined, not an error
