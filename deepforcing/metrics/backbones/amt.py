"""AMT-S (All-pairs Multi-field Transforms, small) video frame interpolation, reading the official ``amt-s.pth``.

AMT (Li et al., CVPR 2023) predicts the frame at time ``t`` between two frames. VBench's motion_smoothness uses
the small variant with the configuration of ``AMT-S.yaml`` (correlation radius 3, 4 correlation levels, 3 flow
fields per pixel). This module is an independent implementation of that network whose parameters carry the
names of the official checkpoint, so ``amt-s.pth`` loads strictly (2,990,543 parameters).

Architecture, for an input pair padded to a multiple of 16 (``H x W``):

* ``feat_encoder`` — a RAFT-style small encoder (instance norm, bottleneck blocks) giving 84-channel features at
  ``H/8``; their all-pairs dot products (÷ √84) form a 4-level correlation pyramid, looked up in both
  directions (frame 0 → 1 and 1 → 0) in a 7 x 7 window per level;
* ``encoder`` — a 4-level convolutional pyramid (20, 32, 44, 56 channels at ``H/2 … H/16``) run on each frame;
* ``decoder4`` … ``decoder1`` — coarse-to-fine decoders predicting the flows from time ``t`` to both frames and a
  feature of the intermediate frame; after decoders 4, 3 and 2 an update block (``update4/3/2``) refines flows
  and feature from the correlation looked up at the current flows; ``decoder1`` predicts 3 flow pairs, a blend
  mask and an RGB residual per flow pair at full resolution;
* ``comb_block`` — merges the 3 warped-and-blended candidates into the output frame.

Input images are RGB in ``[0, 1]``; the pair's mean (one scalar per pair) is subtracted before and added back
after the network, and the output is clamped to ``[0, 1]``. Frames must be padded to a multiple of 16 by the
caller (:func:`pad_to_multiple`), replicate padding split evenly (AMT's ``InputPadder``).

Checkpoint format (``https://huggingface.co/lalala125/AMT/resolve/main/amt-s.pth``): a ``torch.save``-d dict whose
``state_dict`` entry holds the network's parameters (AMT's trainer also stores ``epoch`` and ``optim``). VBench
0.1.5 reads it with ``torch.load`` defaults, which with torch >= 2.6 means ``weights_only=True`` and fails on
that file (VBench PR #115 adds ``weights_only=False``); :func:`load_amt_s` tries the safe loader first and only
unpickles arbitrary objects when told the file is trusted.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AmtConfig:
    """Hyper-parameters of AMT (defaults: AMT-S as in ``AMT-S.yaml``).

    Attributes:
        corr_radius: Half-width of the correlation lookup window (window ``2r + 1`` squared).
        corr_levels: Levels of the correlation pyramid.
        num_flows: Flow fields per pixel predicted at full resolution.
        channels: Widths of the 4-level image pyramid encoder.
        skip_channels: Channels the residual blocks route through their side convolutions.
        feat_dim: Width of the correlation features (``feat_encoder`` output).
    """

    corr_radius: int = 3
    corr_levels: int = 4
    num_flows: int = 3
    channels: tuple[int, int, int, int] = (20, 32, 44, 56)
    skip_channels: int = 20
    feat_dim: int = 84


class AmtOutput(NamedTuple):
    """What one forward pass gives.

    Attributes:
        frame: ``(B, 3, H, W)`` predicted intermediate frame in ``[0, 1]``.
        flow_t0: ``(B, num_flows, 2, H, W)`` flows from time ``t`` to frame 0 (pixels, x then y).
        flow_t1: ``(B, num_flows, 2, H, W)`` flows from time ``t`` to frame 1.
        mask: ``(B, num_flows, H, W)`` blend weight of the frame-0 candidate, in ``(0, 1)``.
    """

    frame: torch.Tensor
    flow_t0: torch.Tensor
    flow_t1: torch.Tensor
    mask: torch.Tensor


# ---------------------------------------------------------------------------------------------------------------
# Sampling helpers
# ---------------------------------------------------------------------------------------------------------------


def bilinear_resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, floor(H * factor), floor(W * factor))``, bilinear, half-pixel centres."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` at ``p + flow(p)`` (bilinear, border replicate).

    Args:
        image: ``(B, C, H, W)``.
        flow: ``(B, 2, H, W)`` displacement in pixels, channel 0 along x (width), channel 1 along y.

    Returns:
        ``(B, C, H, W)``.
    """
    b, _, h, w = flow.shape
    # Normalised sampling positions of the pixel centres, -1 (first) .. 1 (last), as align_corners=True reads them.
    base_x = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(b, 1, h, w)  # (B, 1, H, W)
    base_y = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(b, 1, h, w)  # (B, 1, H, W)
    base = torch.cat([base_x, base_y], dim=1).to(image)  # (B, 2, H, W)
    step = torch.cat([flow[:, :1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], dim=1)  # (B, 2, H, W)
    grid = (base + step).permute(0, 2, 3, 1)  # (B, H, W, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def pixel_grid(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """``(B, 2, H, W)`` float pixel coordinates, channel 0 = x (column), channel 1 = y (row)."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([xs, ys], dim=0).float()[None].repeat(batch, 1, 1, 1)


def pad_to_multiple(images: torch.Tensor, divisor: int = 16) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """AMT's ``InputPadder``: replicate-pad H and W up to a multiple of ``divisor``, split evenly.

    Args:
        images: ``(B, C, H, W)``.
        divisor: The multiple (16 at full resolution; ``int(16 / scale)`` when the network runs downscaled).

    Returns:
        The padded ``(B, C, H', W')`` and the padding ``(left, right, top, bottom)`` (the extra pixel of an odd
        amount goes right / bottom).
    """
    h, w = images.shape[-2:]
    pad_h, pad_w = (-h) % divisor, (-w) % divisor
    pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    return F.pad(images, pad, mode="replicate"), pad


def unpad(images: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Crop the padding of :func:`pad_to_multiple` off ``(..., H', W')`` images."""
    left, right, top, bottom = pad
    h, w = images.shape[-2:]
    return images[..., top : h - bottom, left : w - right]


# ---------------------------------------------------------------------------------------------------------------
# Building blocks (module names follow the official checkpoint)
# ---------------------------------------------------------------------------------------------------------------


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def _conv_prelu(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Sequential:
    """Conv + per-channel PReLU (keys ``0.weight``, ``0.bias``, ``1.weight``)."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.PReLU(cout))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convolutions with parameter-free instance norm and ReLU, plus a shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1)
        self.conv3 = nn.Conv2d(mid, cout, 1)
        # The shortcut is a strided 1x1 conv + instance norm when the resolution changes (keys downsample.0.*).
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), nn.InstanceNorm2d(cout)) if stride != 1 else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, cin, H, W)`` -> ``(B, cout, H / stride, W / stride)``."""
        y = F.relu(F.instance_norm(self.conv1(x)))
        y = F.relu(F.instance_norm(self.conv2(y)))
        y = F.relu(F.instance_norm(self.conv3(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + y)


class CorrelationEncoder(nn.Module):
    """Features for the correlation volume: ``(B, 3, H, W)`` -> ``(B, feat_dim, H/8, W/8)``."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=3)
        self.layer1 = nn.Sequential(Bottleneck(32, 32, 1), Bottleneck(32, 32, 1))
        self.layer2 = nn.Sequential(Bottleneck(32, 64, 2), Bottleneck(64, 64, 1))
        self.layer3 = nn.Sequential(Bottleneck(64, 96, 2), Bottleneck(96, 96, 1))
        self.conv2 = nn.Conv2d(96, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch (both frames of a pair go through together; instance norm keeps them independent)."""
        x = F.relu(F.instance_norm(self.conv1(x)))  # (B, 32, H/2, W/2)
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, 96, H/8, W/8)
        return self.conv2(x)  # (B, feat_dim, H/8, W/8)


class PyramidEncoder(nn.Module):
    """Four stride-2 stages: ``(B, 3, H, W)`` -> features at ``H/2, H/4, H/8, H/16`` (keys ``pyramid{1..4}``)."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        self.depth = len(channels)
        cin = 3
        for i, c in enumerate(channels, start=1):
            self.add_module(f"pyramid{i}", nn.Sequential(_conv_prelu(cin, c, 3, 2, 1), _conv_prelu(c, c)))
            cin = c

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the 4 levels, finest first: ``(B, c_i, H / 2**i, W / 2**i)`` for i = 1..4."""
        levels = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"pyramid{i}")(x)
            levels.append(x)
        return levels


class SideResBlock(nn.Module):
    """Residual block whose last ``side`` channels get two extra 3x3 convolutions on the way."""

    def __init__(self, ch: int, side: int):
        super().__init__()
        self.side = side
        self.conv1 = _conv_prelu(ch, ch)
        self.conv2 = _conv_prelu(side, side)
        self.conv3 = _conv_prelu(ch, ch)
        self.conv4 = _conv_prelu(side, side)
        self.conv5 = nn.Conv2d(ch, ch, 3, padding=1)
        self.prelu = nn.PReLU(ch)

    def _side(self, x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        keep, side = x[:, : -self.side], x[:, -self.side :]  # (B, ch - side, H, W), (B, side, H, W)
        return torch.cat([keep, conv(side)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, ch, H, W)`` -> same shape."""
        y = self.conv3(self._side(self.conv1(x), self.conv2))
        y = self.conv5(self._side(y, self.conv4))
        return self.prelu(x + y)


def _decoder_block(cin: int, width: int, side: int, cout: int) -> nn.Sequential:
    """conv+PReLU to ``width``, residual block, 2x transposed conv to ``cout`` (keys ``convblock.{0,1,2}``)."""
    return nn.Sequential(_conv_prelu(cin, width), SideResBlock(width, side), nn.ConvTranspose2d(width, cout, 4, 2, 1))


class CoarsestDecoder(nn.Module):
    """From both frames' ``H/16`` features and ``t``: flows t->0, t->1 and the intermediate feature at ``H/8``."""

    def __init__(self, cin: int, cout: int, side: int):
        super().__init__()
        self.convblock = _decoder_block(2 * cin + 1, 2 * cin, side, cout + 4)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, t: torch.Tensor):
        """``f0, f1``: ``(B, cin, h, w)``; ``t``: ``(B, 1, 1, 1)``.

        Returns:
            ``flow_t0, flow_t1``: ``(B, 2, 2h, 2w)``; feature ``(B, cout, 2h, 2w)``.
        """
        out = self.convblock(torch.cat([f0, f1, t.expand(-1, 1, *f0.shape[2:])], dim=1))  # (B, cout + 4, 2h, 2w)
        return out[:, 0:2], out[:, 2:4], out[:, 4:]


