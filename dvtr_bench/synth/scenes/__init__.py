"""Overhead scene builders, one per scene kind, grouped by family behind one registry.

``base`` defines the scene interface and :func:`register_scene`; ``_draw`` holds the drawing helpers
that several families share; ``roads``, ``water``, ``land`` and ``built`` hold the builders. Importing
this package imports every family, so :data:`SCENES` is complete. See docs/synth.md, "Adding a scene".
"""

from __future__ import annotations

from typing import Callable

# The family modules register their scenes when imported; nothing else refers to them by name.
from dvtr_bench.synth.scenes import built, land, roads, water  # noqa: F401
from dvtr_bench.synth.scenes._draw import (ASPHALT, CAR_COLOURS, CONCRETE, DRY_GRASS, GRASS, GRAVEL,
                                           PARKED_COLOURS, SAND, SOIL, TREE_GREENS, WATER, wrap)
from dvtr_bench.synth.scenes.base import (DEFAULT_VIEW_HEIGHT, SCENES, Builder, Ctx, Group, Light, Scene,
                                          SceneSpec, register_scene)
from dvtr_bench.synth.scenes.built import ROOF, build_construction_site, build_residential
from dvtr_bench.synth.scenes.land import build_farmland, build_forest, build_sports_field
from dvtr_bench.synth.scenes.roads import build_parking_lot, build_railway, build_road
from dvtr_bench.synth.scenes.water import build_beach, build_bridge, build_harbour, build_river

# Views of the registry under the names the single-module scenes.py had.
BUILDERS: dict[str, Callable[[Ctx], Scene]] = {k: s.build for k, s in SCENES.items()}
LANDMARK_KINDS = {k for k, s in SCENES.items() if s.landmark}
VIEW_HEIGHT = {k: s.view_height for k, s in SCENES.items()}

__all__ = [
    "ASPHALT", "BUILDERS", "Builder", "CAR_COLOURS", "CONCRETE", "Ctx", "DEFAULT_VIEW_HEIGHT", "DRY_GRASS",
    "GRASS", "GRAVEL", "Group", "LANDMARK_KINDS", "Light", "PARKED_COLOURS", "ROOF", "SAND", "SCENES", "SOIL",
    "Scene", "SceneSpec", "TREE_GREENS", "VIEW_HEIGHT", "WATER", "build_beach", "build_bridge",
    "build_construction_site", "build_farmland", "build_forest", "build_harbour", "build_parking_lot",
    "build_railway", "build_residential", "build_river", "build_road", "build_sports_field", "register_scene",
    "wrap",
]
