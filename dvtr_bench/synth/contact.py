"""A labelled contact sheet: a few frames of one take of every scene kind, so readers can see the footage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dvtr_bench.progress import Progress, ProgressFn, no_progress
from dvtr_bench.synth.generate import SCENE_KINDS, TakePlan, build_take, render_take
from dvtr_bench.synth.scenes import SCENES

# One camera motion per kind, so the sheet also shows the motions (frames are first / middle / last).
_MOTIONS = ("forward", "hover", "pan_left", "rotate", "descend", "hover", "ascend", "rotate", "hover",
            "forward", "pan_right", "rotate")


def contact_sheet(path: str | Path, seed: int = 0, resolution: tuple[int, int] = (640, 360),
                  fps: float = 25.0, take_s: float = 6.0, frames_per_kind: int = 3,
                  thumb_width: int = 208, columns: int = 2, progress: ProgressFn | None = None) -> Path:
    """Render ``frames_per_kind`` frames of a ``take_s`` second take of each scene kind into a PNG.

    Frames are rendered exactly as ``generate`` renders them (before encoding). The PNG is stored
    with a 256-colour palette to stay small enough for a repository (< 1 MB at the defaults).
    """
    from PIL import Image

    progress = progress or no_progress
    width, height = resolution
    thumb_h = int(round(thumb_width * height / width))
    label_h = 18
    n = max(3, int(round(take_s * fps)))
    picks = np.linspace(0, n - 1, frames_per_kind).round().astype(int)
    blocks = []
    progress(Progress("sheet", completed=0, total=len(SCENE_KINDS)))
    for k, kind in enumerate(SCENE_KINDS):
        rng = np.random.default_rng([seed, 9999, k])
        lo, hi = SCENES[kind].view_height
        motion = _MOTIONS[k % len(_MOTIONS)]
        plan = TakePlan(9999, k, kind, motion, n, view_h=float(rng.uniform(lo, hi)))
        take = build_take(seed, plan, width, height, fps)
        thumbs = []
        for i, frame in enumerate(render_take(take, width, height)):
            if i in picks:
                rgb = cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB)
                thumbs.append(cv2.resize(rgb, (thumb_width, thumb_h), interpolation=cv2.INTER_AREA))
        strip = np.concatenate([np.pad(t, ((0, 0), (0, 2), (0, 0)), constant_values=255) for t in thumbs], 1)
        label = np.full((label_h, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{kind}  ({motion.replace('_', ' ')})", (4, label_h - 5), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (20, 20, 20), 1, cv2.LINE_AA)
        blocks.append(np.concatenate([label, strip, np.full((4, strip.shape[1], 3), 255, np.uint8)], 0))
        progress(Progress("sheet", completed=k + 1, total=len(SCENE_KINDS)))
    rows = int(np.ceil(len(blocks) / columns))
    blank = np.full_like(blocks[0], 255)
    cols = []
    for c in range(columns):
        col = [blocks[r * columns + c] if r * columns + c < len(blocks) else blank for r in range(rows)]
        cols.append(np.pad(np.concatenate(col, 0), ((0, 0), (4, 4), (0, 0)), constant_values=255))
    sheet = np.concatenate(cols, 1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, optimize=True)
    return out
