"""The compiled DiT path (``--compile``): every parity fixture within 1e-4, and a clean fallback.

Compiling takes minutes on a small CPU the first time (inductor caches its kernels on disk afterwards), so the
parity replay is marked slow; it is skipped, with the reason, where compilation is unavailable.
"""

import logging

import pytest
import test_parity_deep_forcing as deep_forcing
import test_parity_infinity_rope as infinity_rope
import test_parity_memrope as memrope
import test_parity_rolling_forcing as rolling_forcing
import test_parity_rolling_sink as rolling_sink
import test_parity_self_forcing as self_forcing
import torch
from parity_utils import reference_model

from deepforcing.model import compiled
from deepforcing.noise import NoiseStream
from deepforcing.policies.fifo import FifoPolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler


@pytest.fixture(scope="module")
def compiled_model():
    model = reference_model()
    reason = compiled.unavailable_reason(model.device)
    if reason is not None:
        pytest.skip(f"torch.compile unavailable here: {reason}")
    assert compiled.compile_model(model)
    yield model
    compiled.uncompile_model(model)


@pytest.mark.slow
def test_compiled_path_passes_every_parity_fixture(compiled_model):
    self_forcing.test_full_cache_inside_trained_horizon(compiled_model)
    self_forcing.test_rolling_window_48_frames(compiled_model)
    self_forcing.test_rolling_window_with_static_sink(compiled_model)
    deep_forcing.test_deep_sink_only_48_frames(compiled_model)
    for case, sink in [("ds_pc72", 10), ("ds_pc72_sink4", 4)]:
        deep_forcing.test_deep_sink_and_participative_compression_72_frames(compiled_model, case, sink)
    rolling_forcing.test_rolling_forcing_45_frames(compiled_model)
    assert all(block.compiled is not None for block in compiled_model.blocks)
    assert all(region.state.enabled for block in compiled_model.blocks for region in block.compiled)


@pytest.mark.slow
def test_compiled_path_passes_the_newer_methods_fixtures(compiled_model):
    """Rolling Sink (refilled slots), Infinity-RoPE (slot positions, flush, cut) and MemRoPE (overwritten memories)."""
    rolling_sink.test_rolling_sink_72_frames(compiled_model)
    for case, switch in [("ir48", None), ("ir48_flush", "flush"), ("ir48_cut", "cut")]:
        infinity_rope.test_infinity_rope_48_frames(compiled_model, case, switch)
    memrope.test_memrope_72_frames(compiled_model)
    assert all(region.state.enabled for block in compiled_model.blocks for region in block.compiled)


def _sample(model, text):
    stream = NoiseStream("compiled-test", 0)
    return ChunkwiseSampler().sample(model, text, FifoPolicy(), stream.initial((1, 9, 16, 8, 8)), stream).latents


def test_unavailable_compiler_falls_back_with_one_line(tiny_model, tiny_text, monkeypatch, caplog):
    eager = _sample(tiny_model, tiny_text)

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Failed to find C++ compiler. Please specify via CXX environment variable.")

    monkeypatch.setattr(torch, "compile", no_compiler)
    with caplog.at_level(logging.INFO, logger="deepforcing.model.compiled"):
        assert not compiled.compile_model(tiny_model)
    assert [r.getMessage() for r in caplog.records] == [
        "--compile: compiled DiT unavailable on cpu (RuntimeError: Failed to find C++ compiler. Please specify via "
        "CXX environment variable.); running eager"
    ]
    assert all(block.compiled is None for block in tiny_model.blocks)
    assert torch.equal(_sample(tiny_model, tiny_text), eager)


def test_a_compilation_failing_later_falls_back_to_eager(tiny_model, tiny_text, caplog):
    eager = _sample(tiny_model, tiny_text)

    def broken(*args):
        raise torch._inductor.exc.CppCompileError(["g++", "kernel.cpp"], "fatal error: Python.h: No such file")

    state = compiled._State()
    for block in tiny_model.blocks:  # the regions as compile_model sets them, with a backend that fails
        block.compiled = (
            compiled._Region(block.pre_attention, broken, state),
            compiled._Region(block.post_attention, broken, state),
        )
    with caplog.at_level(logging.WARNING, logger="deepforcing.model.compiled"):
        out = _sample(tiny_model, tiny_text)
    assert len(caplog.records) == 1 and "running eager from here on" in caplog.records[0].getMessage()
    assert not state.enabled
    torch.testing.assert_close(out, eager, rtol=0, atol=1e-5)  # the first call attended through the slot mask


def test_a_suite_run_with_compile_records_whether_the_compiled_path_ran(tmp_path, monkeypatch):
    """``run --compile`` reaches every generator; where compilation is unavailable the units say they ran eager."""
    import json

    from deepforcing.cli import main

    asked = []
    monkeypatch.setattr(compiled, "unavailable_reason", lambda device: asked.append(device) or "no C++ compiler")
    args = ["-q", "run", "--suite", "smoke-tiny", "--methods", "self-forcing,deep-forcing", "--limit", "1"]
    assert main([*args, "--num-latent-frames", "6", "--out", str(tmp_path), "--no-score", "--compile"]) == 0
    assert len(asked) == 2  # once per generator (one per method)
    units = [json.loads(p.read_text()) for p in tmp_path.rglob("units/*/unit.json")]
    assert len(units) == 2 and all(unit["compiled"] is False for unit in units)
