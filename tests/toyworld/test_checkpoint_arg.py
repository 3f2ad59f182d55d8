"""``--checkpoint`` / ``--weights`` of the toy model: a bundle folder, a file of it, or the weights file itself."""

import shutil

import pytest
import torch

from deepforcing.cli import main
from deepforcing.errors import UserError
from deepforcing.pipeline import VideoGenerator
from deepforcing.toyworld.model import BUNDLE_FILES, GENERATOR_FILE, SHIPPED_DIR, load_toy_model

CAPTION = "a red circle bouncing on a black background"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    for name in BUNDLE_FILES:
        shutil.copy(SHIPPED_DIR / name, out / name)
    return out


def _latents(checkpoint) -> torch.Tensor:
    gen = VideoGenerator("toyworld", "self-forcing", checkpoint=checkpoint)
    return gen.generate(CAPTION, num_latent_frames=3, seed=1).latents


def test_folder_bundle_file_and_renamed_weights_give_the_same_model(bundle, tmp_path):
    renamed = tmp_path / "fine-tune"
    shutil.copytree(bundle, renamed)
    (renamed / GENERATOR_FILE).rename(renamed / "toy_step2000.safetensors")
    reference = _latents(bundle)
    for given in (bundle / GENERATOR_FILE, bundle / "card.json", renamed / "toy_step2000.safetensors"):
        assert torch.equal(_latents(given), reference), given
    toy = load_toy_model(renamed / "toy_step2000.safetensors")
    assert toy.path == renamed and toy.generator_path == renamed / "toy_step2000.safetensors"


def test_weights_file_without_the_rest_of_the_bundle(bundle, tmp_path):
    (tmp_path / "w.safetensors").write_bytes((bundle / GENERATOR_FILE).read_bytes())
    with pytest.raises(UserError) as err:
        load_toy_model(tmp_path / "w.safetensors")
    assert "text_encoder.safetensors is missing" in str(err.value) and "from their folder" in str(err.value)
    with pytest.raises(UserError, match="not found"):
        load_toy_model(tmp_path / "nope.safetensors")


def test_cli_accepts_the_weights_file(bundle, capsys):
    code = main(["-q", "generate", "--model", "toyworld", "--prompt", CAPTION, "--num-latent-frames", "3",
                 "--checkpoint", str(bundle / GENERATOR_FILE), "--json"])  # fmt: skip
    assert code == 0 and '"latent_frames": 3' in capsys.readouterr().out
    code = main(["-q", "toyworld", "generate", "--caption", CAPTION, "--frames", "3", "--segment", "3",
                 "--weights", str(bundle / GENERATOR_FILE), "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
