"""Protocol 2 as code: protocol 1's inputs and rules, with video->text ranked as the field ranks it.

What changed from protocol 1 (docs/protocol.md, "Versions"): a clip's video->text rank is the rank of the
clip among all captioned clips, each clip standing for its best-scoring caption (CLIP4Clip's and X-Pool's
multi-sentence evaluation, ``"rank_clips"``), where protocol 1 ranked the clip's best caption among all
captions (AMFMN's image-text convention, ``"rank_captions"``). Video->text R@5, R@10, MdR and MnR change, and
with them RSum and mR; R@1 and every other figure do not. The inputs (frames, tokens, splits, seeds, metric
names) are protocol 1's and stay in :mod:`dvtr_bench.protocol.v1`, re-exported here.

Records say which protocol they were computed under; the leaderboard never puts two versions in one table,
and protocol 1 records are still read and recomputed with their own convention.
"""

from __future__ import annotations

from dvtr_bench.protocol.v1 import (EVAL_SPLIT, FRAME_SHORT_SIDE, JPEG_QUALITY, MAX_TOKENS, METRICS,  # noqa: F401
                                    NUM_FRAMES, RANK_BY, RECALL_KS, SEEDS, SELECTION_SPLIT, SPLITS, TIES,
                                    frame_times)

VERSION = "2"
V2T_CONVENTION = "rank_clips"     # dvtr_bench.protocol.metrics.V2T_RANK_CLIPS

# The video->text convention of every protocol version a record may carry.
V2T_BY_VERSION: dict[str, str] = {"1": "rank_captions", VERSION: V2T_CONVENTION}
