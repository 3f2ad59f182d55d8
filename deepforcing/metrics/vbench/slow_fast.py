"""VBench-Long slow–fast fusion for subject_consistency and background_consistency.

VBench-Long (``vbench2_beta_long``, ``fuse_inclip_clip2clip``) scores a long video's consistency twice:

* **slow / in-clip**: the usual VBench consistency inside each 2-s clip, averaged over the video's clips;
* **fast / clip-to-clip**: the same formula on a "video" made of the first frame of every clip (one frame per
  clip). Videos with a single clip have no clip-to-clip score.

The clip-to-clip score ``c`` is mapped onto the in-clip score distribution by piece-wise linear interpolation
in a 101-entry quantile table (keys ``0.00, 0.01, …, 1.00``; ``c <= 0`` maps to the first value, ``c >= 1`` to
the last), and the per-video score is ``w_in * inclip + w_c2c * mapped`` — or just ``inclip`` when the mapped
value is 0 (no clip-to-clip score, or ``c <= 0``). The dimension is the mean over videos.

The tables below are the numbers of ``vbench2_beta_long/configs/subject_mapping_table.yaml`` and
``background_mapping_table.yaml`` (Vchitect/VBench at 45e79ec, data copied as published). Weights:
``w_in = w_c2c = 0.5`` for both dimensions (``configs/slow_fast_params.yaml``, what ``--dev_flag`` uses);
without ``--dev_flag`` VBench-Long forces ``w_in = 1, w_c2c = 0`` (no fusion), which is our default (the
option is off).

Differences from VBench-Long that are protocol choices, recorded in the metric id:

* feature extractor of the fast branch: the in-clip backbone (DINO ViT-B/16 for subject, CLIP ViT-B/32 for
  background), i.e. VBench-Long's non-dev extractors ``dino`` / ``clip``; the dev defaults (DINOv2 ViT-B/14,
  DreamSim) are not ported. The first frames' features are the clips' own first-frame features, so the fast
  branch costs no extra backbone pass;
* VBench-Long writes the first frames into an mp4 (lossy) and decodes it again; here the decoded frames are
  used directly.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.consistency import consistency

# fmt: off
#: ``subject_mapping_table.yaml`` values at keys ``i / 100``, ``i = 0..100``.
SUBJECT_MAPPING: tuple[float, ...] = (
    0.0, 0.655812085783768, 0.706856949045235, 0.731659342416906, 0.73660992057736, 0.749101188592094,
    0.761032814753647, 0.774597183768173, 0.784555729997569, 0.792953568694271, 0.802689699298385, 0.808076071440993,
    0.816204790771909, 0.824219815909538, 0.830472157111834, 0.835419531889346, 0.83907681617532, 0.841978081155746,
    0.84679192068861, 0.850625540675788, 0.852853044011848, 0.854691139482507, 0.858132224563246, 0.863729405870906,
    0.866102417035313, 0.870585293424396, 0.872331870277398, 0.874960548804337, 0.878698116066965, 0.88170792606262,
    0.885683841036798, 0.887194775904732, 0.890181215752347, 0.8940085858716, 0.896727529739295, 0.899204109394038,
    0.901872688917701, 0.902930005754908, 0.904255123199727, 0.906709500890894, 0.909197403281584, 0.911998758637682,
    0.914120648767612, 0.917820970919085, 0.920037992613574, 0.922367310037017, 0.923878218312373, 0.92612833568708,
    0.928554265517505, 0.931094522914667, 0.932674917380015, 0.933938855974875, 0.935219359871336, 0.93807406531488,
    0.939675705126034, 0.941552521922844, 0.944195698642471, 0.946289318094669, 0.947781123820032, 0.949137334918494,
    0.951897174598649, 0.953055388977942, 0.954985032256127, 0.956199606401013, 0.957250230848176, 0.958689000129844,
    0.960455895301363, 0.961342514244196, 0.962936044827203, 0.964827439510959, 0.966785529778715, 0.968174134640714,
    0.969813944137392, 0.971409261937727, 0.972530004578652, 0.973668488824432, 0.974642341870362, 0.976008729176383,
    0.977155875644753, 0.978418810979857, 0.979501010595634, 0.980594016861641, 0.981990506802626, 0.983434155927019,
    0.98433502683478, 0.985466305825542, 0.986316598986252, 0.987193187882002, 0.98770020514925, 0.988262855586541,
    0.988710454351168, 0.989251092021853, 0.989782759199991, 0.990371501103215, 0.991172390892083, 0.992180427851925,
    0.992921150016265, 0.99326859591264, 0.994591460602974, 0.995516073547993, 1.0,
)

#: ``background_mapping_table.yaml`` values at keys ``i / 100``, ``i = 0..100``.
BACKGROUND_MAPPING: tuple[float, ...] = (
    0.0, 0.873691544930448, 0.88392356992722, 0.888340769126807, 0.894395017892299, 0.899626435216563,
    0.903145754159405, 0.905965662216789, 0.907634139293668, 0.909681980518171, 0.912059260929028, 0.914872300522044,
    0.916864571230313, 0.91899572410357, 0.920360080000968, 0.921301105005809, 0.922499725160567, 0.923335310160083,
    0.924364064416312, 0.925033502674768, 0.926479836367157, 0.927276633706106, 0.927840039415505, 0.928488115842048,
    0.929855989179899, 0.93043699722034, 0.930961847243739, 0.931837518457107, 0.932535174404531, 0.933476108636716,
    0.934152037140137, 0.934940306892267, 0.935567840962271, 0.936222006721211, 0.936694266597276, 0.937215165488639,
    0.937728512599245, 0.938159241463336, 0.938786767968952, 0.939348915468468, 0.939684244791667, 0.940032821879841,
    0.940740896511102, 0.941350394558482, 0.941967580545604, 0.942834956146721, 0.943218163003486, 0.944092961790763,
    0.944922112017493, 0.945415133617351, 0.946057962880035, 0.946612672064614, 0.947050138277014, 0.947583230961948,
    0.948510612332171, 0.949047688928156, 0.94972291646495, 0.950246513321392, 0.950660608096114, 0.951255542174994,
    0.951911455307578, 0.952366960064065, 0.952950734149077, 0.953568790040828, 0.954187246845146, 0.954717288560225,
    0.955338935014846, 0.95590276685144, 0.956451298452427, 0.957104193394171, 0.957455075099245, 0.957910428567971,
    0.958549581538052, 0.959168784695327, 0.959610176825136, 0.960120447751259, 0.960917058501969, 0.961979166666667,
    0.962551626948586, 0.963566142505003, 0.964157551579041, 0.964602080408437, 0.964906362961529, 0.965452531951975,
    0.966266180226084, 0.967015800998096, 0.968036075575297, 0.969119242996385, 0.969973438912019, 0.970532389196844,
    0.971717108527789, 0.972427724793442, 0.973225634097437, 0.974180063197941, 0.975258326374096, 0.976684089973857,
    0.978594319850568, 0.980095581086206, 0.981866938883779, 0.985895411744772, 1.0,
)
# fmt: on

MAPPINGS = {"subject": SUBJECT_MAPPING, "background": BACKGROUND_MAPPING}
_KEYS = tuple(i / 100 for i in range(101))


def map_clip2clip(score: float, table: Sequence[float]) -> float:
    """Map a clip-to-clip score onto the in-clip scale through a 101-entry quantile table.

    Args:
        score: Clip-to-clip consistency.
        table: Values at keys ``0.00 .. 1.00`` (step 0.01).

    Returns:
        The table value at the nearest keys, linearly interpolated; the first / last value outside ``(0, 1)``.
    """
    if len(table) != len(_KEYS):
        raise ValueError(f"a mapping table has {len(_KEYS)} values, got {len(table)}")
    i = bisect_left(_KEYS, score)
    if i == 0:
        return table[0]
    if i == len(_KEYS):
        return table[-1]
    k0, k1 = _KEYS[i - 1], _KEYS[i]
    return table[i - 1] + (table[i] - table[i - 1]) * (score - k0) / (k1 - k0)


def fuse(inclip: float, mapped: float, w_inclip: float, w_clip2clip: float) -> float:
    """VBench-Long's fused score: ``w_in * inclip + w_c2c * mapped``, or ``inclip`` when ``mapped == 0``."""
    return inclip * w_inclip + mapped * w_clip2clip if mapped != 0.0 else inclip


