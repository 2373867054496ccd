"""Protocol v1 as code: the constants every stage must agree on.

docs/protocol.md is the prose version; change neither without the other, and bump ``VERSION`` for any
change that can move a number.
"""

from __future__ import annotations

import numpy as np

VERSION = "1"
NUM_FRAMES = 12            # frames per clip, fixed at build time
FRAME_SHORT_SIDE = 224     # stored frames are resized to this short side; the model center-crops
MAX_TOKENS = 32            # captions truncated to this many tokens (incl. start/end tokens)
SEEDS = (0, 1, 2)          # trained methods report mean ± std over these
RECALL_KS = (1, 5, 10)
SPLITS = ("train", "validation", "test")
JPEG_QUALITY = 95


def frame_times(start_s: float, end_s: float, n: int = NUM_FRAMES) -> np.ndarray:
    """Timestamps of the protocol frames: the middles of ``n`` equal segments of [start_s, end_s)."""
    if not end_s > start_s:
        raise ValueError(f"empty span: start_s={start_s} end_s={end_s}")
    step = (end_s - start_s) / n
    return start_s + step * (np.arange(n) + 0.5)
