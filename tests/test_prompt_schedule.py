"""Prompt schedules: formats, imports (Infinity-RoPE syntax, LongLive JSONL), validation, generation."""

import json

import pytest

from deepforcing.cli import main
from deepforcing.errors import UserError
from deepforcing.prompt_schedule import (
    PromptSchedule,
    ScheduleSegment,
    load_schedules,
    parse_infinity_rope,
    parse_longlive,
    segments_metadata,
)


def test_infinity_rope_syntax_as_its_code_reads_it():
    s = parse_infinity_rope("a cat walks[6s] | a cat jumps[3s#] | a cat sleeps")
    assert [seg.prompt for seg in s.segments] == ["a cat walks", "a cat jumps", "a cat sleeps"]
    assert [seg.latent_frames for seg in s.segments] == [24, 12, 42]  # int(N*16/12) chunks; default 14 chunks
    assert [seg.switch for seg in s.segments] == [None, "flush", "cut"]  # '#' cuts the boundary AFTER its scene
    resolved = s.resolve(3, switch="keep")
    assert [(r.start_frame, r.switch) for r in resolved] == [(0, None), (24, "flush"), (36, "cut")]


def test_longlive_jsonl_switches_at_the_first_chunk_at_or_after_each_index(tmp_path):
    s = parse_longlive(["a", "b", "c", "d", "e", "f"])
    assert [r.start_frame for r in s.resolve(3)] == [0, 42, 81, 120, 162, 201]
    path = tmp_path / "interactive.jsonl"
    path.write_text(json.dumps({"prompts": ["a", "b"]}) + "\n" + json.dumps({"prompts": ["c", "d"]}) + "\n")
    schedules = load_schedules(path, switch_frame_indices=(40,), num_output_frames=60)
    assert [[r.start_frame for r in s.resolve(3)] for s in schedules] == [[0, 42], [0, 42]]
    with pytest.raises(UserError, match="3 prompts need 2 switch frame indices"):
        parse_longlive(["a", "b", "c"], (40,))


def test_every_problem_is_listed_and_the_total_must_be_whole_chunks():
    bad = PromptSchedule((ScheduleSegment(" ", seconds=1), ScheduleSegment("b", seconds=0), ScheduleSegment("c")))
    with pytest.raises(UserError) as err:
        bad.resolve(3)
    assert "3 problem(s)" in str(err.value) and "prompt is empty" in str(err.value)
    assert "seconds 0 is not a positive duration" in str(err.value) and "exactly one of" in str(err.value)
    with pytest.raises(UserError, match=r"20 latent frames \(5 s\), is not a whole number of 3-frame chunks.*18 or 21"):
        PromptSchedule((ScheduleSegment("a", seconds=2), ScheduleSegment("b", seconds=3))).resolve(3)


def test_metadata_gives_segments_in_seconds_and_the_switch_frames():
    s = PromptSchedule((ScheduleSegment("a", seconds=10), ScheduleSegment("b", seconds=20)))  # 40 + 80 frames
    meta = segments_metadata(s.resolve(3, "recache"))
    assert meta["switch_frames"] == [42]  # 40 is not a chunk boundary: the switch happens at 42 (LongLive's rule)
    assert [(m["prompt"], m["start_s"], m["end_s"], m["switch"]) for m in meta["segments"]] == [
        ("a", 0.0, (1 + 4 * 41) / 16, None),  # latent frame 42 starts at video frame 165
        ("b", (1 + 4 * 41) / 16, (1 + 4 * 119) / 16, "recache"),
    ]


@pytest.mark.parametrize(
    ("method", "switch"),
    [
        ("self-forcing", "keep"),
        ("sink-longlive", "flush"),
        ("deep-forcing", "flush-paper"),
        ("infinity-rope", "cut"),
        ("sink-longlive", "recache"),
    ],
)
def test_generate_with_a_prompt_schedule_in_every_switch_mode(tmp_path, capsys, method, switch):
    path = tmp_path / "schedule.yaml"
    path.write_text("- {prompt: a red ball, latent_frames: 12}\n- {prompt: a blue cube, latent_frames: 15}\n")
    code = main(["-q", "generate", "--method", method, "--prompt-schedule", str(path), "--switch", switch, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["latent_frames"] == 27 and out["switch_frames"] == [12]
    assert out["segments"][1]["switch"] == switch and out["segments"][1]["prompt"] == "a blue cube"


def test_generate_refuses_a_mode_the_method_does_not_define(tmp_path, capsys):
    path = tmp_path / "schedule.yaml"
    path.write_text("- {prompt: a, latent_frames: 6}\n- {prompt: b, latent_frames: 6}\n")
    code = main(["-q", "generate", "--method", "deep-forcing", "--prompt-schedule", str(path), "--switch", "cut"])
    assert code == 2 and "'cut' is not defined for cache policy 'participative-compression'" in capsys.readouterr().err


def test_the_text_encoder_runs_once_per_distinct_prompt():
    from deepforcing.pipeline import VideoGenerator

    gen = VideoGenerator("tiny", "self-forcing", device="cpu")
    seen = []
    encode = gen.text_encoder.encode
    gen.text_encoder.encode = lambda prompts: seen.append(tuple(prompts)) or encode(prompts)
    s = PromptSchedule(
        (
            ScheduleSegment("a", latent_frames=3),
            ScheduleSegment("b", latent_frames=3),
            ScheduleSegment("a", latent_frames=3),
        )
    )
    result = gen.generate("", num_latent_frames=9, schedule=s)
    assert seen == [("a",), ("b",)] and result.prompts["switch_frames"] == [3, 6]