@dataclass(frozen=True)
class SlowFastConfig:
    """Slow–fast fusion of a consistency dimension (VBench-Long ``--dev_flag`` weights by default).

    Attributes:
        table: Which mapping table: ``subject`` or ``background``.
        w_inclip: Weight of the in-clip (slow) score.
        w_clip2clip: Weight of the mapped clip-to-clip (fast) score.
    """

    table: Literal["subject", "background"]
    w_inclip: float = 0.5
    w_clip2clip: float = 0.5

    def __post_init__(self) -> None:
        if self.table not in MAPPINGS:
            raise ValueError(f"table must be one of {sorted(MAPPINGS)}, got {self.table!r}")
        if self.w_inclip < 0 or self.w_clip2clip < 0:
            raise ValueError(f"weights must be >= 0, got {self.w_inclip}, {self.w_clip2clip}")

    @property
    def protocol(self) -> dict[str, object]:
        """Protocol entries appended to the dimension's metric id."""
        return {"fast": "first_frames", "map": "vbench_long", "w_in": self.w_inclip, "w_c2c": self.w_clip2clip}


def slow_fast_scores(
    metric: str, clip_features: Sequence[torch.Tensor], clip_indices: Sequence[int], config: SlowFastConfig
) -> list[ClipScore]:
    """Fused rows of one video from its clips' per-frame features.

    Each clip's row value is ``fuse(inclip_clip, mapped)``. Fusion is affine in the in-clip score, so the plain
    mean of the rows over the video's clips (VBench-Long's clip → video reduction) is exactly VBench-Long's
    per-video ``fuse(mean_clips inclip, mapped)``.

    Args:
        metric: Id of the fused rows.
        clip_features: Per clip, ``(T_c, D)`` per-frame features (``T_c >= 2``).
        clip_indices: The clips' indices.
        config: Weights and table.

    Returns:
        One row per clip; ``extra`` holds ``inclip``, ``clip2clip`` (NaN for a one-clip video) and ``mapped``.
    """
    if len(clip_features) > 1:
        firsts = torch.stack([f[0] for f in clip_features])  # (K, D): the first frame of every clip
        c2c = consistency(firsts)[0]
        mapped = map_clip2clip(c2c, MAPPINGS[config.table])
    else:
        c2c, mapped = math.nan, 0.0
    out = []
    for feats, index in zip(clip_features, clip_indices, strict=True):
        inclip, pairs = consistency(feats)
        value = fuse(inclip, mapped, config.w_inclip, config.w_clip2clip)
        out.append(ClipScore(metric, index, value, pairs, {"inclip": inclip, "clip2clip": c2c, "mapped": mapped}))
    return out


def consistency_video_scores(
    features: Callable[[torch.Tensor], torch.Tensor],
    frames: torch.Tensor,
    clips: Sequence[ClipSpan],
    inclip_id: str,
    fused_id: str,
    config: SlowFastConfig,
) -> list[ClipScore]:
    """In-clip rows and fused rows of one video (each clip through the backbone once).

    Args:
        features: The dimension's backbone: ``(T, H, W, 3)`` uint8 frames → ``(T, D)`` features.
        frames: ``(T, H, W, 3)`` uint8 frames of the whole video.
        clips: The video's clip spans.
        inclip_id: Id of the plain in-clip rows (the dimension's usual id).
        fused_id: Id of the fused rows.
        config: Fusion weights and table.

    Returns:
        The in-clip rows, then the fused rows.
    """
    feats = [features(frames[span.start : span.stop]) for span in clips]  # each (T_c, D)
    indices = [span.index for span in clips]
    inclip = [ClipScore(inclip_id, i, *consistency(f)) for f, i in zip(feats, indices, strict=True)]
    return inclip + slow_fast_scores(fused_id, feats, indices, config)
