"""What a scene is and how it is registered.

A builder receives the take's camera trajectory, so it can lay its main feature (road, river, railway)
along the flight line and put landmarks where the camera looks for most of the take. It returns a
:class:`Scene`: the map, the movers, caption groups and attributes; the scene graph in the annotations
is derived from it. :func:`register_scene` puts a builder into :data:`SCENES`, the one list of scene
kinds that flight planning, captions and the contact sheet read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from dvtr_bench.synth import movers as mv
from dvtr_bench.synth.camera import Camera
from dvtr_bench.synth.world import Canvas


@dataclass
class Group:
    """A set of similar objects captions can talk about ("three white boats move along the river")."""

    type: str                      # singular noun: "car", "boat", "person"
    plural: str                    # "cars", "boats", "people"
    members: list[int]             # indices into Scene.movers (static items have movers without parts)
    moving: bool
    verb: str = ""                 # third-person plural phrase: "drive along the road"
    verb_one: str = ""             # singular: "drives along the road"
    colour_salient: bool = True    # colour words are visually reliable for this group
    as_one: bool = False           # the members form one object (a train's wagons)
    colour_in: bool = False        # say "players in red" rather than "red players"


@dataclass
class Light:
    gain: np.ndarray               # per-channel multiplier (lighting colour and strength)
    sun: np.ndarray                # world shadow offset per metre of object height
    time_of_day: str
    contrast: float = 1.0          # < 1: flat overcast light, > 1: hard low sun


@dataclass
class Scene:
    kind: str
    canvas: Canvas
    movers: list[mv.Mover] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    phrases: list[str] = field(default_factory=list)   # extra true statements ("a river runs through the forest")


@dataclass
class Ctx:
    rng: np.random.Generator
    cam: Camera
    canvas: Canvas
    fps: float
    light: Light

    @property
    def n(self) -> int:
        return self.cam.n

    @property
    def t(self) -> np.ndarray:
        return (np.arange(self.n) - self.n // 2) / self.fps

    def main_direction(self) -> np.ndarray:
        """Direction of travel of the camera (or a random one when it does not travel)."""
        m = self.cam.motion
        mid = self.n // 2
        if m == "forward":
            return self.cam.up(mid)
        if m in ("pan_left", "pan_right"):
            return self.cam.right(mid)
        a = self.rng.uniform(-np.pi, np.pi)
        return np.array([np.cos(a), np.sin(a)])

    def shadow(self, height: float) -> np.ndarray:
        return self.light.sun * height

    def static(self, type_: str, colour: str, centre: np.ndarray, radius: float) -> mv.Mover:
        """A static item tracked for captions only (it is painted into the map, not drawn per frame)."""
        pos = np.repeat(np.asarray(centre, np.float64)[None], self.n, 0)
        return mv.Mover(type_, colour, pos, np.zeros(self.n), [], radius)


Builder = Callable[[Ctx], Scene]

# Ground height of the image (metres) a take of a kind is flown at when the kind does not say otherwise.
DEFAULT_VIEW_HEIGHT = (48.0, 80.0)


@dataclass(frozen=True)
class SceneSpec:
    """One registered scene kind: its builder and the per-kind facts the rest of the generator needs."""

    kind: str                      # the record's label, e.g. "parking_lot"
    build: Builder
    order: int                     # position in SCENE_KINDS (see register_scene)
    noun: str                      # caption noun phrase when the builder sets no "_kind_nps": "a parking lot"
    word: str                      # the words every caption of the kind contains: "parking lot"
    view_height: tuple[float, float] = DEFAULT_VIEW_HEIGHT   # range the take's image height is drawn from
    landmark: bool = False         # the subject is one place: the camera must not travel far from it


# Every registered kind, always sorted by SceneSpec.order.
SCENES: dict[str, SceneSpec] = {}


def register_scene(kind: str, *, order: int, noun: str, word: str | None = None,
                   view_height: tuple[float, float] = DEFAULT_VIEW_HEIGHT,
                   landmark: bool = False) -> Callable[[Builder], Builder]:
    """Decorator that adds a scene builder to :data:`SCENES` under ``kind``.

    ``order`` fixes the kind's position in the registry instead of the order in which family modules
    happen to be imported: flight plans pick a kind by its index in that list, so moving a kind would
    change every seed's footage. A new kind takes the next unused number. ``word`` defaults to the kind
    with spaces for underscores.
    """
    def add(build: Builder) -> Builder:
        if kind in SCENES:
            raise ValueError(f"scene kind {kind!r} is registered twice")
        taken = {s.order: s.kind for s in SCENES.values()}
        if order in taken:
            raise ValueError(f"scene kind {kind!r}: order {order} is already used by {taken[order]!r}")
        spec = SceneSpec(kind, build, order, noun, word if word is not None else kind.replace("_", " "),
                         view_height, landmark)
        ordered = sorted([*SCENES.values(), spec], key=lambda s: s.order)
        SCENES.clear()
        SCENES.update((s.kind, s) for s in ordered)
        return build
    return add
