"""Caption-derived inputs: what some methods read from the caption *text* besides its tokens.

AMFMN's dynamic margin needs caption-caption prior similarity, MCSAN entity/action/relation phrases and an
attribute vocabulary, DMAE part-of-speech tags. They are computed here, by well-kept libraries (a spaCy English
pipeline, NLTK's BLEU), once per dataset and cached under the dataset's fingerprint; methods receive them through
the one hook of the method interface, :meth:`RetrievalMethod.prepare_text <dvtr_bench.models.base.RetrievalMethod.
prepare_text>`, which the trainer calls with a :class:`CaptionCorpus` of the training captions.

This layer is torch-free: it sees strings and numpy arrays only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaptionCorpus:
    """The training captions of one dataset, as the trainer sees them.

    ``texts[k]`` belongs to clip ``caption_to_clip[k]`` (an index into ``clip_ids``); the order is the split's and
    is also the row order of :meth:`RetrievalMethod.tokenize_corpus`, so row ``k`` of what it returns is caption
    ``k``. ``fingerprint`` identifies the split's content (the ``datasets`` fingerprint): anything computed from the
    corpus may be cached under it, and must be recomputed when it changes. ``None`` means "do not cache".
    """

    texts: tuple[str, ...]
    caption_to_clip: np.ndarray
    clip_ids: tuple[str, ...]
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.caption_to_clip):
            raise ValueError(f"{len(self.texts)} captions but {len(self.caption_to_clip)} owners")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_clips(self) -> int:
        return len(self.clip_ids)

    def captions_of(self, clip: int) -> list[int]:
        """Rows of clip ``clip``'s captions."""
        return [int(k) for k in np.flatnonzero(self.caption_to_clip == clip)]
