"""imaging_quality: our MUSIQ port equals vbench 0.1.5 + pyiqa 0.1.10's MUSIQ on random full-size weights.

The checkpoint is written in pyiqa's format (plain state dict, pyiqa's parameter names); see
``parity/tiny.py``. VBench keeps per-video values on a 0–100 scale; our rows are ÷100.
"""

import json
from pathlib import Path

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.backbones.musiq import MusiqConfig, _hashed_positions, load_musiq
from deepforcing.metrics.base import score_video
from deepforcing.metrics.vbench.imaging_quality import ImagingQuality, ImagingQualityConfig, imaging_transform
from tests.metrics.parity import vbench_ref
from tests.metrics.parity.setup import build_musiq_scenario

pytest.importorskip("torchvision")
FIXTURE = json.loads((Path(__file__).parent / "parity" / "fixtures" / "vbench_parity.json").read_text())
TOL = 1e-4


@pytest.fixture(scope="module")
def musiq(tmp_path_factory):
    path, clips, sha = build_musiq_scenario(tmp_path_factory.mktemp("musiq"))
    for key, digest in sha.items():
        assert digest == FIXTURE["sha256"][key], f"seeded {key} changed; regenerate the fixture"
    return path, clips


@pytest.fixture(scope="module")
def ours(musiq):
    path, clips = musiq
    metric = ImagingQuality(ImagingQualityConfig(str(path)))
    rows = {name: score_video(name, frames, 1.0, [metric], duration_s=len(frames)) for name, frames in clips.items()}
    return metric, rows


def test_matches_vbench_fixture(ours):
    metric, rows = ours
    expected = FIXTURE["dimensions"]["imaging_quality"]
    per = {name: r[0].value * 100 for name, r in rows.items()}
    diff = max(abs(per[k] - v) for k, v in expected["per_video_0_100"].items())
    assert diff <= TOL, f"max |ours - vbench| (0-100 scale) = {diff:.3g}"
    suite = aggregate([r for rs in rows.values() for r in rs], metric.id).value
    assert abs(suite - expected["aggregate"]) <= TOL


def test_live_matches_vbench(musiq, ours):
    path, clips = musiq
    agg, ref = vbench_ref.ref_imaging_quality(clips, path)
    _, rows = ours
    assert max(abs(rows[k][0].value * 100 - ref[k]) for k in ref) <= TOL


def test_longer_side_preprocessing():
    frames = torch.zeros(2, 24, 520, 3, dtype=torch.uint8)
    assert imaging_transform(frames).shape == (2, 3, 23, 512)  # int(512 / 520 * 24) = 23
    assert imaging_transform(torch.full((1, 40, 56, 3), 255, dtype=torch.uint8)).max() == 1.0
    assert imaging_transform(frames, "shorter").shape == (2, 3, 24, 520)  # shorter side 24 <= 512: untouched


def test_hashed_positions_cover_the_grid():
    pos = _hashed_positions(10, 2, 3)
    assert pos.tolist() == [0, 3, 6, 50, 53, 56]  # nearest-neighbour rows (0, 5) x columns (0, 3, 6)
    assert _hashed_positions(10, 10, 10).tolist() == list(range(100))


def test_loader_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_musiq(tmp_path / "musiq.pth")
    torch.save({"conv_root.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="does not match MUSIQ"):
        load_musiq(tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="1-output"):
        MusiqConfig(num_class=10)


def test_id_matches_metadata(ours):
    import yaml

    meta = yaml.safe_load((Path(__file__).parents[2] / "eval" / "metrics.yaml").read_text())
    assert next(m["id"] for m in meta["metrics"] if m["name"] == "imaging_quality") == ours[0].id
