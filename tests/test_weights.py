import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepforcing import weights
from deepforcing.errors import UserError
from deepforcing.weights import WeightFile

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No real weights dir, an empty HF cache, and no network for every test."""
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    yield


@pytest.fixture
def scratch_entries():
    """Register throw-away entries and remove them afterwards."""
    added = []

    def add(entry):
        added.append(entry.key)
        return weights.register(entry)

    yield add
    for k in added:
        weights._REGISTRY.pop(k, None)


def fake_hf_cache(cache: Path, repo_id: str, filename: str, data: bytes, commit="0123456789abcdef") -> Path:
    """Write a file in the real huggingface_hub cache layout (models--org--name/{refs,snapshots})."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    path = repo / "snapshots" / commit / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_import_does_not_pull_torch():
    code = "import sys, deepforcing.weights; print('torch' in sys.modules, 'huggingface_hub' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_registry_contents():
    expected = {
        "self-forcing-dmd": ("gdhe17/Self-Forcing", "checkpoints/self_forcing_dmd.pt"),
        "rolling-forcing-dmd": ("TencentARC/RollingForcing", "checkpoints/rolling_forcing_dmd.pt"),
        "infinite-forcing-ema": ("SOTAMak1r/Infinite-Forcing", "ema_model.pt"),
        "causal-forcing": ("zhuhz22/Causal-Forcing", "chunkwise/causal_forcing.pt"),
        "longlive": ("Efficient-Large-Model/LongLive", "models/longlive_base.pt"),
        "longlive-base": ("Efficient-Large-Model/LongLive", "models/longlive_base.pt"),
        "longlive-lora": ("Efficient-Large-Model/LongLive", "models/lora.pt"),
        "wan2.1-t2v-1.3b/vae": ("Wan-AI/Wan2.1-T2V-1.3B", "Wan2.1_VAE.pth"),
        "wan2.1-t2v-1.3b/t5": ("Wan-AI/Wan2.1-T2V-1.3B", "models_t5_umt5-xxl-enc-bf16.pth"),
        "wan2.1-t2v-1.3b/dit": ("Wan-AI/Wan2.1-T2V-1.3B", "diffusion_pytorch_model.safetensors"),
        "wan2.1-t2v-1.3b/config": ("Wan-AI/Wan2.1-T2V-1.3B", "config.json"),
        "wan2.1-t2v-1.3b/tokenizer/tokenizer.json": (
            "Wan-AI/Wan2.1-T2V-1.3B",
            "google/umt5-xxl/tokenizer.json",
        ),
        "wan2.1-t2v-1.3b-diffusers/vae/diffusion_pytorch_model.safetensors": (
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            "vae/diffusion_pytorch_model.safetensors",
        ),
        "wan2.1-t2v-1.3b-diffusers/text_encoder/config.json": (
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            "text_encoder/config.json",
        ),
        "wan2.1-t2v-1.3b-diffusers/tokenizer/spiece.model": (
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            "tokenizer/spiece.model",
        ),
    }
    for key, (repo, filename) in expected.items():
        e = weights.get(key)
        assert (e.repo_id, e.filename) == (repo, filename)
        assert e.purpose and e.license_note
    for e in weights.entries():
        if e.url is None:  # Hub files: nothing in our references states them (plain-URL metric files do)
            assert e.sha256 is None and e.size_bytes is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        weights.get("self-forcing-dmd").filename = "x"
    assert weights.get("wan2.1-t2v-1.3b-diffusers/text_encoder/model.safetensors.index.json").index
    group = weights.expand("wan2.1-t2v-1.3b-diffusers/vae")
    assert group == [
        "wan2.1-t2v-1.3b-diffusers/vae/config.json",
        "wan2.1-t2v-1.3b-diffusers/vae/diffusion_pytorch_model.safetensors",
    ]
    assert set(weights.groups()["wan2.1-t2v-1.3b"]) >= {"wan2.1-t2v-1.3b/vae", "wan2.1-t2v-1.3b/t5"}


def test_register_is_extensible_and_guards_clashes(scratch_entries):
    e = scratch_entries(WeightFile("test-metric", "org/metric", "m.pth", None, None, None, "a metric", "MIT"))
    assert weights.get("test-metric") is e
    weights.register(e)  # identical re-registration is fine
    with pytest.raises(ValueError, match="already registered"):
        weights.register(dataclasses.replace(e, filename="other.pth"))
    with pytest.raises(UserError, match="unknown weight key"):
        weights.get("no-such-key")


def test_resolve_explicit_dir_env_and_hf_cache(tmp_path, monkeypatch):
    key = "self-forcing-dmd"
    wd = tmp_path / "w"
    f = wd / "gdhe17/Self-Forcing/checkpoints/self_forcing_dmd.pt"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x")
    assert weights.resolve(key, weights_dir=wd) == f
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(wd))
    assert weights.resolve(key) == f
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV)
    cached = fake_hf_cache(tmp_path / "hf_cache", "gdhe17/Self-Forcing", "checkpoints/self_forcing_dmd.pt", b"y")
    assert weights.resolve(key) == cached
    # the explicit dir wins over the cache
    assert weights.resolve(key, weights_dir=wd) == f
    assert weights.resolve_dir("self-forcing-dmd") == cached.parent


