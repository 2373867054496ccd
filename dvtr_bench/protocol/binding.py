"""What binds a score file to the test split it scores, and the check of one against the other.

A score file names its columns (``clip_ids``), its rows (``caption_ids``) and the texts it scored
(``captions_sha256``), and, when written by the engine, each column's row digest in the dataset fingerprint
(``clip_digests``), from which the fingerprint is recomputed. :class:`TestSplit` reads the same facts from a
dataset split, so that ``dvtr leaderboard --verify --dataset DIR`` can check a record against the data
itself: its fingerprint, and every score file's clips, captions and digests.

Rows follow the engine's rule (:func:`flatten_captions`): a clip's captions in their stored order, blank
captions dropped, caption ``k`` of clip ``c`` has the id ``"{c}#{k}"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from dvtr_bench.protocol.scores import ScoreFile, captions_sha256


def flatten_captions(clip_ids: Sequence[str], captions: Sequence[Optional[Sequence[Any]]]
                     ) -> tuple[list[str], list[str], list[int]]:
    """(caption ids, texts, caption-to-clip column) of a split's captions, in the engine's row order.

    Blank or non-string captions are dropped, as the engine drops them before scoring.
    """
    ids: list[str] = []
    texts: list[str] = []
    owner: list[int] = []
    for c, (clip_id, lst) in enumerate(zip(clip_ids, captions)):
        kept = [t for t in (lst or []) if isinstance(t, str) and t.strip()]
        for k, text in enumerate(kept):
            ids.append(f"{clip_id}#{k}")
            texts.append(text)
            owner.append(c)
    return ids, texts, owner


@dataclass
class TestSplit:
    """The facts of a test split that a score file must agree with (:meth:`from_dataset` reads them)."""

    __test__ = False    # not a pytest class, whatever its name

    fingerprint: str
    clip_ids: list[str]
    digests: dict[str, str]                                   # clip_id -> row digest
    captions: dict[str, tuple[str, str]] = field(default_factory=dict)   # caption_id -> (clip_id, text)
    caption_order: list[str] = field(default_factory=list)    # caption ids in the engine's row order
    n_uncaptioned_clips: int = 0

    @classmethod
    def from_dataset(cls, split: Any, progress: Any = None) -> "TestSplit":
        """Read a ``datasets.Dataset`` split (e.g. ``dvtr_bench.load_dataset(DIR)["test"]``).

        Raises:
            TypeError / InputError: as :func:`dvtr_bench.protocol.fingerprint.dataset_fingerprint`.
        """
        from dvtr_bench.protocol.fingerprint import clip_digests, fingerprint_from_digests

        digests = clip_digests(split, progress=progress)
        clip_ids = list(digests)
        caps = split.select_columns(["captions"])["captions"]
        ids, texts, owner = flatten_captions(clip_ids, caps)
        return cls(fingerprint=fingerprint_from_digests(clip_ids, list(digests.values())), clip_ids=clip_ids,
                   digests=digests, captions={i: (clip_ids[o], t) for i, t, o in zip(ids, texts, owner)},
                   caption_order=ids, n_uncaptioned_clips=len(clip_ids) - len(set(owner)))


def check_against_split(sf: ScoreFile, ref: TestSplit) -> list[str]:
    """Every way a score file disagrees with a test split (empty: it scores exactly that split's captions and
    clips, with the same texts, and, when it carries digests, the same frames)."""
    problems: list[str] = []
    mine, theirs = set(sf.clip_ids), set(ref.clip_ids)
    if mine != theirs:
        extra, lacking = sorted(mine - theirs), sorted(theirs - mine)
        parts = []
        if extra:
            parts.append(f"{len(extra)} clip(s) that are not in the dataset's test split (e.g. {extra[0]!r})")
        if lacking:
            parts.append(f"lacks {len(lacking)} of its clips (e.g. {lacking[0]!r})")
        return ["the score file has " + " and ".join(parts)]
    if sf.clip_digests is not None:
        changed = [c for c, d in zip(sf.clip_ids, sf.clip_digests) if ref.digests.get(c) != d]
        if changed:
            problems.append(f"{len(changed)} clip(s) have other captions or frames in the dataset "
                            f"(e.g. {changed[0]!r})")
    row_ids = sf.caption_ids if sf.caption_ids is not None else ref.caption_order
    if len(row_ids) != sf.n_captions:
        return problems + [f"the score file has {sf.n_captions} caption rows, the dataset {len(ref.captions)}"]
    if set(row_ids) != set(ref.captions):
        unknown = sorted(set(row_ids) - set(ref.captions))
        return problems + [f"the score file's captions are not the dataset's ({len(unknown)} unknown id(s)"
                           + (f", e.g. {unknown[0]!r})" if unknown else "; some are missing)")]
    wrong_clip = [cid for cid, c in zip(row_ids, sf.caption_to_clip.tolist())
                  if ref.captions[cid][0] != sf.clip_ids[c]]
    if wrong_clip:
        problems.append(f"{len(wrong_clip)} caption(s) are scored against another clip than theirs "
                        f"(e.g. {wrong_clip[0]!r})")
    ref_texts = [ref.captions[cid][1] for cid in row_ids]
    if sf.caption_texts is not None:
        differ = [cid for cid, a, b in zip(row_ids, sf.caption_texts, ref_texts) if a != b]
        if differ:
            problems.append(f"{len(differ)} caption text(s) differ from the dataset's (e.g. {differ[0]!r})")
    elif sf.captions_sha256 is not None:
        if sf.captions_sha256 != captions_sha256(ref_texts):
            problems.append("the caption hash differs from the dataset's captions")
    else:
        problems.append("the score file carries neither caption texts nor their hash: its captions cannot "
                        "be checked")
    return problems


__all__ = ["TestSplit", "check_against_split", "flatten_captions"]
