"""Caption-to-clip prior similarity, as AMFMN computes it for its dynamic margin.

AMFMN (Yuan et al. 2022) scales its triplet margin by how alike a caption is to another image's captions, scored
offline by ``Rct/generate_t2i_sim_matrix.py`` in the authors' repository (xiaoyuan1996/AMFMN). For a caption and
the captions of one image (here: one clip) their ``calc_sim``:

1. tokenises every sentence with NLTK's ``word_tokenize``, lower-cases and Porter-stems each token, and keeps two
   lists per sentence: all stems, and the stems that are not in NLTK's English stop words (nor "," or ".");
2. ``score1`` = 1 if the caption's stem list equals one of the clip's captions' (a caption scored against its own
   clip), else NLTK's ``sentence_bleu(references, caption, weights=(0.25, 0.25, 0.25, 0.25))`` with the default
   smoothing (none: ``SmoothingFunction().method0``; 0 when no unigram matches, and a higher order without a match
   contributes ``log(sys.float_info.min)``, so such a score is below 1e-70);
3. ``score2`` = the mean, over the clip's captions with at least one non-stop stem, of
   ``|set(reference stems) & set(caption stems)| / len(reference stems)`` (stop words removed on both sides; the
   denominator counts repeated stems);
4. the prior is ``mean(score1, score2)``.

:func:`prior_similarity` computes that for every (training caption, training clip) pair. Where this departs from
the script, and why:

- ``word_tokenize`` first splits sentences with NLTK's English Punkt model, which is NLTK data that cannot be
  installed from a package registry. An untrained Punkt tokenizer (same code, no learned abbreviations) splits the
  sentences here, then ``word_tokenize``'s own word tokenizer (``NLTKWordTokenizer``) splits the words, which is
  all ``word_tokenize`` does. The two agree on captions without abbreviations; "Mr. Smith" is two sentences here.
- NLTK's stop words are likewise data: the 179-word list is kept verbatim in :mod:`.stopwords`.
- Where none of a clip's captions has a non-stop stem, the script's ``score2`` is ``nan`` (``np.mean([])``); here
  it is 0. A clip without captions (the script cannot have one) scores 0.
- The script calls ``sentence_bleu`` for each pair, re-tokenising the references every time (about 0.1 ms a pair).
  Here each caption is tokenised once and the same clipped n-gram counts, brevity penalty and geometric mean are
  computed for all captions at once per clip with numpy; ``tests/test_text_similarity.py`` checks it against the
  script's function and against ``sentence_bleu`` itself.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from importlib import metadata

import numpy as np

from ..errors import ConfigError
from . import CaptionCorpus
from .cache import cache_root, entry_key, texts_digest, write_atomic
from .stopwords import NLTK_ENGLISH_STOPWORDS

NLTK_VERSION = "3.10.4"
INSTALL_HINT = f"pip install 'nltk=={NLTK_VERSION}' (or pip install 'dvtr-bench[text]')"
STOP_WORDS = frozenset(NLTK_ENGLISH_STOPWORDS) | {",", "."}
BLEU_WEIGHTS = (0.25, 0.25, 0.25, 0.25)
# bump when the computation changes, so old cache entries are not read as new ones
PRIOR_VERSION = "1"


@functools.lru_cache(maxsize=1)
def _tools():
    try:
        from nltk.stem import PorterStemmer
        from nltk.tokenize.destructive import NLTKWordTokenizer
        from nltk.tokenize.punkt import PunktSentenceTokenizer
        from nltk.translate.bleu_score import sentence_bleu
    except ImportError:
        raise ConfigError(f"caption-caption similarity needs NLTK, which is not installed: {INSTALL_HINT}") from None
    return PunktSentenceTokenizer(), NLTKWordTokenizer(), PorterStemmer(), sentence_bleu


def tokenize(sentence: str) -> list[str]:
    """``nltk.word_tokenize(sentence)`` with an untrained Punkt sentence splitter (see the module docstring)."""
    sents, words, _, _ = _tools()
    return [tok for sent in sents.tokenize(sentence) for tok in words.tokenize(sent)]


def preprocess(sentence: str) -> tuple[list[str], list[str]]:
    """The script's ``sent_preprocess``: (all Porter stems of the lower-cased tokens, those not stop words).

    As in the script, the stop-word test is applied to the *stems* ("this" stems to "thi" and stays).
    """
    stem = _tools()[2].stem
    stems = [stem(word.lower()) for word in tokenize(sentence)]
    return stems, [w for w in stems if w not in STOP_WORDS]


def pair_similarity(references: Sequence[str], caption: str) -> float:
    """The prior of one caption against one clip's captions, through NLTK's ``sentence_bleu`` (the reference
    computation :func:`prior_similarity` reproduces for all pairs at once)."""
    refs = [preprocess(s) for s in references]
    full_refs = [r[0] for r in refs]
    cap_full, cap_content = preprocess(caption)
    if cap_full in full_refs:
        score1 = 1.0
    elif not full_refs:
        score1 = 0.0
    else:
        with warnings.catch_warnings():
            # method0's "The hypothesis contains 0 counts of n-gram overlaps" fires on most pairs
            warnings.filterwarnings("ignore", message=r"\s*The hypothesis contains 0 counts")
            score1 = float(_tools()[3](full_refs, cap_full, weights=BLEU_WEIGHTS))
    ratios = [len(set(r[1]) & set(cap_content)) / len(r[1]) for r in refs if len(r[1]) != 0]
    score2 = float(np.mean(ratios)) if ratios else 0.0
    return float(np.mean([score1, score2]))


def prior_similarity(corpus: CaptionCorpus) -> np.ndarray:
    """AMFMN's caption -> clip-captions prior for every training caption and clip: float32 ``[n_captions, n_clips]``.

    Entry ``[k, c]`` is :func:`pair_similarity` of caption ``k`` against the captions of clip ``c``; a caption scores
    1 against its own clip's BLEU term. With a corpus fingerprint the matrix is cached on disk under it, NLTK's
    version and a hash of the captions and their clips.

    Raises:
        ConfigError: NLTK is not installed (the message says which pip command installs it).
    """
    _tools()
    path = None
    if corpus.fingerprint is not None:
        owners = np.ascontiguousarray(corpus.caption_to_clip, dtype=np.int64)
        key = entry_key("prior", PRIOR_VERSION, corpus.fingerprint, metadata.version("nltk"),
                        texts_digest(corpus.texts), texts_digest(corpus.clip_ids),
                        hashlib.sha256(owners.tobytes()).hexdigest())
        path = cache_root() / f"prior-{key}.npy"
        cached = _read_matrix(path, (len(corpus), corpus.n_clips))
        if cached is not None:
            return cached
    sim = _compute(corpus)
    if path is not None:
        buf = io.BytesIO()
        np.save(buf, sim, allow_pickle=False)
        write_atomic(path, buf.getvalue())
    return sim


def _read_matrix(path, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        with open(path, "rb") as f:
            m = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if m.shape != shape or m.dtype != np.float32 or not np.isfinite(m).all():
        return None
    return m


class _Entries:
    """Sparse per-caption rows as flat arrays: ``row[e]`` owns ``(col[e], val[e])``; caption k's are
    ``start[k]:start[k+1]``."""

    def __init__(self, rows: list[list[tuple[int, int]]]):
        self.start = np.zeros(len(rows) + 1, dtype=np.int64)
        self.start[1:] = np.cumsum([len(r) for r in rows])
        flat = [e for r in rows for e in r]
        self.row = np.repeat(np.arange(len(rows)), np.diff(self.start))
        self.col = np.array([c for c, _ in flat], dtype=np.int64)
        self.val = np.array([v for _, v in flat], dtype=np.int64)

    def of(self, rows: np.ndarray) -> np.ndarray:
        """Indices of the entries of ``rows``."""
        return np.concatenate([np.arange(self.start[r], self.start[r + 1]) for r in rows]) if len(rows) else \
            np.zeros(0, dtype=np.int64)


def _compute(corpus: CaptionCorpus) -> np.ndarray:
    n, n_clips = len(corpus), corpus.n_clips
    pre: dict[str, tuple[list[str], list[str]]] = {}
    for t in corpus.texts:
        if t not in pre:
            pre[t] = preprocess(t)
    full = [pre[t][0] for t in corpus.texts]
    content = [pre[t][1] for t in corpus.texts]
    hyp_len = np.array([len(f) for f in full], dtype=np.int64)

    # n-gram counts of every caption, per order (modified_precision's Counter(ngrams(hypothesis, n)))
    orders = range(1, len(BLEU_WEIGHTS) + 1)
    grams: list[_Entries] = []
    for order in orders:
        ids: dict[tuple[str, ...], int] = {}
        rows = [[(ids.setdefault(g, len(ids)), c) for g, c in Counter(zip(*(f[i:] for i in range(order)))).items()]
                for f in full]
        grams.append(_Entries(rows))
    vocab_sizes = [int(e.col.max()) + 1 if len(e.col) else 0 for e in grams]
    denominators = [np.maximum(1, hyp_len - order + 1) for order in orders]

    # the stem sets of the non-stop words, and the exact-match key of each caption
    tok_ids: dict[str, int] = {}
    sets = _Entries([[(tok_ids.setdefault(w, len(tok_ids)), 1) for w in dict.fromkeys(c)] for c in content])
    content_len = np.array([len(c) for c in content], dtype=np.int64)
    seq_ids: dict[tuple[str, ...], int] = {}
    seq = np.array([seq_ids.setdefault(tuple(f), len(seq_ids)) for f in full], dtype=np.int64)

    owners = np.asarray(corpus.caption_to_clip, dtype=np.int64)
    order_by_clip = np.argsort(owners, kind="stable")
    bounds = np.searchsorted(owners[order_by_clip], np.arange(n_clips + 1))
    max_ref = [np.zeros(v, dtype=np.int64) for v in vocab_sizes]
    member = np.zeros(len(tok_ids), dtype=bool)
    out = np.zeros((n, n_clips), dtype=np.float32)
    log_min = math.log(sys.float_info.min)
    for clip in range(n_clips):
        refs = order_by_clip[bounds[clip]:bounds[clip + 1]]
        if len(refs) == 0:
            continue
        # BLEU: clipped n-gram matches against the clip's captions (max count over references)
        log_p = np.zeros(n)
        matches_1 = None
        for k, e in enumerate(grams):
            sel = e.of(refs)
            np.maximum.at(max_ref[k], e.col[sel], e.val[sel])
            matches = np.bincount(e.row, np.minimum(e.val, max_ref[k][e.col]), minlength=n)
            max_ref[k][e.col[sel]] = 0
            if k == 0:
                matches_1 = matches
            with np.errstate(divide="ignore"):
                log_p += BLEU_WEIGHTS[k] * np.where(matches > 0, np.log(matches / denominators[k]), log_min)
        # brevity penalty with the closest reference length (ties to the shorter), as closest_ref_length does
        ref_lens = np.sort(hyp_len[refs])
        closest = ref_lens[np.argmin(np.abs(ref_lens[None, :] - hyp_len[:, None]), axis=1)]
        with np.errstate(divide="ignore", invalid="ignore"):
            bp = np.where(hyp_len > closest, 1.0, np.where(hyp_len == 0, 0.0, np.exp(1 - closest / hyp_len)))
        bleu = np.where(matches_1 > 0, bp * np.exp(log_p), 0.0)
        score1 = np.where(np.isin(seq, seq[refs]), 1.0, bleu)
        # word overlap: mean over the references with a non-stop stem of |ref set & caption set| / len(ref)
        ratios = []
        for r in refs:
            if content_len[r] == 0:
                continue
            cols = sets.col[sets.start[r]:sets.start[r + 1]]
            member[cols] = True
            ratios.append(np.bincount(sets.row, member[sets.col], minlength=n) / content_len[r])
            member[cols] = False
        score2 = np.mean(np.stack(ratios, axis=1), axis=1) if ratios else np.zeros(n)
        out[:, clip] = (score1 + score2) / 2
    return out
