"""A prompt longer than the text encoder reads is reported (warning, result, unit.json, report), never cut silently."""

import json
import logging

import pytest
import torch

from deepforcing.model import tiny_assets
from deepforcing.model.text_encoder import PromptTokens, UMT5TextEncoder

SHORT = "a red circle bouncing on a dark green background"
LONG = " ".join(["a stylish woman walks down a Tokyo street filled with warm glowing neon"] * 30)
LONGER = LONG + " " + " ".join(["and animated city signage"] * 300)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_text")
    tiny_assets.save_tiny_text_encoder(root, seed=0)
    return UMT5TextEncoder.from_diffusers(root, text_len=16)


def test_token_count_against_the_limit(encoder):
    short, long = encoder.count_tokens(SHORT), encoder.count_tokens(LONG)
    assert short.limit == long.limit == 16
    assert not short.truncated and short.count == int(encoder.tokenize([SHORT])[1].sum())  # what the mask keeps
    assert long.truncated and long.count > 16 * 10
    assert long.to_dict() == {"count": long.count, "limit": 16, "truncated": True}


def test_truncation_warns_once_per_prompt_with_the_counts(encoder, caplog):
    with caplog.at_level(logging.WARNING, logger="deepforcing.model.text_encoder"):
        a = encoder.encode([LONG])
        b = encoder.encode([LONG])
        c = encoder.encode([LONGER])
        encoder.encode([SHORT])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # LONG once, LONGER once, SHORT never
    n = encoder.count_tokens(LONG).count
    assert f"is {n} tokens long" in warnings[0] and "reads only the first 16" in warnings[0]
    # why it matters: what was cut off has no effect at all
    assert torch.equal(a, b) and torch.equal(a, c)


def test_generation_result_records_the_truncation(tmp_path, capsys):
    from deepforcing.cli import main
    from deepforcing.pipeline import VideoGenerator

    gen = VideoGenerator("tiny", "self-forcing", device="cpu")
    long = gen.generate(LONG, num_latent_frames=3)
    short = gen.generate(SHORT, num_latent_frames=3)
    given = gen.generate(LONG, num_latent_frames=3, context=torch.zeros(1, 4, gen.preset.wan.text_dim))
    assert long.prompt_truncated is True and long.prompt_tokens.count > 16
    assert short.prompt_truncated is False and short.prompt_tokens == PromptTokens(short.prompt_tokens.count, 16)
    assert given.prompt_truncated is None and given.prompt_tokens is None
    code = main(["-q", "generate", "--prompt", LONG, "--num-latent-frames", "3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["prompt_truncated"] is True and out["prompt_token_limit"] == 16
    assert out["prompt_tokens"] == long.prompt_tokens.count


def test_toy_caption_encoder_reports_phrases():
    from deepforcing.pipeline import VideoGenerator

    gen = VideoGenerator("toyworld", "self-forcing")
    # One token per phrase: two shapes, the background, the gradient's end and the pan, of 7 slots.
    caption = "a red circle and a blue square bouncing on a gradient from black to gray, the camera pans left"
    tokens = gen.text_encoder.count_tokens(caption)
    assert tokens == PromptTokens(5, 7) and not tokens.truncated
