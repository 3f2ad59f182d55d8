"""A file that is not a loadable checkpoint gets one line saying so and why (exit 2), never a library's essay."""

import io
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from deepforcing.cli import main
from deepforcing.errors import UserError
from deepforcing.model.checkpoint import (
    check_generator_file,
    expected_shapes,
    group_keys,
    load_weights,
    read_shapes,
    read_state_dict,
    save_self_forcing_checkpoint,
)
from deepforcing.model.config import TINY
from deepforcing.model.wan import CausalWanModel


class Opaque:
    """A Python object torch.save pickles but weights_only refuses to load."""

    def __init__(self):
        self.x = 1


def _tiny_safetensors(model, path):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _bad_files(tmp_path, tiny_model):
    """(file, expected reason) for every kind of bad checkpoint."""
    good_st = _tiny_safetensors(tiny_model, tmp_path / "good.safetensors").read_bytes()
    good_pt = _torch_bytes({"generator_ema": {f"model.{k}": v for k, v in tiny_model.state_dict().items()}})
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as zf:
        zf.writestr("weights/readme.txt", "not torch")
    script = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), script)
    cases = {
        "garbage.pt": (b"garbage" * 100, "a text file, neither a torch.save file nor a safetensors file"),
        "random.pt": (bytes(range(200, 256)) * 8, "bytes of unknown binary data"),
        "empty.pt": (b"", "an empty file"),
        "truncated.safetensors": (good_st[: len(good_st) - 100], "truncated: the safetensors header describes"),
        "header.safetensors": (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "its header is not JSON"),
        "notjson.safetensors": (b"hello world, this is text", "not a safetensors file (a text file)"),
        "other.zip.pt": (zip_buf.getvalue(), "a zip archive but not a torch.save file (no data.pkl"),
        "truncated.pt": (good_pt[: len(good_pt) // 2], "a truncated or corrupt zip archive"),
        "objects.pt": (_torch_bytes({"generator_ema": Opaque()}), "Python objects other than tensors"),
        "script.pt": (script.getvalue(), "a TorchScript archive"),
        "list.pt": (_torch_bytes([torch.zeros(2)]), "it holds a list, not a state dict"),
        "nogen.pt": (_torch_bytes({"optimizer": {"lr": torch.tensor(1.0)}, "step": 5}), "no generator weights"),
    }
    out = []
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        out.append((tmp_path / name, reason))
    return out


def test_every_bad_file_is_one_line_with_the_reason(tmp_path, tiny_model):
    for path, reason in _bad_files(tmp_path, tiny_model):
        with pytest.raises(UserError) as err:
            read_state_dict(path)
        msg = str(err.value)
        assert f"{path} is not a loadable checkpoint" in msg, (path.name, msg)
        assert reason in msg, (path.name, msg)
        assert "\n" not in msg and "weights_only` argument" not in msg and len(msg) < 400, (path.name, msg)
        with pytest.raises(UserError, match="not a loadable checkpoint"):
            read_shapes(path)


@pytest.mark.parametrize("name", ["garbage.pt", "objects.pt", "truncated.safetensors", "other.zip.pt"])
def test_cli_exit_2_and_one_line(capsys, tmp_path, tiny_model, name):
    files = dict((p.name, p) for p, _ in _bad_files(tmp_path, tiny_model))
    code = main(["-q", "generate", "--prompt", "x", "--num-latent-frames", "3", "--checkpoint", str(files[name])])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a loadable checkpoint" in err
    assert "Traceback" not in err and "Weights only load failed" not in err


def test_format_comes_from_the_content_not_the_suffix(tmp_path, tiny_model):
    path = _tiny_safetensors(tiny_model, tmp_path / "weights.pt")  # safetensors under a .pt name
    load_weights(CausalWanModel(TINY), read_state_dict(path))


def test_wrong_keys_are_named_compactly(tmp_path, tiny_model):
    sd = {k: v for k, v in tiny_model.state_dict().items() if ".ffn." not in k}
    sd["blocks.0.adapter.weight"] = torch.zeros(3)
    sd["head.head.weight"] = torch.zeros(5, 5)
    torch.save(sd, tmp_path / "keys.pt")
    with pytest.raises(UserError) as err:
        load_weights(CausalWanModel(TINY), read_state_dict(tmp_path / "keys.pt"))
    msg = str(err.value)
    # 2 blocks x 4 FFN tensors, folded over the block index
    assert "8 missing (blocks.*.ffn.0.bias ×2, blocks.*.ffn.0.weight ×2, blocks.*.ffn.2.bias ×2 and 1 more)" in msg
    assert "1 unexpected (blocks.0.adapter.weight)" in msg
    assert "1 with wrong shape (e.g. head.head.weight (5, 5) vs (64, 64))" in msg
    assert group_keys([f"blocks.{i}.x.weight" for i in range(30)]) == "blocks.*.x.weight ×30"


def test_shapes_are_read_without_tensor_data(tmp_path, tiny_model):
    expected = expected_shapes("tiny")
    pt = tmp_path / "self_forcing_dmd.pt"
    save_self_forcing_checkpoint(tiny_model, pt)
    st = _tiny_safetensors(tiny_model, tmp_path / "diffusion_pytorch_model.safetensors")
    assert read_shapes(pt) == read_shapes(st) == read_shapes(tmp_path) == expected
    assert check_generator_file(pt, "tiny") == []
    problems = check_generator_file(pt, "toyworld")
    assert len(problems) == 1 and "with wrong shape" in problems[0]
