"""`weights verify`: a file of the right name is only "ok" when it opens in its format with the expected content."""

import dataclasses
import hashlib
import json
import socket

import pytest
import torch
from safetensors.torch import save_file

from deepforcing import weights
from deepforcing.cli import main
from deepforcing.model import tiny_assets
from deepforcing.model.checkpoint import expected_shapes
from deepforcing.model.config import PRESETS
from deepforcing.weights import WeightFile


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("DEEPFORCING_CACHE", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)


@pytest.fixture
def scratch():
    added = []

    def add(entry):
        added.append(entry.key)
        return weights.register(entry)

    yield add
    for k in added:
        weights._REGISTRY.pop(k, None)


def _place(wd, key, data: bytes | None = None):
    entry = weights.get(key)
    path = wd / entry.repo_id / entry.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)
    return path


def _status(key, wd):
    (row,) = weights.verify(key, weights_dir=wd)
    return row["status"], row["detail"]


def _shape_only_generator(path, shapes):
    """A Self-Forcing-layout checkpoint with the real 1.3B shapes at almost no size (expanded 1-element tensors)."""
    state = {f"model.{k}": torch.zeros(1).expand(s) if s else torch.zeros(()) for k, s in shapes.items()}
    torch.save({"generator_ema": state}, path)


def test_generator_checkpoint_states(tmp_path):
    wd = tmp_path / "w"
    path = _place(wd, "self-forcing-dmd")
    assert _status("self-forcing-dmd", wd)[0] == "missing"
    path.write_bytes(b"this is not a checkpoint")  # the reported bug: a fake file of the right name
    status, detail = _status("self-forcing-dmd", wd)
    assert status == "unreadable" and "neither a torch.save zip nor a pickle" in detail
    path.write_bytes(b"")
    assert _status("self-forcing-dmd", wd) == ("unreadable", "not a PyTorch checkpoint: an empty file, neither a "
                                                             "torch.save zip nor a pickle")  # fmt: skip
    from deepforcing.model.tiny import build_random_generator

    torch.save({"generator_ema": build_random_generator(PRESETS["tiny"].wan, 0).state_dict()}, path)
    status, detail = _status("self-forcing-dmd", wd)  # a real checkpoint of another model
    assert status == "unexpected keys" and "missing (blocks.*." in detail and "with wrong shape" in detail
    _shape_only_generator(path, expected_shapes("wan2.1-t2v-1.3b"))
    assert path.stat().st_size < 2_000_000
    assert _status("self-forcing-dmd", wd) == ("ok", "")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 300])
    assert _status("self-forcing-dmd", wd)[0] == "unreadable"


def test_wan_config_t5_and_text_encoder_config(tmp_path):
    wd = tmp_path / "w"
    cfg = dataclasses.asdict(PRESETS["wan2.1-t2v-1.3b"].wan)
    real = {"_class_name": "WanModel", "model_type": "t2v", **{k: cfg[k] for k in ("dim", "ffn_dim", "num_heads")}}
    real.update(num_layers=30, freq_dim=256, text_len=512, in_dim=16, out_dim=16, eps=1e-6)
    path = _place(wd, "wan2.1-t2v-1.3b/config", json.dumps(real).encode())
    assert _status("wan2.1-t2v-1.3b/config", wd) == ("ok", "")
    path.write_text(json.dumps({**real, "dim": 5120, "num_layers": 40}))
    status, detail = _status("wan2.1-t2v-1.3b/config", wd)
    assert status == "unexpected keys" and "dim 5120 (expected 1536)" in detail
    path.write_text("{oops")
    assert _status("wan2.1-t2v-1.3b/config", wd)[0] == "unreadable"

    t5 = _place(wd, "wan2.1-t2v-1.3b/t5")
    tiny_assets.save_tiny_wan_t5_pth(t5, seed=0)  # Wan's T5 names: every block complete
    assert _status("wan2.1-t2v-1.3b/t5", wd) == ("ok", "")
    sd = torch.load(t5, weights_only=True)
    sd.pop("blocks.1.ffn.fc2.weight")
    sd["blocks.0.extra.weight"] = torch.zeros(1)
    torch.save(sd, t5)
    status, detail = _status("wan2.1-t2v-1.3b/t5", wd)
    assert status == "unexpected keys" and "blocks.0.extra.weight" in detail

    te = _place(wd, "wan2.1-t2v-1.3b-diffusers/text_encoder/config.json")
    te.write_text(json.dumps({"model_type": "umt5", "d_model": 4096}))
    assert _status("wan2.1-t2v-1.3b-diffusers/text_encoder/config.json", wd) == ("ok", "")
    te.write_text(json.dumps({"model_type": "t5", "d_model": 32}))
    status, detail = _status("wan2.1-t2v-1.3b-diffusers/text_encoder/config.json", wd)
    assert status == "unexpected keys" and "expected 'umt5'" in detail and "expected 4096" in detail


