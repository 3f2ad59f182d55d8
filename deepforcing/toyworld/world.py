"""The toy world: procedural scenes of bouncing coloured shapes, their captions, and a deterministic renderer.

A scene is drawn from a small grammar:

* a background — a solid named colour, or a horizontal cosine gradient between two named colours, optionally
  scrolling sideways (the "camera pan");
* 1–2 shapes (circle, square, triangle), each of a distinct named colour, moving with constant velocity and
  bouncing off the walls (shapes pass through each other; later shapes are drawn on top);
* optionally a slow periodic lighting change (all colours scaled by ``1 + a·sin(2πt/P)``).

Everything the caption says is in :class:`CaptionSpec` (colours, shapes, background, pan, lighting): a caption
parses back into the same spec, so metrics can check a generated video against its prompt alone. What the
caption leaves open (sizes, starting positions, velocities) is in :class:`Scene`, drawn from a seed. Shapes start
in distinct cells of a 3×3 grid (uniformly inside the cell), so they do not start on top of each other.

Why the caption does not name where a shape starts (an earlier grammar did, "a red circle from the top left"):
the DiT knows positions only through RoPE, which makes attention depend on *relative* positions, and it has no
absolute position embedding; a frame of noise on a solid background gives a token nothing that says where in the
frame it is. Measured on a teacher trained 1500 steps with that grammar: from pure noise its x0 prediction put
the red mass of "a red circle from the {top left, top right, bottom left, bottom right, center}" at the same
centroid (x 15.8–16.2, y 15.5–15.6 px of 32) for all five regions. The caption named something the model could
not draw, so it was dropped; where a shape appears is the sampler's (and the noise's) choice, as on the real
model.

Time is in frames; one video frame is one latent frame of the toy model (see ``deepforcing.toyworld.autoencoder``).
Frame ``t`` of a scene is a closed-form function of ``t`` (positions fold back into the box), so any frame
range renders directly and identically.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from deepforcing.errors import UserError

#: Bright named colours of the shapes (RGB 0–255).
SHAPE_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (60, 90, 245),
    "yellow": (240, 220, 40),
    "cyan": (40, 220, 230),
    "magenta": (225, 50, 225),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
}
#: Dark named colours of the background (RGB 0–255); two words where the name has two.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (12, 12, 12),
    "dark blue": (20, 28, 90),
    "dark green": (18, 70, 32),
    "dark red": (85, 20, 20),
    "gray": (100, 100, 100),
    "purple": (60, 25, 85),
}
SHAPE_KINDS = ("circle", "square", "triangle")
#: Colour of the walls (the frame's border when ``WorldConfig.border`` > 0): light gray, far from every named
#: colour (nearest: white, 113 RGB units; gray, 139).
WALL_COLOUR: tuple[int, int, int] = (180, 180, 180)
#: Shapes start in distinct cells of a START_GRID × START_GRID grid (uniformly inside the cell).
START_GRID = 3
PAN_DIRECTIONS = ("left", "right")
#: Every caption word; the toy text encoder's vocabulary is built from this tuple (order matters).
CAPTION_WORDS: tuple[str, ...] = (
    "a",
    "an",
    "and",
    "bouncing",
    "on",
    "background",
    "gradient",
    "from",
    "to",
    "the",
    "camera",
    "pans",
    "light",
    "pulses",
    "dark",
    *SHAPE_KINDS,
    *PAN_DIRECTIONS,
    *sorted({w for name in (*SHAPE_COLOURS, *BACKGROUND_COLOURS) for w in name.split()} - {"dark"}),
)


@dataclass(frozen=True)
class WorldConfig:
    """Rendering and sampling settings of the world (the distribution the toy model is trained on).

    Attributes:
        size: Frame width and height in pixels.
        supersample: Each pixel is the mean of ``supersample²`` point samples (anti-aliased edges).
        radius_range: Shape radius in pixels (circumradius; a square's half side is 0.85·r).
        speed_range: Shape speed in pixels per frame.
        max_shapes: At most this many shapes (at least one).
        p_gradient: Probability of a gradient background.
        p_pan: Probability that a gradient background scrolls (camera pan).
        p_lighting: Probability of the periodic lighting change.
        pan_speed: Gradient scroll speed in pixels per frame.
        lighting_amplitude: Relative amplitude ``a`` of the lighting change.
        lighting_period: Period ``P`` of the lighting change in frames.
        border: Width in pixels of the walls drawn around the frame in :data:`WALL_COLOUR` (0 = none); shapes
            bounce off their inner side. A visible, fixed frame gives every token a cue of where it is (the DiT
            has no absolute position signal).
    """

    size: int = 32
    supersample: int = 2
    radius_range: tuple[float, float] = (5.0, 8.0)
    speed_range: tuple[float, float] = (0.6, 1.4)
    max_shapes: int = 2
    p_gradient: float = 0.3
    p_pan: float = 0.5
    p_lighting: float = 0.2
    pan_speed: float = 0.5
    lighting_amplitude: float = 0.2
    lighting_period: float = 30.0
    border: int = 2

    def __post_init__(self) -> None:
        if self.size < 8 or self.size % 4:
            raise ValueError(f"size must be a multiple of 4 and >= 8, got {self.size}")
        if not 1 <= self.max_shapes <= min(len(SHAPE_COLOURS), START_GRID**2):
            raise ValueError(f"max_shapes must be in 1..{START_GRID**2}, got {self.max_shapes}")
        if not 0 <= self.border < self.size / 4:
            raise ValueError(f"border must be in [0, size/4), got {self.border}")
        if not 0 < self.radius_range[0] <= self.radius_range[1] < self.size / 2 - self.border:
            raise ValueError(f"radius_range {self.radius_range} must lie in (0, size/2 - border)")


@dataclass(frozen=True)
class ShapeSpec:
    """A shape as the caption names it.

    Attributes:
        kind: ``circle``, ``square`` or ``triangle``.
        colour: A name in :data:`SHAPE_COLOURS`.
    """

    kind: str
    colour: str


@dataclass(frozen=True)
class CaptionSpec:
    """Everything a caption states about a scene.

    Attributes:
        shapes: The shapes, in drawing order (later on top); their colours are distinct.
        background: Background colour name (the left colour of a gradient).
        background_to: Right colour of a gradient, or None for a solid background.
        pan: ``left`` / ``right`` for a scrolling gradient, None for a still one.
        lighting: Whether the periodic lighting change is on.
    """

    shapes: tuple[ShapeSpec, ...]
    background: str
    background_to: str | None = None
    pan: str | None = None
    lighting: bool = False

    def __post_init__(self) -> None:
        if not self.shapes:
            raise UserError("a scene needs at least one shape")
        colours = [s.colour for s in self.shapes]
        if len(set(colours)) != len(colours):
            raise UserError(f"shape colours must be distinct, got {colours}")
        for s in self.shapes:
            if s.kind not in SHAPE_KINDS:
                raise UserError(f"unknown shape '{s.kind}'", f"choose one of: {', '.join(SHAPE_KINDS)}")
            if s.colour not in SHAPE_COLOURS:
                raise UserError(f"unknown shape colour '{s.colour}'", f"choose one of: {', '.join(SHAPE_COLOURS)}")
        for bg in (self.background, self.background_to):
            if bg is not None and bg not in BACKGROUND_COLOURS:
                raise UserError(f"unknown background colour '{bg}'", f"choose one of: {', '.join(BACKGROUND_COLOURS)}")
        if self.pan is not None and (self.background_to is None or self.pan not in PAN_DIRECTIONS):
            raise UserError("a camera pan needs a gradient background and a direction 'left' or 'right'")

    @property
    def caption(self) -> str:
        """The caption, e.g. ``a red circle and a blue square bouncing on a dark green background``."""
        objects = [f"{_article(s.colour)} {s.colour} {s.kind}" for s in self.shapes]
        listed = objects[0] if len(objects) == 1 else ", ".join(objects[:-1]) + " and " + objects[-1]
        if self.background_to is None:
            where = f"on a {self.background} background"
        else:
            where = f"on a gradient from {self.background} to {self.background_to}"
        text = f"{listed} bouncing {where}"
        if self.pan is not None:
            text += f", the camera pans {self.pan}"
        if self.lighting:
            text += ", the light pulses"
        return text


@dataclass(frozen=True)
class ShapeState:
    """Instance parameters of one shape that the caption leaves open.

    Attributes:
        radius: Circumradius in pixels.
        x0: Centre column at frame 0 (pixels, inside ``[radius, size − radius]``, inside its start cell).
        y0: Centre row at frame 0.
        vx: Velocity in pixels per frame along columns.
        vy: Velocity in pixels per frame along rows.
    """

    radius: float
    x0: float
    y0: float
    vx: float
    vy: float


@dataclass(frozen=True)
class Scene:
    """A fully specified scene: the caption's spec plus per-shape state; renders deterministically.

    Attributes:
        spec: What the caption says.
        states: One state per shape of ``spec.shapes``.
        world: World settings (size, pan speed, lighting period …).
        seed: The seed it was drawn from (-1 if built by hand).
    """

    spec: CaptionSpec
    states: tuple[ShapeState, ...]
    world: WorldConfig = WorldConfig()
    seed: int = -1

    @property
    def caption(self) -> str:
        """The scene's caption."""
        return self.spec.caption

    def centres(self, frames: torch.Tensor) -> torch.Tensor:
        """Shape centres at the given frame indices: frames [T] -> [T, K, 2] (x, y) in pixels, float64."""
        t = frames.to(torch.float64)[:, None]  # [T, 1]
        out = []
        for st in self.states:
            lo, hi = self.world.border + st.radius, self.world.size - self.world.border - st.radius
            x = _fold(st.x0 + st.vx * t, lo, hi)  # [T, 1]
            y = _fold(st.y0 + st.vy * t, lo, hi)
            out.append(torch.cat([x, y], dim=1))
        return torch.stack(out, dim=1)

    def render(self, num_frames: int, start: int = 0) -> torch.Tensor:
        """Render frames ``start .. start + num_frames − 1``.

        Returns:
            uint8 [T, H, W, 3] RGB.
        """
        return render_scene(self, torch.arange(start, start + num_frames))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _fold(p: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Position of a point bouncing between lo and hi whose unfolded position is p (triangle wave)."""
    span = hi - lo
    u = torch.remainder(p - lo, 2 * span)
    return lo + torch.where(u <= span, u, 2 * span - u)


def background_image(spec: CaptionSpec, world: WorldConfig, frames: torch.Tensor, oversample: int = 1) -> torch.Tensor:
    """Background colour at every pixel before lighting: frames [T] -> float64 [T, H·o, W·o, 3] in 0–255."""
    img = _floor_image(spec, world, frames, oversample)  # [T, n, n, 3]
    w = world.border * oversample
    if w:
        wall = torch.tensor(WALL_COLOUR, dtype=torch.float64)
        img[:, :w], img[:, -w:], img[:, :, :w], img[:, :, -w:] = wall, wall, wall, wall
    return img


def _floor_image(spec: CaptionSpec, world: WorldConfig, frames: torch.Tensor, oversample: int) -> torch.Tensor:
    """The captioned background without the walls: float64 [T, H·o, W·o, 3]."""
    n = world.size * oversample
    a = torch.tensor(BACKGROUND_COLOURS[spec.background], dtype=torch.float64)
    if spec.background_to is None:
        return a.expand(len(frames), n, n, 3).clone()
    b = torch.tensor(BACKGROUND_COLOURS[spec.background_to], dtype=torch.float64)
    x = (torch.arange(n, dtype=torch.float64) + 0.5) / oversample  # [W·o] pixel coordinates
    offset = torch.zeros(len(frames), dtype=torch.float64)
    if spec.pan is not None:
        # The camera pans right -> the scene slides left: the gradient is sampled further right over time.
        offset = frames.to(torch.float64) * world.pan_speed * (1.0 if spec.pan == "right" else -1.0)
    phase = 2 * math.pi * (x[None, :] + offset[:, None]) / (2 * world.size)  # [T, W·o]
    g = 0.5 - 0.5 * torch.cos(phase)  # 0 at the left edge, 1 at the right edge at frame 0
    row = a + (b - a) * g[..., None]  # [T, W·o, 3]
    return row[:, None, :, :].expand(len(frames), n, n, 3).clone()


def lighting_factor(spec: CaptionSpec, world: WorldConfig, frames: torch.Tensor) -> torch.Tensor:
    """Brightness factor per frame: frames [T] -> float64 [T] (ones when the lighting change is off)."""
    t = frames.to(torch.float64)
    if not spec.lighting:
        return torch.ones_like(t)
    return 1.0 + world.lighting_amplitude * torch.sin(2 * math.pi * t / world.lighting_period)


def shape_masks(scene: Scene, frames: torch.Tensor, oversample: int = 1) -> torch.Tensor:
    """Point-sampled coverage of each shape: frames [T] -> bool [T, K, H·o, W·o] (pixel-centre samples)."""
    n = scene.world.size * oversample
    coords = (torch.arange(n, dtype=torch.float64) + 0.5) / oversample
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # [n, n]
    centres = scene.centres(frames)  # [T, K, 2]
    masks = []
    for k, (shape, st) in enumerate(zip(scene.spec.shapes, scene.states, strict=True)):
        dx = xx[None] - centres[:, k, 0, None, None]  # [T, n, n]
        dy = yy[None] - centres[:, k, 1, None, None]
        r = st.radius
        if shape.kind == "circle":
            m = dx.square() + dy.square() <= r * r
        elif shape.kind == "square":
            m = torch.maximum(dx.abs(), dy.abs()) <= 0.85 * r
        else:  # upward equilateral triangle inscribed in the circle of radius r
            half = r * math.sqrt(3) / 2
            m = (dy <= r / 2) & (dy >= -r + dx.abs() * 1.5 * r / half)
        masks.append(m)
    return torch.stack(masks, dim=1)


def render_scene(scene: Scene, frames: torch.Tensor) -> torch.Tensor:
    """Render the given frame indices of a scene: frames [T] -> uint8 [T, H, W, 3]."""
    o = scene.world.supersample
    img = background_image(scene.spec, scene.world, frames, o)  # [T, n, n, 3]
    masks = shape_masks(scene, frames, o)  # [T, K, n, n]
    for k, shape in enumerate(scene.spec.shapes):
        colour = torch.tensor(SHAPE_COLOURS[shape.colour], dtype=torch.float64)
        img = torch.where(masks[:, k, :, :, None], colour, img)
    img = img * lighting_factor(scene.spec, scene.world, frames)[:, None, None, None]
    n = scene.world.size
    img = img.reshape(len(frames), n, o, n, o, 3).mean(dim=(2, 4))  # box filter down to [T, H, W, 3]
    return img.round().clamp(0, 255).to(torch.uint8)


def sample_spec(rng: random.Random, world: WorldConfig) -> CaptionSpec:
    """Draw a caption spec from the grammar with ``rng``."""
    count = rng.randint(1, world.max_shapes)
    colours = rng.sample(sorted(SHAPE_COLOURS), count)
    shapes = tuple(ShapeSpec(rng.choice(SHAPE_KINDS), c) for c in colours)
    background = rng.choice(sorted(BACKGROUND_COLOURS))
    background_to = pan = None
    if rng.random() < world.p_gradient:
        background_to = rng.choice(sorted(set(BACKGROUND_COLOURS) - {background}))
        if rng.random() < world.p_pan:
            pan = rng.choice(PAN_DIRECTIONS)
    lighting = rng.random() < world.p_lighting
    return CaptionSpec(shapes, background, background_to, pan, lighting)


def sample_states(rng: random.Random, spec: CaptionSpec, world: WorldConfig) -> tuple[ShapeState, ...]:
    """Draw sizes, initial positions and velocities for the shapes of ``spec``.

    Each shape starts in its own cell of a :data:`START_GRID` × :data:`START_GRID` grid, uniformly over the part of
    the cell where the whole shape fits in the frame.
    """
    states = []
    cells = rng.sample(range(START_GRID**2), len(spec.shapes))
    cell = world.size / START_GRID
    for index in cells:
        r = rng.uniform(*world.radius_range)
        speed = rng.uniform(*world.speed_range)
        angle = rng.uniform(0, 2 * math.pi)
        col, row = index % START_GRID, index // START_GRID
        lo, hi = world.border + r, world.size - world.border - r
        x0 = rng.uniform(max(col * cell, lo), min((col + 1) * cell, hi))
        y0 = rng.uniform(max(row * cell, lo), min((row + 1) * cell, hi))
        states.append(ShapeState(radius=r, x0=x0, y0=y0, vx=speed * math.cos(angle), vy=speed * math.sin(angle)))
    return tuple(states)


def sample_scene(seed: int, world: WorldConfig | None = None, spec: CaptionSpec | None = None) -> Scene:
    """A scene drawn deterministically from ``seed`` (the spec too, unless given).

    Args:
        seed: Any integer; the same seed always gives the same scene.
        world: World settings (default :class:`WorldConfig`).
        spec: Fix what the caption says and draw only the instance parameters.
    """
    world = world or WorldConfig()
    rng = random.Random(f"toyworld-scene-{seed}")
    spec = spec or sample_spec(rng, world)
    return Scene(spec, sample_states(rng, spec, world), world, seed)


def caption_words(caption: str) -> list[str]:
    """Lower-case words of a caption (commas dropped)."""
    return caption.lower().replace(",", " ").split()


def parse_caption(caption: str) -> CaptionSpec:
    """Parse a caption of the grammar back into its spec (inverse of :attr:`CaptionSpec.caption`).

    Raises:
        UserError: The caption is not one the grammar produces (names the first problem).
    """
    words = caption_words(caption)
    pos = 0

    def expect(word: str) -> None:
        nonlocal pos
        if pos >= len(words) or words[pos] != word:
            got = words[pos] if pos < len(words) else "end of caption"
            raise UserError(f"toy caption: expected '{word}' at word {pos + 1}, got '{got}'", _GRAMMAR_HINT)
        pos += 1

    def colour(table: dict[str, tuple[float, ...]]) -> str:
        nonlocal pos
        for n in (2, 1):
            name = " ".join(words[pos : pos + n])
            if len(words[pos : pos + n]) == n and name in table:
                pos += n
                return name
        got = words[pos] if pos < len(words) else "end of caption"
        raise UserError(f"toy caption: expected a colour ({', '.join(table)}), got '{got}'", _GRAMMAR_HINT)

    shapes = []
    while True:
        if pos < len(words) and words[pos] == "an":
            pos += 1
        else:
            expect("a")
        c = colour(SHAPE_COLOURS)
        if pos >= len(words) or words[pos] not in SHAPE_KINDS:
            raise UserError(f"toy caption: expected a shape ({', '.join(SHAPE_KINDS)}) after '{c}'", _GRAMMAR_HINT)
        shapes.append(ShapeSpec(words[pos], c))
        pos += 1
        if pos < len(words) and words[pos] == "and":
            pos += 1
            continue
        if pos < len(words) and words[pos] in ("a", "an"):
            continue
        break
    expect("bouncing")
    expect("on")
    expect("a")
    background_to = pan = None
    if pos < len(words) and words[pos] == "gradient":
        pos += 1
        expect("from")
        background = colour(BACKGROUND_COLOURS)
        expect("to")
        background_to = colour(BACKGROUND_COLOURS)
    else:
        background = colour(BACKGROUND_COLOURS)
        expect("background")
    lighting = False
    while pos < len(words):
        expect("the")
        if pos < len(words) and words[pos] == "camera":
            pos += 1
            expect("pans")
            if pos >= len(words) or words[pos] not in PAN_DIRECTIONS:
                raise UserError("toy caption: 'the camera pans' needs 'left' or 'right'", _GRAMMAR_HINT)
            pan = words[pos]
            pos += 1
        else:
            expect("light")
            expect("pulses")
            lighting = True
    return CaptionSpec(tuple(shapes), background, background_to, pan, lighting)


_GRAMMAR_HINT = (
    "toy captions read like 'a red circle and a blue square bouncing on a dark green background' "
    "(see `deepforcing-eval toyworld captions`)"
)
