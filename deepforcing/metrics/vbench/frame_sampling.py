"""VBench's ``middle`` frame sampling (``get_frame_indices(sample="middle")`` in ``vbench/utils.py``).

The clip's ``vlen`` frames are cut into ``k = min(n, vlen)`` intervals at ``floor(linspace(0, vlen, k + 1))``;
the middle frame ``(a + b) // 2`` of each interval ``[a, b]`` (``b`` = next boundary − 1) is taken, and a clip
with fewer than ``n`` frames repeats its last pick until there are ``n``. The boundaries are computed with
``numpy.linspace`` in float64 as in VBench, so rounding at the boundaries is identical.
"""

from __future__ import annotations

import numpy as np


def middle_frame_indices(num_frames: int, vlen: int) -> list[int]:
    """Indices of the ``num_frames`` middle-sampled frames of a ``vlen``-frame clip.

    Args:
        num_frames: Frames wanted (VBench: 8 for ViCLIP and the CLIP score).
        vlen: Frames in the clip.

    Returns:
        ``num_frames`` indices in ``[0, vlen)``, non-decreasing.

    Raises:
        ValueError: If either count is below 1.
    """
    if num_frames < 1 or vlen < 1:
        raise ValueError(f"need num_frames >= 1 and vlen >= 1, got {num_frames}, {vlen}")
    k = min(num_frames, vlen)
    bounds = np.linspace(start=0, stop=vlen, num=k + 1).astype(int)
    picks = [int(a + (b - 1)) // 2 for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return picks + [picks[-1]] * (num_frames - k)
