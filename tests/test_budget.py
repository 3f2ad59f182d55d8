"""Up-front resource estimates (deepforcing.budget) and the refusals built on them."""

import pytest

from deepforcing import budget
from deepforcing.budget import Limits
from deepforcing.cli import main
from deepforcing.errors import UserError

WINDOW_METHODS = ["self-forcing", "deep-forcing", "deep-forcing-ds", "sink-longlive", "rolling-forcing"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("method", ["self-forcing-full", *WINDOW_METHODS])
def test_kv_estimate_equals_the_cache_the_engine_allocates(method):
    from deepforcing.pipeline import VideoGenerator

    gen = VideoGenerator("tiny", method, device="cpu")
    context = __import__("torch").zeros(1, 4, gen.preset.wan.text_dim)
    result = gen.generate("x", num_latent_frames=15, context=context)
    est = budget.estimate("tiny", method, 15, "cpu")
    assert est.kv_bytes == result.kv_cache_bytes


def test_window_caches_are_bounded_and_the_full_cache_grows_linearly():
    for method in WINDOW_METHODS:
        short, long = (budget.estimate("wan2.1-t2v-1.3b", method, f, "cuda") for f in (240, 2400))
        assert short.kv_bounded and short.kv_bytes == long.kv_bytes, method
        assert long.latents_bytes == pytest.approx(10 * short.latents_bytes, rel=1e-9)
    short, long = (budget.estimate("wan2.1-t2v-1.3b", "self-forcing-full", f, "cuda") for f in (240, 2400))
    assert not short.kv_bounded
    assert long.kv_bytes == pytest.approx(10 * short.kv_bytes, rel=1e-3)  # + the tiny per-layer constant
    # Known answer: 21 frames x 1560 tokens x 30 layers x 1536 channels x 2 bytes x 3 buffers (k, k_rot, v)
    # plus two int64 token columns per slot.
    sf = budget.estimate("wan2.1-t2v-1.3b", "self-forcing", 240, "cuda")
    assert sf.kv_bytes == 21 * 1560 * 30 * (1536 * 2 * 3 + 2 * 8)
    # The 60-s Self-Forcing video takes about a minute on an H100 (the calibration point), the full cache does
    # not fit on one 80 GB GPU.
    assert 50 < sf.seconds < 75
    assert short.peak_bytes > 80e9 > sf.peak_bytes


def test_time_grows_with_length_and_the_disk_estimate_is_an_upper_bound(tmp_path):
    a, b = (budget.estimate("toyworld", "deep-forcing", f, "cpu", threads=1) for f in (63, 630))
    assert 9 < b.seconds / a.seconds < 11  # bounded cache: time linear in length
    assert a.disk_bytes >= 139_025  # measured: the toy model's 63-frame mp4 (see MP4_BYTES_PER_PIXEL)
    assert budget.estimate("toyworld", "deep-forcing", 63, "cpu", output=False).disk_bytes == 0


def test_check_names_every_limit_the_estimate_and_the_override():
    est = budget.estimate("tiny", "self-forcing", 300, "cpu")
    budget.check([est], Limits(memory_bytes=10**12, disk_bytes=10**12))  # fits: no error
    with pytest.raises(UserError) as e:
        budget.check(
            [est],
            Limits(memory_bytes=1000, disk_bytes=1000, seconds=1e-6, memory_source="--max-memory", disk_path="/x"),
            videos=3,
            what="suite 'x'",
        )
    msg = str(e.value)
    assert "suite 'x' does not fit (3 limits)" in msg
    assert "memory: needs about" in msg and "--max-memory is 1000 B" in msg
    assert "for 3 videos" in msg and "/x has 1000 B free" in msg
    assert "time:" in msg and "--force-size" in msg


@pytest.mark.parametrize(
    ("text", "value"), [("40GiB", 40 * 2**30), ("80GB", 80 * 10**9), ("512 MiB", 512 * 2**20), ("1e6", 10**6)]
)
def test_parse_size(text, value):
    assert budget.parse_size(text) == value


@pytest.mark.parametrize("text", ["4XB", "-1GB", "", "GiB", "0"])
def test_parse_size_rejects(text):
    with pytest.raises(UserError):
        budget.parse_size(text)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--duration", "1e9"], "generate does not fit"),
        (["--duration", "inf"], "--duration must be positive and finite"),
        (["--duration", "nan"], "--duration must be positive and finite"),
        (["--num-latent-frames", "3000000000"], "latents 33.5 TiB"),
        (["--method", "self-forcing-full", "--num-latent-frames", "300", "--max-memory", "1MiB"], "grows with"),
        (["--max-memory", "lots"], "is not a size"),
    ],
)
def test_generate_refuses_before_loading_anything(capsys, monkeypatch, argv, needle):
    import deepforcing.pipeline

    def no_load(*a, **k):
        raise AssertionError("the model must not be loaded for a request that is refused")

    monkeypatch.setattr(deepforcing.pipeline, "VideoGenerator", no_load)
    code, _, err = _run(capsys, "generate", "--prompt", "x", *argv)
    assert code == 2 and needle in err and "Traceback" not in err


def test_force_size_skips_the_checks(capsys, tmp_path):
    argv = ["generate", "--prompt", "x", "--num-latent-frames", "3", "--max-memory", "1KiB", "--json"]
    code, _, err = _run(capsys, "-q", *argv)
    assert code == 2 and "does not fit" in err
    code, out, _ = _run(capsys, "-q", *argv, "--force-size")
    assert code == 0 and '"latent_frames": 3' in out


def test_suite_planning_refuses_before_generating(tmp_path):
    from deepforcing.harness.api import RunOptions, dry_run, execute
    from deepforcing.harness.distributed import DistContext
    from deepforcing.harness.suites import Overrides

    opts = RunOptions(
        suite="smoke", overrides=Overrides(methods=("self-forcing",), limit=1, latent_frames=3 * 10**9), out=tmp_path
    )
    dr = dry_run(opts, "cpu")
    assert dr.budget_problem and "suite 'smoke' does not fit" in dr.budget_problem
    with pytest.raises(UserError, match="does not fit"):
        execute(opts, DistContext(), "cpu")
    assert not list(tmp_path.rglob("*.mp4")) and not list(tmp_path.rglob("unit.json"))
