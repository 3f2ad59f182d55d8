"""The public API's contracts and its errors: WanConfig from config.json, derived methods, model kinds."""

import json

import pytest
import torch

from deepforcing import methods, model_kinds
from deepforcing.errors import UserError
from deepforcing.model.config import TINY, WAN21_T2V_1_3B, WanConfig

WAN_CONFIG = {  # Wan-AI/Wan2.1-T2V-1.3B config.json
    "_class_name": "WanModel", "_diffusers_version": "0.30.0", "dim": 1536, "eps": 1e-06, "ffn_dim": 8960,
    "freq_dim": 256, "in_dim": 16, "model_type": "t2v", "num_heads": 12, "num_layers": 30, "out_dim": 16,
    "text_len": 512,
}  # fmt: skip
DIFFUSERS_CONFIG = {  # Wan-AI/Wan2.1-T2V-1.3B-Diffusers transformer/config.json
    "_class_name": "WanTransformer3DModel", "added_kv_proj_dim": None, "attention_head_dim": 128,
    "cross_attn_norm": True, "eps": 1e-06, "ffn_dim": 8960, "freq_dim": 256, "image_dim": None, "in_channels": 16,
    "num_attention_heads": 12, "num_layers": 30, "out_channels": 16, "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 1024, "text_dim": 4096,
}  # fmt: skip


def test_wan_config_reads_both_config_layouts_and_stays_hashable(tmp_path):
    assert WanConfig.from_dict(WAN_CONFIG) == WAN21_T2V_1_3B
    cfg = WanConfig.from_dict(DIFFUSERS_CONFIG)
    assert cfg == WAN21_T2V_1_3B and hash(cfg) == hash(WAN21_T2V_1_3B)
    listed = WanConfig(dim=64, ffn_dim=128, num_heads=2, num_layers=2, patch_size=[1, 2, 2])
    assert listed.patch_size == (1, 2, 2) and isinstance(hash(listed), int)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(WAN_CONFIG))
    assert WanConfig.from_json(path) == WAN21_T2V_1_3B


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"model_type": "i2v"}, "not text-to-video"),
        ({"wobble": 1, "zap": 2}, "unknown config key(s) ['wobble', 'zap']"),
        ({"dim": 100}, "not a valid Wan config"),
    ],
)
def test_wan_config_errors_name_the_problem(change, needle):
    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        WanConfig.from_dict({**WAN_CONFIG, **change})
    with pytest.raises(UserError, match="image-to-video"):
        WanConfig.from_dict({**DIFFUSERS_CONFIG, "image_dim": 1280})


def test_derived_methods_show_their_change_and_refuse_unknown_knobs():
    ds = methods.get("deep-forcing-ds")
    assert ds.with_overrides() is ds
    same = ds.with_overrides(sink_frames=ds.policy_config.sink_frames)
    assert same.config_hash == ds.config_hash and same.name != ds.name  # the name shows it; the hash follows it
    with pytest.raises(UserError, match="knob 'sink_size' is not a setting"):
        ds.with_overrides(sink_size=4)
    with pytest.raises(UserError, match="invalid override"):
        ds.with_overrides(sink_frames=-3)
    with pytest.raises(UserError, match="not a single method preset"):
        methods.load_preset(methods.__file__.replace("methods.py", "../baselines/methods/ablations.yaml"))


def test_model_kinds_are_a_registry_a_user_can_extend(tmp_path):
    with pytest.raises(UserError, match="unknown model 'tinny'.*did you mean 'tiny'"):
        model_kinds.get("tinny")
    assert {"tiny", "toyworld", "wan2.1-t2v-1.3b", "medium"} <= set(model_kinds.available())
    kind = model_kinds.from_files("api-test", TINY, latent_size=(8, 8), checkpoint=tmp_path / "nope.pt")
    with pytest.raises(UserError, match="does not exist"):
        kind.check_assets(methods.get("self-forcing"))
    model_kinds.register(kind)
    try:
        with pytest.raises(UserError, match="already registered"):
            model_kinds.register(kind)
        assert "api-test" in model_kinds.available() and model_kinds.get("api-test") is kind
    finally:
        model_kinds._registry.pop("api-test")  # noqa: SLF001 - keep the registry as other tests expect it


def test_prompts_and_assets_are_required_only_when_used(tmp_path):
    from deepforcing.model.checkpoint import save_self_forcing_checkpoint
    from deepforcing.model.tiny import build_random_generator
    from deepforcing.pipeline import VideoGenerator

    torch.set_num_threads(1)
    save_self_forcing_checkpoint(build_random_generator(TINY, seed=3), tmp_path / "g.pt")
    kind = model_kinds.from_files("api-own", TINY, latent_size=(8, 8), checkpoint=tmp_path / "g.pt")
    gen = VideoGenerator(kind, "self-forcing", device="cpu")
    with pytest.raises(UserError, match="the prompt is empty"):
        gen.generate("", num_latent_frames=3)
    with pytest.raises(UserError, match="has no text encoder.*context="):
        gen.generate("a cat", num_latent_frames=3)  # no Diffusers folder given: the text encoder cannot load
    context = torch.zeros(1, TINY.text_len, TINY.text_dim)
    with pytest.raises(UserError, match="has no vae"):
        gen.generate("", context=context, num_latent_frames=3, output=tmp_path / "x.mp4")
    out = gen.generate("", context=context, num_latent_frames=3, prompt_id="p")
    assert out.latents.shape == (1, 3, 16, 8, 8)
