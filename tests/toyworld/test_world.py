import random

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.toyworld.text import ToyTextEncoder, default_vocab
from deepforcing.toyworld.world import (
    BACKGROUND_COLOURS,
    SHAPE_COLOURS,
    WALL_COLOUR,
    CaptionSpec,
    Scene,
    ShapeSpec,
    ShapeState,
    WorldConfig,
    parse_caption,
    sample_scene,
)


def test_renderer_is_deterministic_and_any_range_renders_identically():
    a = sample_scene(3).render(30)
    b = sample_scene(3).render(30)
    assert a.dtype == torch.uint8 and a.shape == (30, 32, 32, 3)
    assert torch.equal(a, b)
    assert torch.equal(sample_scene(3).render(10, start=20), a[20:])
    assert not torch.equal(sample_scene(4).render(30), a)


def test_seed_fixes_scene_and_independent_of_global_rng():
    torch.manual_seed(0)
    random.seed(0)
    s1 = sample_scene(11)
    torch.manual_seed(1)
    random.seed(1)
    assert sample_scene(11) == s1


@pytest.mark.parametrize("seed", range(40))
def test_caption_round_trips_and_names_the_parameters(seed):
    scene = sample_scene(seed)
    spec = scene.spec
    assert parse_caption(scene.caption) == spec
    words = scene.caption.replace(",", "").split()
    cells = set()
    for shape, state in zip(spec.shapes, scene.states, strict=True):
        assert f"{shape.colour} {shape.kind}" in scene.caption
        # Shapes start inside the frame, each in its own cell of the 3x3 start grid.
        assert state.radius <= state.x0 <= 32 - state.radius and state.radius <= state.y0 <= 32 - state.radius
        cells.add((int(state.x0 // (32 / 3)), int(state.y0 // (32 / 3))))
    assert len(cells) == len(spec.shapes)
    assert len(spec.shapes) == len(scene.states) == sum(w in ("circle", "square", "triangle") for w in words)
    assert spec.background in scene.caption
    assert ("gradient" in words) == (spec.background_to is not None)
    assert ("camera" in words) == (spec.pan is not None)
    assert ("light" in words) == spec.lighting


def test_caption_text_and_colours_in_the_image():
    spec = CaptionSpec((ShapeSpec("circle", "red"), ShapeSpec("square", "blue")), "dark green")
    assert spec.caption == ("a red circle and a blue square bouncing on a dark green background")
    states = (ShapeState(5, 8, 8, 1, 0), ShapeState(5, 24, 24, 0, 1))
    frame = Scene(spec, states).render(1)[0]
    assert frame[8, 8].tolist() == list(SHAPE_COLOURS["red"])
    assert frame[24, 24].tolist() == list(SHAPE_COLOURS["blue"])
    assert frame[2, 29].tolist() == list(BACKGROUND_COLOURS["dark green"])
    assert frame[0, 31].tolist() == frame[1, 16].tolist() == list(WALL_COLOUR)  # the walls, 2 px wide
    three = CaptionSpec(
        (
            ShapeSpec("circle", "orange"),
            ShapeSpec("square", "blue"),
            ShapeSpec("triangle", "red"),
        ),
        "black",
        "gray",
        "left",
        True,
    )
    assert three.caption == (
        "an orange circle, a blue square and a red triangle bouncing on a gradient from black to gray, the camera "
        "pans left, the light pulses"
    )
    assert parse_caption(three.caption) == three


def test_shapes_bounce_inside_the_frame():
    scene = sample_scene(5)
    centres = scene.centres(torch.arange(500))  # [T, K, 2]
    for k, st in enumerate(scene.states):
        assert centres[:, k].min() >= st.radius - 1e-9
        assert centres[:, k].max() <= 32 - st.radius + 1e-9
    speed = (centres[1:] - centres[:-1]).norm(dim=-1)
    assert speed.max() <= WorldConfig().speed_range[1] + 1e-9


def test_walls_are_drawn_and_shapes_bounce_off_their_inner_side():
    world = WorldConfig(border=2)
    for seed in range(8):
        scene = sample_scene(seed, world)
        frames = scene.render(60).to(torch.int64)  # [T, 32, 32, 3]
        edge = torch.cat([frames[:, :2].flatten(1, 2), frames[:, -2:].flatten(1, 2)], 1)  # top and bottom rows
        edge = torch.cat([edge, frames[:, :, :2].flatten(1, 2), frames[:, :, -2:].flatten(1, 2)], 1)
        if not scene.spec.lighting:
            assert (edge == torch.tensor(WALL_COLOUR)).all()
        centres = scene.centres(torch.arange(500))  # [T, K, 2]
        for k, st in enumerate(scene.states):
            assert centres[:, k].min() >= 2 + st.radius - 1e-9
            assert centres[:, k].max() <= 30 - st.radius + 1e-9
            # It reaches both walls of at least one axis within 500 frames.
            assert (centres[:, k].min(0).values < 2 + st.radius + 1).any()
    with pytest.raises(ValueError, match="border"):
        WorldConfig(border=8)


@pytest.mark.parametrize(
    ("caption", "needle"),
    [
        ("a red blob bouncing on a black background", "expected a shape"),
        ("a pink circle bouncing on a black background", "expected a colour"),
        ("a red circle bouncing on a red background", "expected a colour"),
        ("a red circle and a red square bouncing on a black background", "distinct"),
        ("a red circle from the top left bouncing on a black background", "expected 'bouncing'"),
        ("a red circle bouncing on a black background, the camera pans left", "gradient"),
        ("a red circle jumping on a black background", "expected 'bouncing'"),
    ],
)
def test_bad_captions_fail_loudly(caption, needle):
    with pytest.raises(UserError, match=needle):
        parse_caption(caption)


def test_text_encoder_makes_one_token_per_phrase_and_rejects_captions_outside_the_grammar():
    enc = ToyTextEncoder(default_vocab(), 8, 7)
    captions = [sample_scene(s).caption for s in range(50)]
    ids = enc.tokenize(captions)
    assert ids.shape == (50, 7, 3)
    out = enc(ids)
    assert out.shape == (50, 7, 8)
    assert torch.all(out[~(ids != 0).any(-1)] == 0)  # absent phrases are padding rows
    caption = (
        "an orange circle, a blue square and a red triangle bouncing on a gradient from black to dark blue, the "
        "camera pans left, the light pulses"
    )
    tokens = enc.encode([caption])[0]
    emb, pos = enc.token_embedding.weight, enc.position_embedding

    def phrase(*words):
        return sum(emb[enc.index[w]] for w in words)

    # Each token binds one phrase's words: a shape's colour and kind go into its own slot.
    expected = [
        phrase("orange", "circle"),
        phrase("blue", "square"),
        phrase("red", "triangle"),
        phrase("black"),
        phrase("dark", "blue", "gradient"),
        phrase("pans", "left"),
        phrase("light", "pulses"),
    ]
    for slot, value in enumerate(expected):
        torch.testing.assert_close(tokens[slot], value + pos[slot])
    assert torch.all(enc.encode([""]) == 0)  # the unconditional caption of guidance
    with pytest.raises(UserError, match="toy caption"):
        enc.tokenize(["a purple elephant"])
