"""The vbench-long-exact clip protocol through the harness: re-encoded clips, ids that say so, the mean over clips."""

import json
import math

from deepforcing.cli import main
from deepforcing.files import read_jsonl
from deepforcing.paths import project_root


def test_exact_protocol_tags_ids_and_averages_all_clips(tmp_path):
    suite = (project_root() / "eval" / "suites" / "smoke-tiny.yaml").read_text()
    path = tmp_path / "exact.yaml"
    path.write_text(suite.replace("name: smoke-tiny", "name: exact") + "\nclip_protocol: vbench-long-exact\n")
    argv = ["-q", "--suite", str(path), "--methods", "self-forcing", "--metrics", "temporal_flickering"]
    assert main([*argv, "--num-latent-frames", "21", "--out", str(tmp_path / "runs"), "--no-report"]) == 0
    run = tmp_path / "runs" / "exact" / "tiny"
    agg = json.loads((run / "results" / "aggregate.json").read_text())
    (mid,) = [k for k in agg["results"]["self-forcing"] if "[" not in k]  # (the others are its drift summaries)
    assert mid.endswith(",clips=vbench_long_exact") and agg["suite_config"]["clip_protocol"] == "vbench-long-exact"
    clips = [r["value"] for r in read_jsonl(run / "results" / "clips.jsonl")[1] if r["metric"] == mid]
    assert len(clips) > 2  # 2 prompts x several 2-s clips
    assert agg["results"]["self-forcing"][mid]["value"] == math.fsum(clips) / len(clips)  # VBench-Long: all clips
