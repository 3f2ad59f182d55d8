"""The up-front estimate (``deepforcing.budget``) for the methods of issue 15: bounded caches stay flat, the
estimate is what the engine allocates, and a full cache is refused past what fits."""

import pytest
import torch

from deepforcing import budget
from deepforcing.budget import Limits
from deepforcing.errors import UserError

NEW_METHODS = ["rolling-sink", "infinity-rope", "infinity-rope-sf", "memrope", "lol-paper", "longlive"]


@pytest.mark.parametrize("name", NEW_METHODS)
def test_bounded_methods_need_the_same_kv_memory_at_one_minute_and_one_hour(name):
    minute, hour = (budget.estimate("wan2.1-t2v-1.3b", name, f, "cuda") for f in (240, 14400))
    assert minute.kv_bounded and hour.kv_bytes == minute.kv_bytes
    assert hour.latents_bytes == pytest.approx(60 * minute.latents_bytes, rel=1e-9)  # the video's own latents


@pytest.mark.parametrize("name", ["rolling-sink", "infinity-rope", "memrope", "lol-paper"])
def test_the_estimate_is_what_the_engine_allocates(name):
    from deepforcing.pipeline import VideoGenerator

    gen = VideoGenerator("tiny", name, device="cpu")
    context = torch.zeros(1, 4, gen.preset.wan.text_dim)
    result = gen.generate("x", num_latent_frames=24, context=context)
    assert result.kv_cache_bytes == budget.estimate("tiny", name, 24, "cpu").kv_bytes  # Rolling Sink: + its bank


def test_a_full_cache_for_one_hour_is_refused_with_the_estimate():
    est = budget.estimate("wan2.1-t2v-1.3b", "self-forcing-full", 14400, "cuda")
    assert not est.kv_bounded and est.kv_bytes > 5000 * 2**30
    with pytest.raises(UserError, match="grows with"):
        budget.check([est], Limits(memory_bytes=80 * 2**30))
    bounded = budget.estimate("wan2.1-t2v-1.3b", "rolling-sink", 14400, "cuda")
    assert bounded.kv_bytes < 16 * 2**30
