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

# The metric set (dvtr_bench.protocol.metrics computes exactly these; docs/protocol.md defines them).
METRICS = (
    "t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_meanr", "t2v_map",
    "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr", "v2t_meanr", "v2t_map",
    "rsum", "mr",
)
TIES = "pessimistic"              # a tied item counts as ranked above the correct one
EVAL_SPLIT = "test"               # results are reported on this split only
SELECTION_SPLIT = "validation"    # checkpoints are selected on this split only, never on EVAL_SPLIT
RANK_BY = "rsum"                  # leaderboard order (descending); ties broken by t2v_r1, then v2t_r1


def frame_times(start_s: float, end_s: float, n: int = NUM_FRAMES) -> np.ndarray:
    """Timestamps of the protocol frames: the middles of ``n`` equal segments of [start_s, end_s)."""
    if not end_s > start_s:
        raise ValueError(f"empty span: start_s={start_s} end_s={end_s}")
    step = (end_s - start_s) / n
    return start_s + step * (np.arange(n) + 0.5)
