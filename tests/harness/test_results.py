"""Result files: a plain tidy CSV (provenance in a JSON sidecar), optional parquet with the header in its metadata."""

import csv
import io
import json

import pytest

from deepforcing.harness.results import _csv, _parquet, _temporal_fvd, drift_key

HEADER = {"suite": "smoke", "suite_hash": "abc", "provenance": {"git": {"commit": "f00"}}}
ROWS = [
    {
        "method": "a",
        "metric": "m@x=1",
        "value": 0.5,
        "n_videos": 2,
        "n_clips": 4,
        "higher_is_better": True,
        "expected_videos": 2,
    },
    {
        "method": "a",
        "metric": drift_key("drift.first_last@window=5,abs=true", "m@x=1"),
        "value": None,
        "n_videos": 0,
        "n_clips": None,
        "higher_is_better": False,
        "expected_videos": 2,
    },
]


def test_csv_is_plain_with_one_header_line():
    import pandas as pd

    columns = tuple(ROWS[0])
    text = _csv(ROWS, columns)
    assert not any(line.startswith("#") for line in text.splitlines()) and text.splitlines()[0] == ",".join(columns)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["value"] == "0.5" and rows[1]["value"] == "" and rows[1]["metric"].endswith("[m@x=1]")
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame.columns) == list(columns) and frame["value"].isna().tolist() == [False, True]


def test_parquet_when_pyarrow_is_installed():
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(_parquet(HEADER, ROWS)))
    assert table.to_pylist() == ROWS
    assert json.loads(table.schema.metadata[b"deepforcing"])["provenance"] == HEADER["provenance"]


def test_temporal_fvd_of_identical_windows_is_zero_and_needs_clips():
    import torch

    from deepforcing.metrics.frechet import FeatureStats

    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    same = _temporal_fvd([("u1", (FeatureStats.of(x[:10]), FeatureStats.of(x[:10]))), ("u2", "too short")])
    assert (
        same["value"] == pytest.approx(0.0, abs=1e-9)
        and same["n_videos"] == 1
        and same["errors"] == {"u2": "too short"}
    )
    one = _temporal_fvd([("u1", (FeatureStats.of(x[:1]), FeatureStats.of(x[1:2])))])
    assert one["value"] != one["value"] and "at least 2 clips" in one["errors"]["*"]  # NaN, with the reason
