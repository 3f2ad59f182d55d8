import json
import os
import stat

import pytest
import torch

from deepforcing.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--prompt", "   "], "prompt is empty"),
        (["--prompt", "x", "--duration", "0"], "duration must be positive"),
        (["--prompt", "x", "--duration", "-3"], "duration must be positive"),
        (["--prompt", "x", "--num-latent-frames", "7"], "multiple of 3"),
        (["--prompt", "x", "--method", "self-forcng"], "did you mean 'self-forcing'"),
        (["--prompt", "x", "--model", "huge"], "choose one of"),
        (["--prompt", "x", "--output", "video.avi"], ".mp4"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(capsys, argv, needle):
    code, out, err = _run(capsys, "generate", *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_unwritable_output_directory(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that can write anywhere (root without CAP restrictions)")
        code, _, err = _run(capsys, "generate", "--prompt", "x", "--output", str(locked / "a.mp4"))
        assert code == 2 and "not a writable directory" in err
    finally:
        locked.chmod(stat.S_IRWXU)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_output_on_a_filesystem_that_refuses_files(capsys):
    code, _, err = _run(capsys, "generate", "--prompt", "x", "--output", "/proc/self/out.mp4")
    assert code == 2 and "not a writable directory" in err


def test_output_that_is_a_file_path_under_a_file(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(capsys, "generate", "--prompt", "x", "--output", str(blocker / "sub" / "a.mp4"))
    assert code == 2 and "not a writable directory" in err


def test_checkpoint_with_wrong_keys(capsys, tmp_path, tiny_model):
    sd = {f"model.{k}": v for k, v in tiny_model.state_dict().items() if not k.startswith("head.")}
    sd["model.bogus.weight"] = torch.zeros(2)
    torch.save({"generator_ema": sd}, tmp_path / "bad.pt")
    code, _, err = _run(capsys, "-q", "generate", "--prompt", "x", "--checkpoint", str(tmp_path / "bad.pt"))
    assert code == 2
    assert "missing" in err and "head." in err and "bogus.weight" in err


def test_nan_in_latents_names_the_chunk(capsys, tmp_path, tiny_model):
    from deepforcing.model.checkpoint import save_self_forcing_checkpoint

    with torch.no_grad():
        tiny_model.head.head.bias.fill_(float("nan"))
    save_self_forcing_checkpoint(tiny_model, tmp_path / "nan.pt")
    out = tmp_path / "videos" / "nan.mp4"
    code, _, err = _run(
        capsys,
        "-q",
        "generate",
        "--prompt",
        "x",
        "--num-latent-frames",
        "6",
        "--checkpoint",
        str(tmp_path / "nan.pt"),
        "--output",
        str(out),
    )
    assert code == 2 and "NaN/Inf in latents at chunk 0" in err
    assert not out.exists() and not any(out.parent.glob("*"))  # no half-written video, no temp file left


def test_methods_list_and_show(capsys):
    code, out, _ = _run(capsys, "methods", "list")
    assert code == 0 and "self-forcing" in out
    code, out, _ = _run(capsys, "methods", "show", "self-forcing")
    shown = json.loads(out)
    assert shown["policy"] == "fifo" and shown["policy_config"]["window_frames"] == 21
    assert len(shown["config_hash"]) == 12
    code, _, err = _run(capsys, "methods", "show", "nope")
    assert code == 2 and "unknown method" in err


@pytest.mark.parametrize(
    "method",
    [
        "self-forcing",
        "deep-forcing",
        "deep-forcing-ds",
        "deep-forcing-paper",
        "rolling-forcing",
        "rolling-sink",
        "infinity-rope",
        "infinity-rope-sf",
        "longlive",
        "memrope",
        "lol-paper",
        "self-forcing@causal-forcing",
        "sink-longlive",
        "sink-rolling",
        "deep-forcing-ds-sink0",
        "deep-forcing-query-past",
    ],
)
def test_every_method_generates_on_the_tiny_model(capsys, method):
    code, out, err = _run(
        capsys, "-q", "generate", "--method", method, "--prompt", "a red ball", "--num-latent-frames", "27", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["latent_frames"] == 27 and summary["video_frames"] == 105 and summary["video"] is None


def test_methods_list_shows_every_preset(capsys):
    from deepforcing import methods

    code, out, _ = _run(capsys, "methods", "list")
    assert code == 0
    names = methods.available()
    assert {"self-forcing", "deep-forcing", "rolling-forcing", "sink-longlive", "sink-rolling"} <= set(names)
    assert len(names) >= 25  # presets + ablation grids
    shown = json.loads(_run(capsys, "methods", "show", "deep-forcing")[1])
    assert shown["policy_config"] == {
        "window_frames": 21,
        "sink_frames": 10,
        "budget_frames": 16,
        "recent_frames": 4,
        "query_source": "both",
        "reuse_cap": 7,
        "unify_topc_rope": False,
        "sink_placement": "released",
    }


def test_weights_list_verify_download_offline(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, _ = _run(capsys, "weights", "list")
    assert code == 0 and "self-forcing-dmd" in out
    code, out, _ = _run(capsys, "weights", "verify", "self-forcing-dmd", "--weights-dir", str(tmp_path))
    assert code == 1 and "self-forcing-dmd" in out  # reported missing, nothing downloaded
    code, _, err = _run(capsys, "weights", "download", "self-forcing-dmd")
    assert code == 2 and "offline" in err.lower()


def test_real_model_without_weights_names_the_file_and_the_command(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["generate", "--model", "wan2.1-t2v-1.3b", "--prompt", "x", "--weights-dir", str(tmp_path / "w")]
    code, _, err = _run(capsys, *argv)
    if "does not fit" in err:  # a machine without the memory for the real model is told so first
        assert code == 2 and "--force-size" in err
        code, _, err = _run(capsys, *argv, "--force-size")
    assert code == 2
    assert "deepforcing-eval weights download" in err and str(tmp_path / "w") in err
