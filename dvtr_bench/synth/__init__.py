"""Procedural overhead drone footage with exact ground truth: the embedded default data of dvtr.

``generate()`` writes long H.264 flights made of several takes (cuts, dissolves, fades), one caption
record per take (five captions from the take's scene graph) and a shots file with the exact frame of
every transition; ``contact_sheet()`` renders a labelled PNG of every scene kind. See docs/synth.md.
"""

from dvtr_bench.synth.camera import CAMERA_MOTIONS
from dvtr_bench.synth.contact import contact_sheet
from dvtr_bench.synth.generate import SCENE_KINDS, generate

__all__ = ["CAMERA_MOTIONS", "SCENE_KINDS", "contact_sheet", "generate"]
