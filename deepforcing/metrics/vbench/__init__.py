"""VBench dimensions, one file each, numerically equal to ``vbench``'s own dimension functions.

Each dimension reproduces VBench 0.1.5's preprocessing (``vbench/utils.py`` transforms applied to float32
frames in 0–255, as ``load_video`` returns them), backbone and formula for one clip; the VBench-Long protocol
(clip split, clip mean per video, video mean per suite) comes from :mod:`deepforcing.metrics.clips` and
:mod:`deepforcing.metrics.aggregate`. Differences from VBench that do not change the number: frames are
batched through the backbone, no gradients are tracked, frames come from one shared decode.
"""