def test_tokenizer_files(tmp_path):
    import sentencepiece

    wd = tmp_path / "w"
    keys = [f"wan2.1-t2v-1.3b-diffusers/tokenizer/{f}" for f in ("tokenizer.json", "tokenizer_config.json")]
    keys.append("wan2.1-t2v-1.3b-diffusers/tokenizer/special_tokens_map.json")
    folder = _place(wd, keys[0]).parent
    tiny_assets.save_tiny_tokenizer(folder)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"a red circle number {i} bounces on a green field" for i in range(50)))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "spiece"), vocab_size=30, minloglevel=2
    )
    keys.append("wan2.1-t2v-1.3b-diffusers/tokenizer/spiece.model")
    assert {r["key"]: r["status"] for r in weights.verify(keys, wd)} == dict.fromkeys(keys, "ok")
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    (folder / "spiece.model").write_bytes(b"fake spiece")
    rows = {r["key"]: r for r in weights.verify(keys, wd)}
    assert rows[keys[0]]["status"] == "unreadable" and "no model.type" in rows[keys[0]]["detail"]
    assert rows[keys[3]]["status"] == "unreadable" and "not a sentencepiece model" in rows[keys[3]]["detail"]


def test_index_shards_must_hold_what_the_index_maps(tmp_path, scratch):
    scratch(WeightFile("t-idx", "org/r", "te/model.safetensors.index.json", None, None, None, "t", "n/a", True))
    base = tmp_path / "w" / "org" / "r" / "te"
    base.mkdir(parents=True)
    index = {"weight_map": {"a": "m-1.safetensors", "b": "m-1.safetensors", "c": "m-2.safetensors"}}
    (base / "model.safetensors.index.json").write_text(json.dumps(index))
    save_file({"a": torch.zeros(2), "b": torch.zeros(3)}, str(base / "m-1.safetensors"))
    save_file({"c": torch.zeros(2)}, str(base / "m-2.safetensors"))
    assert _status("t-idx", tmp_path / "w") == ("ok", "")
    save_file({"a": torch.zeros(2), "z": torch.zeros(3)}, str(base / "m-1.safetensors"))
    status, detail = _status("t-idx", tmp_path / "w")
    assert status == "unexpected keys" and "m-1.safetensors: 1 tensors of the index missing (e.g. b)" in detail
    (base / "m-2.safetensors").write_bytes((base / "m-2.safetensors").read_bytes()[:-4])
    status, detail = _status("t-idx", tmp_path / "w")
    assert status == "unreadable" and detail.startswith("shard m-2.safetensors: truncated")


def test_size_and_sha256_are_checked_and_hashes_are_cached(tmp_path, scratch, monkeypatch):
    good = b"\x80\x02" + b"x" * 100  # no registered format (.bin): only size and sha256 are checked
    digest = hashlib.sha256(good).hexdigest()
    scratch(WeightFile("t-sha", "org/r", "f.bin", None, None, digest, "t", "n/a"))
    scratch(WeightFile("t-size", "org/r", "g.bin", None, 5, None, "t", "n/a"))
    wd = tmp_path / "w"
    (wd / "org" / "r").mkdir(parents=True)
    (wd / "org" / "r" / "f.bin").write_bytes(good)
    (wd / "org" / "r" / "g.bin").write_bytes(good)
    calls = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    assert _status("t-sha", wd) == ("ok", "") and _status("t-sha", wd) == ("ok", "")
    assert len(calls) == 1  # the second verify used the cache (path, size, mtime)
    (wd / "org" / "r" / "f.bin").write_bytes(good[:-1] + b"y")
    status, _ = _status("t-sha", wd)
    assert status == "wrong sha256" and len(calls) == 2
    assert _status("t-size", wd) == ("wrong size", f"{len(good)} bytes, expected 5")
    assert weights.verify("t-sha", wd, check_sha256=False)[0]["ok"]  # a changed file is only caught by the hash


def test_cli_verify_names_the_state(tmp_path, capsys):
    wd = tmp_path / "w"
    _place(wd, "self-forcing-dmd", b"fake")
    code = main(["weights", "verify", "self-forcing-dmd", "rolling-forcing-dmd", "--weights-dir", str(wd)])
    out = capsys.readouterr().out
    assert code == 1 and "unreadable" in out and "missing" in out and " ok " not in out