class RefiningDecoder(nn.Module):
    """Warp both frames' features with the current flows and predict 2x finer flows and feature."""

    def __init__(self, cin: int, cout: int, side: int):
        super().__init__()
        self.convblock = _decoder_block(3 * cin + 4, 3 * cin, side, cout + 4)

    def forward(
        self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow_t0: torch.Tensor, flow_t1: torch.Tensor
    ):
        """All inputs at ``(h, w)``: ``ft, f0, f1`` ``(B, cin, h, w)``, flows ``(B, 2, h, w)``.

        Returns:
            ``flow_t0, flow_t1``: ``(B, 2, 2h, 2w)`` (residual on the upsampled, doubled input flows); feature
            ``(B, cout, 2h, 2w)``.
        """
        x = torch.cat([ft, backward_warp(f0, flow_t0), backward_warp(f1, flow_t1), flow_t0, flow_t1], dim=1)
        out = self.convblock(x)  # (B, cout + 4, 2h, 2w)
        up0 = out[:, 0:2] + 2.0 * bilinear_resize(flow_t0, 2.0)
        up1 = out[:, 2:4] + 2.0 * bilinear_resize(flow_t1, 2.0)
        return up0, up1, out[:, 4:]


class MultiFlowDecoder(nn.Module):
    """Finest decoder: ``num_flows`` flow pairs, blend masks and RGB residuals at full resolution."""

    def __init__(self, cin: int, side: int, num_flows: int):
        super().__init__()
        self.num_flows = num_flows
        self.convblock = _decoder_block(3 * cin + 4, 3 * cin, side, 8 * num_flows)

    def forward(
        self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow_t0: torch.Tensor, flow_t1: torch.Tensor
    ):
        """Inputs at ``H/2`` (``(B, cin, h, w)``, flows ``(B, 2, h, w)``).

        Returns:
            ``flow_t0, flow_t1`` ``(B, 2n, H, W)`` (n flow pairs, x/y interleaved per pair); ``mask``
            ``(B, n, H, W)`` after the sigmoid; ``residual`` ``(B, 3n, H, W)``.
        """
        n = self.num_flows
        x = torch.cat([ft, backward_warp(f0, flow_t0), backward_warp(f1, flow_t1), flow_t0, flow_t1], dim=1)
        out = self.convblock(x)  # (B, 8n, H, W): 2n flow t->0, 2n flow t->1, n mask logits, 3n residual
        d0, d1, logits, residual = out[:, : 2 * n], out[:, 2 * n : 4 * n], out[:, 4 * n : 5 * n], out[:, 5 * n :]
        up0 = d0 + 2.0 * bilinear_resize(flow_t0, 2.0).repeat(1, n, 1, 1)
        up1 = d1 + 2.0 * bilinear_resize(flow_t1, 2.0).repeat(1, n, 1, 1)
        return up0, up1, torch.sigmoid(logits), residual


