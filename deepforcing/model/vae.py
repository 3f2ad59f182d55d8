"""Wan2.1 VAE decode (full and streaming) around diffusers' ``AutoencoderKLWan``.

Latents in this project are laid out ``[B, F, C=16, h, w]`` and are *normalised* (Wan's convention:
``z = (mu - mean) / std``). Decoding de-normalises with the per-channel ``latents_mean`` / ``latents_std`` of
the VAE config (the diffusers config of Wan2.1 carries exactly Wan's numbers) and returns pixels
``[B, T, 3, 8h, 8w]`` in ``[-1, 1]`` with ``T = 1 + 4 (F - 1)``.

The Wan decoder is causal in time: it is run one latent frame at a time, and each causal 3-D convolution
keeps the last two input frames of the previous call in a *feature cache* (a list with one slot per
``WanCausalConv3d``). The first latent frame produces 1 pixel frame (the temporal upsamplers mark their slot
``"Rep"`` and skip the time convolution), every later latent frame produces 4. diffusers'
``AutoencoderKLWan._decode`` clears that cache at the start and end of every call, so it cannot continue
across chunks; :class:`StreamingDecoder` owns its cache and drives ``post_quant_conv`` and ``decoder(x,
feat_cache=..., feat_idx=[0], first_chunk=...)`` itself, which makes the concatenation of chunk outputs equal
to one full decode up to float rounding: fp32 CPU max |diff| <= 1.3e-6 measured (often exactly 0); the only
difference is the 1x1x1 ``post_quant_conv`` applied per chunk instead of to the whole tensor.

Supported diffusers: 0.33.0 (first release with ``AutoencoderKLWan``) to 0.42.1; the tests pass with 0.33.0,
0.35.0 and 0.42.1 (``first_chunk`` exists from 0.35 and is passed only when the decoder accepts it). We rely
on ``WanCausalConv3d``, ``decoder.forward(x, feat_cache, feat_idx[, first_chunk])`` and ``post_quant_conv``;
these are checked when a VAE is wrapped and a missing piece raises a :class:`~deepforcing.errors.UserError`.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from deepforcing.errors import UserError

logger = logging.getLogger(__name__)

#: Wan2.1 latent statistics (``WanVAEWrapper`` in Self-Forcing; diffusers' default ``latents_mean/std``).
WAN21_LATENTS_MEAN = (  # fmt: skip
    -0.7571,
    -0.7089,
    -0.9113,
    0.1075,
    -0.1745,
    0.9653,
    -0.1517,
    1.5508,
    0.4134,
    -0.0715,
    0.5517,
    -0.3632,
    -0.1922,
    -0.9497,
    0.2503,
    -0.2921,
)
WAN21_LATENTS_STD = (  # fmt: skip
    2.8184,
    1.4541,
    2.3275,
    2.6558,
    1.2196,
    1.7708,
    2.6052,
    2.0743,
    3.2687,
    2.1526,
    2.8652,
    1.5579,
    1.6382,
    1.1253,
    2.8251,
    1.9160,
)

#: The Wan2.1 VAE architecture (diffusers ``AutoencoderKLWan`` config keys). ``base_dim``/``z_dim`` are
#: inferred from an original checkpoint; the rest is fixed by diffusers' converter (it hard-codes this block
#: layout).
WAN21_VAE_CONFIG: dict[str, Any] = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
    "latents_mean": list(WAN21_LATENTS_MEAN),
    "latents_std": list(WAN21_LATENTS_STD),
}

_MIN_DIFFUSERS = "0.33.0"


def _diffusers_wan():
    """Import the diffusers pieces we rely on, or fail with a clear message."""
    try:
        import diffusers
        from diffusers import AutoencoderKLWan
        from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d
    except ImportError as e:  # pragma: no cover - depends on the user's environment
        raise UserError(
            f"diffusers with AutoencoderKLWan is required for the Wan VAE ({e})",
            hint=f"pip install 'diffusers>={_MIN_DIFFUSERS}' (tested with 0.42.1)",
        ) from e
    return diffusers, AutoencoderKLWan, WanCausalConv3d


def _have_accelerate() -> bool:
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


def _check_decoder_api(vae: torch.nn.Module) -> bool:
    """Check the private decoder API streaming relies on; return whether ``first_chunk`` is accepted."""
    diffusers, _, _ = _diffusers_wan()
    params = inspect.signature(vae.decoder.forward).parameters
    missing = [p for p in ("feat_cache", "feat_idx") if p not in params]
    if missing or not hasattr(vae, "post_quant_conv"):
        raise UserError(
            f"diffusers {diffusers.__version__}: AutoencoderKLWan lacks {missing or 'post_quant_conv'} in "
            "its decoder API, which the streaming VAE decoder drives directly",
            hint=f"install a diffusers version in the supported range (>= {_MIN_DIFFUSERS}, tested 0.42.1)",
        )
    has_first_chunk = "first_chunk" in params
    if getattr(vae.config, "is_residual", False) and not has_first_chunk:
        raise UserError(
            f"diffusers {diffusers.__version__}: residual (Wan2.2) VAE decoder has no first_chunk argument",
            hint="upgrade diffusers (>= 0.35)",
        )
    if getattr(vae.config, "patch_size", None) is not None:
        raise UserError(
            "this VAE config uses patch_size (Wan2.2 TI2V VAE); only the Wan2.1 VAE is supported",
            hint="use the Wan2.1 VAE (Wan-AI/Wan2.1-T2V-1.3B-Diffusers/vae or Wan2.1_VAE.pth)",
        )
    return has_first_chunk


# ------------------------------------------------------------------------------------------------------
# Original Wan checkpoint <-> diffusers key names
# ------------------------------------------------------------------------------------------------------

_RESNET_DIFFUSERS_TO_WAN = {
    "norm1.gamma": "residual.0.gamma",
    "conv1.weight": "residual.2.weight",
    "conv1.bias": "residual.2.bias",
    "norm2.gamma": "residual.3.gamma",
    "conv2.weight": "residual.6.weight",
    "conv2.bias": "residual.6.bias",
    "conv_shortcut.weight": "shortcut.weight",
    "conv_shortcut.bias": "shortcut.bias",
}


def _resnet_param_to_wan(rest: str) -> str:
    try:
        return _RESNET_DIFFUSERS_TO_WAN[rest]
    except KeyError:
        raise ValueError(f"unexpected residual-block parameter {rest!r}") from None


def diffusers_vae_to_wan(state_dict: dict[str, torch.Tensor], num_res_blocks: int = 2) -> dict[str, torch.Tensor]:
    """Rename a diffusers ``AutoencoderKLWan`` state dict to the original ``Wan2.1_VAE.pth`` names.

    This is the inverse of diffusers' ``convert_wan_vae_to_diffusers``, written from Wan's module structure
    (``Encoder3d.downsamples``, ``Decoder3d.upsamples``, ``middle`` = [res, attn, res], ``head`` = [norm,
    SiLU, conv], ``conv1``/``conv2`` = quant/post-quant convs). Used to write tiny checkpoints in the
    original format.

    Args:
        state_dict: diffusers parameter names -> tensors.
        num_res_blocks: The config's ``num_res_blocks`` (each decoder stage has ``num_res_blocks + 1``
            resnets).

    Returns:
        Original Wan parameter names -> the same tensors.
    """
    out: dict[str, torch.Tensor] = {}
    per_stage = num_res_blocks + 2  # resnets + one upsampler per decoder stage in Wan's flat Sequential
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] in ("quant_conv", "post_quant_conv"):
            new = ("conv1." if parts[0] == "quant_conv" else "conv2.") + ".".join(parts[1:])
        elif parts[0] in ("encoder", "decoder"):
            side, sub = parts[0], parts[1]
            rest = ".".join(parts[2:])
            if sub == "conv_in":
                new = f"{side}.conv1.{rest}"
            elif sub == "norm_out":
                new = f"{side}.head.0.{rest}"
            elif sub == "conv_out":
                new = f"{side}.head.2.{rest}"
            elif sub == "mid_block":
                kind, idx, prm = parts[2], int(parts[3]), ".".join(parts[4:])
                if kind == "resnets":
                    new = f"{side}.middle.{2 * idx}.{_resnet_param_to_wan(prm)}"
                elif kind == "attentions":
                    new = f"{side}.middle.1.{prm}"
                else:
                    raise ValueError(f"unexpected VAE key {key!r}")
            elif sub == "down_blocks":
                idx, prm = parts[2], ".".join(parts[3:])
                if prm.startswith(("resample.", "time_conv.")):
                    new = f"{side}.downsamples.{idx}.{prm}"
                else:
                    new = f"{side}.downsamples.{idx}.{_resnet_param_to_wan(prm)}"
            elif sub == "up_blocks":
                stage, kind = int(parts[2]), parts[3]
                if kind == "resnets":
                    flat = stage * per_stage + int(parts[4])
                    new = f"{side}.upsamples.{flat}.{_resnet_param_to_wan('.'.join(parts[5:]))}"
                elif kind == "upsamplers":
                    flat = stage * per_stage + num_res_blocks + 1
                    new = f"{side}.upsamples.{flat}.{'.'.join(parts[5:])}"
                else:
                    raise ValueError(f"unexpected VAE key {key!r}")
            else:
                raise ValueError(f"unexpected VAE key {key!r}")
        else:
            raise ValueError(f"unexpected VAE key {key!r}")
        out[new] = value
    return out


def _load_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a ``torch.save`` state dict safely (``weights_only``) and memory-mapped when possible."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        sd = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) files cannot be mmapped
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path} is not a plain state dict of tensors")
    return sd


def _read_config(config: dict | str | os.PathLike | None) -> dict | None:
    if config is None or isinstance(config, dict):
        return None if config is None else dict(config)
    p = Path(config)
    if p.is_dir():
        p = p / "config.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read VAE config {p}: {e}") from e


# ------------------------------------------------------------------------------------------------------
# The wrapper
# ------------------------------------------------------------------------------------------------------


class WanVAE:
    """Wan2.1 VAE: de-normalise latents and decode them to pixels, in full or streaming.

    Args:
        vae: A diffusers ``AutoencoderKLWan`` (Wan2.1 layout: no ``patch_size``).
        dtype: Compute dtype (``torch.float32`` on CPU, ``torch.bfloat16`` on CUDA).
        device: Compute device.

    Attributes:
        vae: The wrapped diffusers module (eval mode, no grad).
        latents_mean: ``[16]`` fp32 tensor from the config.
        latents_std: ``[16]`` fp32 tensor from the config.
        temporal_factor: 4 for Wan2.1.
        spatial_factor: 8 for Wan2.1.
    """

    def __init__(self, vae: torch.nn.Module, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        self._has_first_chunk = _check_decoder_api(vae)
        _, _, wan_conv = _diffusers_wan()
        vae = vae.to(device=device)
        if next(vae.parameters()).dtype != dtype:
            vae = vae.to(dtype=dtype)
        self.vae = vae.eval().requires_grad_(False)
        self.dtype = dtype
        self.device = torch.device(device)
        cfg = vae.config
        self.z_dim = int(cfg.z_dim)
        self.latents_mean = torch.tensor(cfg.latents_mean, dtype=torch.float32)
        self.latents_std = torch.tensor(cfg.latents_std, dtype=torch.float32)
        if self.latents_mean.numel() != self.z_dim or self.latents_std.numel() != self.z_dim:
            raise UserError(f"VAE config latents_mean/std must have z_dim={self.z_dim} entries")
        self.temporal_factor = int(getattr(cfg, "scale_factor_temporal", None) or 4)
        self.spatial_factor = int(getattr(cfg, "scale_factor_spatial", None) or 8)
        self.num_decoder_convs = sum(isinstance(m, wan_conv) for m in self.vae.decoder.modules())

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_diffusers(
        cls,
        vae_dir: str | os.PathLike,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> WanVAE:
        """Load a Diffusers-layout ``vae/`` directory (config.json + diffusion_pytorch_model.safetensors).

        Args:
            vae_dir: The ``vae`` directory itself (or a pipeline root that contains ``vae/``).
            dtype: Compute dtype.
            device: Compute device.

        Returns:
            The wrapper.

        Raises:
            UserError: If the directory or its files are missing or do not load.
        """
        _, autoencoder_cls, _ = _diffusers_wan()
        d = Path(vae_dir)
        if not (d / "config.json").is_file() and (d / "vae" / "config.json").is_file():
            d = d / "vae"
        if not (d / "config.json").is_file():
            raise UserError(
                f"no VAE config.json in {d}",
                hint="pass the diffusers `vae/` directory, e.g. from `deepforcing-eval weights download "
                "wan2.1-t2v-1.3b-diffusers/vae`",
            )
        try:
            vae = autoencoder_cls.from_pretrained(
                str(d), local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=_have_accelerate()
            )
        except (OSError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot load the diffusers VAE from {d}: {e}") from e
        logger.info("loaded diffusers Wan VAE from %s", d)
        return cls(vae, dtype=dtype, device=device)

    @classmethod
    def from_original(
        cls,
        pth_path: str | os.PathLike,
        config: dict | str | os.PathLike | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> WanVAE:
        """Load the original ``Wan2.1_VAE.pth`` (Wan's key names) through diffusers' own converter, offline.

        Args:
            pth_path: The ``.pth`` state dict.
            config: ``AutoencoderKLWan`` config as a dict, a ``config.json`` path or a directory holding one.
                ``None`` uses :data:`WAN21_VAE_CONFIG` with ``base_dim`` / ``z_dim`` read from the
                checkpoint. Never fetched from the Hub.
            dtype: Compute dtype.
            device: Compute device.

        Returns:
            The wrapper.

        Raises:
            UserError: On a missing file, an unreadable checkpoint or a key/shape mismatch with the config.
        """
        _, autoencoder_cls, _ = _diffusers_wan()
        try:
            from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
        except ImportError as e:  # pragma: no cover - depends on the user's environment
            raise UserError(
                f"this diffusers lacks convert_wan_vae_to_diffusers ({e})",
                hint=f"pip install 'diffusers>={_MIN_DIFFUSERS}'",
            ) from e
        path = Path(pth_path)
        if not path.is_file():
            raise UserError(
                f"Wan VAE checkpoint {path} does not exist",
                hint="run `deepforcing-eval weights download wan2.1-t2v-1.3b/vae`",
            )
        sd = _load_torch_state_dict(path)
        if "decoder.middle.0.residual.0.gamma" not in sd:
            raise UserError(
                f"{path} does not look like an original Wan VAE checkpoint (no 'decoder.middle.0.residual.0.gamma')"
            )
        cfg = _read_config(config)
        if cfg is None:
            cfg = dict(WAN21_VAE_CONFIG)
            cfg["base_dim"] = int(sd["encoder.conv1.weight"].shape[0])
            cfg["z_dim"] = int(sd["conv2.weight"].shape[0])
        cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
        converted = convert_wan_vae_to_diffusers(sd)
        with torch.device("meta"):
            vae = autoencoder_cls(**cfg)
        try:
            vae.load_state_dict(converted, strict=True, assign=True)
        except RuntimeError as e:
            raise UserError(f"{path} does not match the VAE config {cfg}: {e}") from e
        logger.info("loaded original Wan VAE from %s", path)
        return cls(vae, dtype=dtype, device=device)

    # ---------------------------------------------------------------- decoding
    def num_pixel_frames(self, num_latent_frames: int) -> int:
        """Pixel frames produced by ``num_latent_frames`` latent frames: ``1 + 4 (F - 1)``."""
        return 0 if num_latent_frames <= 0 else 1 + self.temporal_factor * (num_latent_frames - 1)

    def denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        """Undo Wan's latent normalisation.

        Args:
            latents: ``[B, F, C, h, w]`` normalised latents.

        Returns:
            ``[B, C, F, h, w]`` raw VAE latents (``z * std + mean``) in the VAE's dtype/device.
        """
        if latents.ndim != 5 or latents.shape[2] != self.z_dim:
            raise UserError(f"latents must be [B, F, {self.z_dim}, h, w], got {tuple(latents.shape)}")
        mean = self.latents_mean.to(latents.device).view(1, 1, -1, 1, 1)
        std = self.latents_std.to(latents.device).view(1, 1, -1, 1, 1)
        z = latents.float() * std + mean  # [B, F, C, h, w], fp32 de-normalisation
        return z.permute(0, 2, 1, 3, 4).to(device=self.device, dtype=self.dtype)  # [B, C, F, h, w]

    @torch.no_grad()
    def decode_full(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode a whole latent video with diffusers' own ``AutoencoderKLWan.decode``.

        Args:
            latents: ``[B, F, 16, h, w]`` normalised latents.

        Returns:
            ``[B, 1 + 4 (F - 1), 3, 8h, 8w]`` pixels in ``[-1, 1]`` (float32, on the VAE device).
        """
        z = self.denormalize(latents)  # [B, C, F, h, w]
        out = self.vae.decode(z, return_dict=False)[0]  # [B, 3, T, H, W]; diffusers clamps to [-1, 1]
        return out.clamp(-1.0, 1.0).float().permute(0, 2, 1, 3, 4)  # [B, T, 3, H, W]

    def streaming_decoder(self) -> StreamingDecoder:
        """A fresh streaming decoder (its own causal-conv cache; many may coexist)."""
        return StreamingDecoder(self)


class StreamingDecoder:
    """Decode latent chunks as they are produced, continuing the causal-conv feature cache across calls.

    Concatenating the outputs of ``dec.decode(c)`` over chunks along dim 1 equals ``vae.decode_full`` of the
    concatenated latents up to float rounding (fp32: <= ~1e-6). The first latent frame ever decoded yields 1
    pixel frame, every later one yields 4.

    Args:
        vae: The :class:`WanVAE` to decode with.
    """

    def __init__(self, vae: WanVAE):
        self._vae = vae
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next call starts a new video."""
        self._feat_cache: list = [None] * self._vae.num_decoder_convs
        self.latent_frames_seen = 0
        self.pixel_frames_emitted = 0
        self._shape: tuple[int, int, int] | None = None  # (B, h, w) fixed by the first chunk

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode the next chunk.

        Args:
            latents: ``[B, f, 16, h, w]`` normalised latents (the next ``f`` latent frames of the video).

        Returns:
            ``[B, n, 3, 8h, 8w]`` new pixel frames in ``[-1, 1]`` (float32), ``n = 4f`` (``4f - 3`` on the
            first chunk).

        Raises:
            UserError: If batch size or spatial size changes between calls.
        """
        vae = self._vae
        z = vae.denormalize(latents)  # [B, C, f, h, w]
        b, _, f, h, w = z.shape
        if self._shape is None:
            self._shape = (b, h, w)
        elif self._shape != (b, h, w):
            raise UserError(
                f"streaming VAE decode: chunk has (batch, h, w) = {(b, h, w)}, the video began with {self._shape}",
                hint="call reset() (or make a new streaming_decoder()) to start another video",
            )
        x = vae.vae.post_quant_conv(z)  # [B, C, f, h, w]; 1x1x1 conv, no temporal context
        outs = []
        for i in range(f):
            kwargs = {}
            if vae._has_first_chunk:
                kwargs["first_chunk"] = self.latent_frames_seen == 0
            out = vae.vae.decoder(x[:, :, i : i + 1], feat_cache=self._feat_cache, feat_idx=[0], **kwargs)
            outs.append(out)  # [B, 3, 1 or 4, H, W]
            self.latent_frames_seen += 1
        if not outs:
            return torch.zeros(b, 0, 3, h * vae.spatial_factor, w * vae.spatial_factor, device=vae.device)
        frames = torch.cat(outs, dim=2).clamp_(-1.0, 1.0)  # [B, 3, n, H, W]
        self.pixel_frames_emitted += frames.shape[2]
        return frames.float().permute(0, 2, 1, 3, 4)  # [B, n, 3, H, W]