def test_missing_file_error_names_file_places_and_command(tmp_path):
    wd = tmp_path / "w"
    with pytest.raises(UserError) as e:
        weights.resolve("wan2.1-t2v-1.3b/vae", weights_dir=wd)
    msg = str(e.value)
    assert "Wan-AI/Wan2.1-T2V-1.3B/Wan2.1_VAE.pth" in msg
    assert str(wd / "Wan-AI/Wan2.1-T2V-1.3B/Wan2.1_VAE.pth") in msg
    assert str(tmp_path / "hf_cache") in msg
    assert "deepforcing-eval weights download wan2.1-t2v-1.3b/vae" in msg
    # without any weights dir the message says so
    with pytest.raises(UserError, match=weights.WEIGHTS_DIR_ENV):
        weights.resolve("wan2.1-t2v-1.3b/vae")


def test_verify_reports_presence_size_sha_and_shards(tmp_path, scratch_entries):
    data = b"hello weights"
    digest = hashlib.sha256(data).hexdigest()
    scratch_entries(WeightFile("t-good", "org/r", "good.bin", None, len(data), digest, "test", "n/a"))
    scratch_entries(WeightFile("t-badsha", "org/r", "bad.bin", None, None, "0" * 64, "test", "n/a"))
    scratch_entries(WeightFile("t-badsize", "org/r", "bad.bin", None, 3, None, "test", "n/a"))
    scratch_entries(WeightFile("t-missing", "org/r", "nope.bin", None, None, None, "test", "n/a"))
    scratch_entries(
        WeightFile("t-index", "org/r", "te/model.safetensors.index.json", None, None, None, "t", "n/a", True)
    )
    base = tmp_path / "w" / "org" / "r"
    (base / "te").mkdir(parents=True)
    (base / "good.bin").write_bytes(data)
    (base / "bad.bin").write_bytes(data)
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (base / "te" / "model.safetensors.index.json").write_text(json.dumps(index))
    (base / "te" / "model-00001-of-00002.safetensors").write_bytes(b"1")
    rows = {
        r["key"]: r for r in weights.verify(["t-good", "t-badsha", "t-badsize", "t-missing", "t-index"], tmp_path / "w")
    }
    assert rows["t-good"]["ok"] and rows["t-good"]["sha256_ok"] and rows["t-good"]["size_ok"]
    assert rows["t-badsha"]["present"] and rows["t-badsha"]["sha256_ok"] is False and not rows["t-badsha"]["ok"]
    assert rows["t-badsize"]["size_ok"] is False and not rows["t-badsize"]["ok"]
    assert not rows["t-missing"]["present"] and not rows["t-missing"]["ok"] and rows["t-missing"]["path"] is None
    assert rows["t-index"]["missing_shards"] == ["model-00002-of-00002.safetensors"] and not rows["t-index"]["ok"]
    assert len(weights.verify()) == len(weights.entries())  # all registered files, nothing downloaded


def test_download_refuses_when_offline(tmp_path, monkeypatch):
    import huggingface_hub

    def boom(*a, **k):
        raise AssertionError("hf_hub_download must not be called offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", boom)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE") as e:
        weights.download(["self-forcing-dmd"], dest=tmp_path / "w")
    assert "self-forcing-dmd" in str(e.value)
    assert not (tmp_path / "w").exists()


def test_download_layout_and_shards(tmp_path, monkeypatch, scratch_entries):
    """download() drives hf_hub_download (here a local writer) into <dest>/<repo_id>/<filename>."""
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, revision=None, local_dir=None, **kwargs):
        calls.append((repo_id, filename, revision))
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        if filename.endswith("index.json"):
            out.write_text(json.dumps({"weight_map": {"w1": "model-1.safetensors", "w2": "model-2.safetensors"}}))
        else:  # real shards: verify opens them and checks that they hold what the index maps
            from safetensors.torch import save_file

            save_file({"w1" if "model-1" in filename else "w2": torch.zeros(2)}, str(out))
        return str(out)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    scratch_entries(
        WeightFile("t-idx", "org/r", "te/model.safetensors.index.json", "abc", None, None, "t", "n/a", True)
    )
    scratch_entries(WeightFile("t-sized", "org/r", "x.bin", None, 99, None, "t", "n/a"))
    dest = tmp_path / "w"
    paths = weights.download("t-idx", dest=dest)
    assert paths == [dest / "org/r/te/model.safetensors.index.json"]
    assert [c[1] for c in calls] == [
        "te/model.safetensors.index.json",
        "te/model-1.safetensors",
        "te/model-2.safetensors",
    ]
    assert all(c[2] == "abc" for c in calls)
    assert weights.resolve("t-idx", weights_dir=dest) == paths[0]
    assert weights.verify("t-idx", weights_dir=dest)[0]["ok"]
    with pytest.raises(UserError, match="expected 99"):
        weights.download("t-sized", dest=dest)