class FlowUpdate(nn.Module):
    """Residual update of flows and intermediate feature from the bidirectional correlation (at ``H/8``).

    ``scale`` is the factor between the decoder's resolution and ``H/8`` (None for 1): the feature is resized
    down before and the predicted deltas back up after (flow deltas also multiplied by ``scale``).
    """

    def __init__(self, feat_ch: int, corr_planes: int, scale: int | None, hidden: int = 76):
        super().__init__()
        self.scale = scale
        self.convc1 = nn.Conv2d(2 * corr_planes, 64, 1)
        self.convf1 = nn.Conv2d(4, 40, 7, padding=3)
        self.convf2 = nn.Conv2d(40, 20, 3, padding=1)
        self.conv = nn.Conv2d(64 + 20, 68, 3, padding=1)
        lrelu = nn.LeakyReLU(0.1)
        self.gru = nn.Sequential(
            nn.Conv2d(68 + 4 + feat_ch, hidden, 3, padding=1), lrelu, nn.Conv2d(hidden, hidden, 3, padding=1)
        )
        self.feat_head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1), lrelu, nn.Conv2d(hidden, feat_ch, 3, padding=1)
        )
        self.flow_head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1), lrelu, nn.Conv2d(hidden, 4, 3, padding=1)
        )

    def forward(self, feat: torch.Tensor, flows: torch.Tensor, corr: torch.Tensor):
        """``feat`` ``(B, C, s*h, s*w)``; ``flows`` ``(B, 4, h, w)`` (t->0 then t->1); ``corr`` ``(B, 2P, h, w)``.

        Returns:
            ``delta_feat`` ``(B, C, s*h, s*w)`` and ``delta_flows`` ``(B, 4, s*h, s*w)``.
        """
        if self.scale is not None:
            feat = bilinear_resize(feat, 1 / self.scale)  # (B, C, h, w)
        cor = _lrelu(self.convc1(corr))  # (B, 64, h, w)
        flo = _lrelu(self.convf2(_lrelu(self.convf1(flows))))  # (B, 20, h, w)
        motion = _lrelu(self.conv(torch.cat([cor, flo], dim=1)))  # (B, 68, h, w)
        hidden = self.gru(torch.cat([motion, flows, feat], dim=1))  # (B, hidden, h, w)
        d_feat, d_flow = self.feat_head(hidden), self.flow_head(hidden)
        if self.scale is not None:
            d_feat = bilinear_resize(d_feat, self.scale)
            d_flow = self.scale * bilinear_resize(d_flow, self.scale)
        return d_feat, d_flow


