"""Memory estimates before allocation: bounded caches stay flat, a full cache is refused past what fits."""

import pytest

from deepforcing import methods
from deepforcing.errors import UserError
from deepforcing.estimate import MemoryEstimate, check_fits, estimate
from deepforcing.model.config import PRESETS, TINY

TINY_LATENT = (16, 8, 8)


@pytest.mark.parametrize("name", ["self-forcing", "deep-forcing", "rolling-forcing", "rolling-sink", "infinity-rope"])
def test_bounded_methods_need_the_same_kv_memory_at_one_minute_and_one_hour(name):
    minute, hour = (estimate(methods.get(name), TINY, TINY_LATENT, f, 4) for f in (240, 14400))
    assert minute.bounded and hour.kv_cache_bytes == minute.kv_cache_bytes
    assert hour.latent_bytes == 60 * minute.latent_bytes  # the video's own latents grow with it


def test_the_estimate_is_what_the_engine_allocates(tiny_model, tiny_text):
    from deepforcing.noise import NoiseStream
    from deepforcing.samplers.chunkwise import ChunkwiseSampler

    for name in ("self-forcing", "rolling-sink", "self-forcing-full"):
        method = methods.get(name)
        stream = NoiseStream("est", 0)
        out = ChunkwiseSampler(method.sampler_config).sample(
            tiny_model, tiny_text, methods.build_policy(method), stream.initial((1, 24, 16, 8, 8)), stream
        )
        assert out.kv_cache_bytes == estimate(method, TINY, TINY_LATENT, 24, 4).kv_cache_bytes, name


def test_a_full_cache_past_what_fits_is_refused_with_the_estimate():
    wan = PRESETS["wan2.1-t2v-1.3b"]
    est = estimate(methods.get("self-forcing-full"), wan.wan, (16, wan.latent_height, wan.latent_width), 14400, 2)
    assert not est.bounded and est.cache_frames == 14400
    with pytest.raises(UserError, match=r"keeps every frame \(14400 latent frames: 5794.3 GiB\).*80.0 GiB free"):
        check_fits(est, "self-forcing-full", 14400, 80 * 2**30)
    check_fits(MemoryEstimate(1, 21, 1, True), "self-forcing", 14400, 80 * 2**30)  # fits: no error


def test_generate_refuses_before_allocating(monkeypatch, capsys):
    from deepforcing import estimate as est_module
    from deepforcing.cli import main

    monkeypatch.setattr(est_module, "available_bytes", lambda device: 2**20)
    code = main(["-q", "generate", "--method", "self-forcing-full", "--prompt", "x", "--num-latent-frames", "3000"])
    assert code == 2 and "does not fit" in capsys.readouterr().err
    monkeypatch.setenv(est_module.SKIP_ENV, "1")
    assert main(["-q", "generate", "--method", "self-forcing", "--prompt", "x", "--num-latent-frames", "6"]) == 0