class BidirectionalCorrelation:
    """All-pairs correlation of two ``(B, D, h, w)`` feature maps, pooled into ``levels`` levels, both ways."""

    def __init__(self, fmap0: torch.Tensor, fmap1: torch.Tensor, levels: int, radius: int):
        self.levels, self.radius = levels, radius
        b, d, h, w = fmap0.shape
        corr = torch.matmul(fmap0.view(b, d, h * w).transpose(1, 2), fmap1.view(b, d, h * w))  # (B, hw0, hw1)
        corr = corr.view(b, h, w, 1, h, w) / torch.sqrt(torch.tensor(d).float())
        # Forward: for each frame-0 cell, a map over frame-1 cells; backward: the transpose.
        fwd = corr.reshape(b * h * w, 1, h, w)  # (B*h*w, 1, h, w)
        bwd = corr.permute(0, 4, 5, 3, 1, 2).reshape(b * h * w, 1, h, w)  # (B*h*w, 1, h, w)
        self.fwd, self.bwd = [fwd], [bwd]
        for _ in range(levels - 1):
            self.fwd.append(F.avg_pool2d(self.fwd[-1], 2, stride=2))
            self.bwd.append(F.avg_pool2d(self.bwd[-1], 2, stride=2))

    def _window(self, pyramid: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        """Sample each level in a ``(2r+1)^2`` window around ``coords`` (``(B, 2, h, w)``, pixels at level 0)."""
        b, _, h, w = coords.shape
        r = self.radius
        k = 2 * r + 1
        steps = torch.linspace(-r, r, k, device=coords.device)
        # Window offset (i, j) moves x by steps[i] and y by steps[j] (RAFT's ordering: channel i * k + j).
        offsets = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).view(1, k, k, 2)  # (1, k, k, 2)
        centre = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)  # (B*h*w, 1, 1, 2) as (x, y)
        out = []
        for level, volume in enumerate(pyramid):
            pos = centre / 2**level + offsets  # (B*h*w, k, k, 2)
            vh, vw = volume.shape[-2:]
            gx, gy = pos.split([1, 1], dim=-1)
            grid = torch.cat([2 * gx / (vw - 1) - 1, 2 * gy / (vh - 1) - 1], dim=-1)
            sampled = F.grid_sample(volume, grid, align_corners=True)  # (B*h*w, 1, k, k), zeros outside
            out.append(sampled.view(b, h, w, k * k))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous().float()  # (B, levels * k^2, h, w)

    def __call__(self, coords0: torch.Tensor, coords1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Look up the forward volume at ``coords0`` and the backward volume at ``coords1`` (both ``(B, 2, h, w)``)."""
        return self._window(self.fwd, coords0), self._window(self.bwd, coords1)


# ---------------------------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------------------------


class AmtS(nn.Module):
    """AMT-S frame interpolation network (parameter names as in ``amt-s.pth``)."""

    def __init__(self, config: AmtConfig = AmtConfig()):
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.channels
        side, n = config.skip_channels, config.num_flows
        corr_planes = config.corr_levels * (2 * config.corr_radius + 1) ** 2
        self.feat_encoder = CorrelationEncoder(config.feat_dim)
        self.encoder = PyramidEncoder(config.channels)
        self.decoder4 = CoarsestDecoder(c4, c3, side)
        self.decoder3 = RefiningDecoder(c3, c2, side)
        self.decoder2 = RefiningDecoder(c2, c1, side)
        self.decoder1 = MultiFlowDecoder(c1, side, n)
        self.update4 = FlowUpdate(c3, corr_planes, None)
        self.update3 = FlowUpdate(c2, corr_planes, 2)
        self.update2 = FlowUpdate(c1, corr_planes, 4)
        self.comb_block = nn.Sequential(
            nn.Conv2d(3 * n, 6 * n, 3, padding=1), nn.PReLU(6 * n), nn.Conv2d(6 * n, 3, 3, padding=1)
        )

    def check_size(self, height: int, width: int) -> None:
        """Reject working sizes the network cannot handle (the reference would fail or return NaN).

        Sides must be multiples of 16, and the coarsest correlation level (``H/8`` halved ``corr_levels - 1``
        times) needs at least 2 cells: with 1 cell the lookup divides by ``size - 1 = 0``. For AMT-S that means
        at least 128 px per side.

        Raises:
            UserError: If the size is not usable.
        """
        coarsest = [s // 8 // 2 ** (self.config.corr_levels - 1) for s in (height, width)]
        if height % 16 or width % 16 or min(coarsest) < 2:
            raise UserError(
                f"AMT-S cannot run on {height}x{width} px (after padding/scaling): sides must be multiples of 16 and "
                f">= {2 * 8 * 2 ** (self.config.corr_levels - 1)} px (the coarsest correlation level needs 2 cells)",
                "motion_smoothness needs frames at least 128 px on each side",
            )

    @staticmethod
    def _lookup(corr, grid, flow_t0, flow_t1, t, down: int):
        """Correlation at the positions the flows from ``t`` imply for frame 0 -> 1 and 1 -> 0, at ``H/8``.

        Under linear motion, ``flow_t1 / t`` is the flow 0 -> 1 and ``flow_t0 / (1 - t)`` the flow 1 -> 0.

        Returns:
            ``(B, 2P, h8, w8)`` correlation features and the ``(B, 4, h8, w8)`` flows they were looked up at.
        """
        if down != 1:
            flow_t0 = bilinear_resize(flow_t0, 1 / down) * (1 / down)
            flow_t1 = bilinear_resize(flow_t1, 1 / down) * (1 / down)
        corr0, corr1 = corr(grid + flow_t1 * (1.0 / t), grid + flow_t0 * (1.0 / (1.0 - t)))
        return torch.cat([corr0, corr1], dim=1), torch.cat([flow_t0, flow_t1], dim=1)

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, t: float | torch.Tensor = 0.5, scale: float = 1.0
    ) -> AmtOutput:
        """Predict the frame at time ``t``.

        Args:
            img0: ``(B, 3, H, W)`` RGB in ``[0, 1]``, ``H`` and ``W`` multiples of ``16 / scale``.
            img1: Same shape.
            t: Time in ``(0, 1)``, a float or a ``(B, 1, 1, 1)`` / ``(1, 1, 1, 1)`` tensor.
            scale: Run the network on images resized by this factor (VBench: 1 unless VRAM is short).

        Returns:
            :class:`AmtOutput` at full resolution.
        """
        cfg = self.config
        b = img0.shape[0]
        t = torch.as_tensor(t, dtype=img0.dtype, device=img0.device).reshape(-1, 1, 1, 1).expand(b, 1, 1, 1)
        # One mean per pair: over channels, then rows, then columns of both frames stacked along H.
        mean = torch.cat([img0, img1], 2).mean(1, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)  # (B,1,1,1)
        img0, img1 = img0 - mean, img1 - mean
        x0 = bilinear_resize(img0, scale) if scale != 1.0 else img0  # (B, 3, h, w)
        x1 = bilinear_resize(img1, scale) if scale != 1.0 else img1
        h, w = x0.shape[-2:]
        self.check_size(h, w)
        grid = pixel_grid(b, h // 8, w // 8, img0.device)  # (B, 2, h/8, w/8)

        fmap0, fmap1 = self.feat_encoder(torch.cat([x0, x1], dim=0)).split([b, b], dim=0)  # (B, 84, h/8, w/8) each
        corr = BidirectionalCorrelation(fmap0, fmap1, cfg.corr_levels, cfg.corr_radius)
        f0 = self.encoder(x0)  # [(B, 20, h/2), (B, 32, h/4), (B, 44, h/8), (B, 56, h/16)]
        f1 = self.encoder(x1)

        # Level 4 -> 3: initial flows and feature at h/8, refined with the correlation.
        flow0, flow1, ft = self.decoder4(f0[3], f1[3], t)  # (B, 2, h/8, w/8) x2, (B, 44, h/8, w/8)
        cf, fl = self._lookup(corr, grid, flow0, flow1, t, 1)
        d_ft, d_flow = self.update4(ft, fl, cf)
        flow0, flow1, ft = flow0 + d_flow[:, :2], flow1 + d_flow[:, 2:], ft + d_ft

        # h/8 -> h/4.
        flow0, flow1, ft = self.decoder3(ft, f0[2], f1[2], flow0, flow1)  # (B, 2, h/4, w/4) x2, (B, 32, h/4, w/4)
        cf, fl = self._lookup(corr, grid, flow0, flow1, t, 2)
        d_ft, d_flow = self.update3(ft, fl, cf)
        flow0, flow1, ft = flow0 + d_flow[:, :2], flow1 + d_flow[:, 2:], ft + d_ft

        # h/4 -> h/2.
        flow0, flow1, ft = self.decoder2(ft, f0[1], f1[1], flow0, flow1)  # (B, 2, h/2, w/2) x2, (B, 20, h/2, w/2)
        cf, fl = self._lookup(corr, grid, flow0, flow1, t, 4)
        d_ft, d_flow = self.update2(ft, fl, cf)
        flow0, flow1, ft = flow0 + d_flow[:, :2], flow1 + d_flow[:, 2:], ft + d_ft

        # h/2 -> h: n flow pairs, masks, residuals.
        flow0, flow1, mask, residual = self.decoder1(ft, f0[0], f1[0], flow0, flow1)  # (B, 2n, h, w) ...
        if scale != 1.0:
            flow0 = bilinear_resize(flow0, 1.0 / scale) * (1.0 / scale)
            flow1 = bilinear_resize(flow1, 1.0 / scale) * (1.0 / scale)
            mask = bilinear_resize(mask, 1.0 / scale)
            residual = bilinear_resize(residual, 1.0 / scale)
        frame = self._combine(img0, img1, flow0, flow1, mask, residual, mean)
        n = cfg.num_flows
        hh, ww = frame.shape[-2:]
        return AmtOutput(frame, flow0.reshape(b, n, 2, hh, ww), flow1.reshape(b, n, 2, hh, ww), mask)

    def _combine(self, img0, img1, flow0, flow1, mask, residual, mean) -> torch.Tensor:
        """Warp both (mean-free) frames with each flow pair, blend, add residual and mean, merge the candidates.

        Shapes: images ``(B, 3, H, W)``, flows ``(B, 2n, H, W)``, mask ``(B, n, H, W)``, residual ``(B, 3n, H, W)``,
        mean ``(B, 1, 1, 1)``. Returns ``(B, 3, H, W)`` clamped to ``[0, 1]``.
        """
        b, _, h, w = flow0.shape
        n = self.config.num_flows

        def rep(x: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B*n, ...), each item n times in a row
            return x.unsqueeze(1).expand(b, n, *x.shape[1:]).reshape(b * n, *x.shape[1:])

        m = mask.reshape(b * n, 1, h, w)
        warped0 = backward_warp(rep(img0), flow0.reshape(b * n, 2, h, w))  # (B*n, 3, H, W)
        warped1 = backward_warp(rep(img1), flow1.reshape(b * n, 2, h, w))
        candidates = m * warped0 + (1 - m) * warped1 + rep(mean) + residual.reshape(b * n, 3, h, w)
        candidates = candidates.reshape(b, n, 3, h, w)
        frame = candidates.mean(1) + self.comb_block(candidates.view(b, 3 * n, h, w))
        return frame.clamp(0, 1)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint
# ---------------------------------------------------------------------------------------------------------------


def _read_checkpoint(path: Path, trust_pickle: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_pickle:
            try:
                names = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(path)) or "unknown"
            except Exception:  # noqa: BLE001 - only used to word the error
                names = "unknown"
            raise UserError(
                f"{path} holds Python objects besides tensors ({names}); the safe loader refused it",
                "if the file comes from the official source (huggingface.co/lalala125/AMT), set "
                "trust_pickle=True (MotionSmoothnessConfig.trust_pickle; in the harness: DEEPFORCING_TRUST_PICKLE=1) "
                "to unpickle it",
            ) from err
    logger.warning("unpickling %s with weights_only=False (trusted by configuration)", path)
    return torch.load(path, map_location="cpu", weights_only=False)


def load_amt_s(path: str | Path, config: AmtConfig = AmtConfig(), *, trust_pickle: bool = False) -> AmtS:
    """Load ``amt-s.pth`` (a dict with a ``state_dict`` entry, as AMT's trainer saves) strictly.

    Args:
        path: The checkpoint. A bare state dict is accepted too.
        config: Architecture; must match the checkpoint (keys and shapes are checked).
        trust_pickle: Allow ``weights_only=False`` when the safe loader refuses the file (it may contain
            pickled optimiser / numpy objects). Only for files from a trusted source.

    Returns:
        The model in eval mode, on CPU, float32.

    Raises:
        UserError: If the file is missing, refused by the safe loader, or does not match the architecture.
    """
    p = require_file(path, "AMT-S")
    ckpt = _read_checkpoint(p, trust_pickle)
    if not isinstance(ckpt, dict):
        raise UserError(f"{p} is not an AMT checkpoint (got {type(ckpt).__name__}, expected a dict)", "use amt-s.pth")
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict) or not any(str(k).startswith("feat_encoder.") for k in state):
        raise UserError(
            f"{p} has no AMT state dict (no 'state_dict' entry with feat_encoder.* tensors)", "use amt-s.pth"
        )
    model = AmtS(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{what} ({len(keys)}): {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong))
            if keys
        )
        raise UserError(f"{p} does not match AMT {config}: {details}", "use amt-s.pth (the AMT-S checkpoint)")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()
