"""AMFMN's caption -> clip-captions prior (dvtr_bench.text.similarity): checked numerically against a literal copy of
the authors' function, against NLTK's sentence_bleu pair by pair on a random corpus, and for its cache."""

from __future__ import annotations

import numpy as np
import pytest
from nltk.stem import PorterStemmer
from nltk.translate.bleu_score import sentence_bleu

from dvtr_bench.errors import ConfigError
from dvtr_bench.text import CaptionCorpus, similarity
from dvtr_bench.text.similarity import pair_similarity, preprocess, prior_similarity, tokenize
from dvtr_bench.text.stopwords import NLTK_ENGLISH_STOPWORDS


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DVTR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "text"


# --- a literal copy of xiaoyuan1996/AMFMN@c09bcfb, AMFMN/Rct/generate_t2i_sim_matrix.py (calc_sim and what it uses).
# Two names are bound to dvtr's stand-ins for NLTK *data* that cannot be installed here: word_tokenize (its Punkt
# sentence model) and stopwords.words('english') (the stopwords corpus). The rest is their code unchanged.
word_tokenize = tokenize
stop_words = [k for k in set(NLTK_ENGLISH_STOPWORDS)] + [',', '.']
ps = PorterStemmer()


def calc_sim(sent_visual, sent_caption):
    def sent_preprocess(sent):
        # tokenize
        sent = word_tokenize(sent)

        # PorterStemmer
        sent = [ps.stem(word.lower()) for word in sent]

        # stop words and PorterStemmer
        sent_remove_stop_words = [word for word in sent if word not in stop_words]
        return sent, sent_remove_stop_words

    # preprocess
    visual_words = [list(sent_preprocess(sent)) for sent in sent_visual]

    sent_visual = [vw[0] for vw in visual_words]
    sent_visual_remove_stop_words = [vw[1] for vw in visual_words]

    sent_caption, sent_caption_remove_stop_words = sent_preprocess(sent_caption)

    # score1: bleu --> semantic
    if sent_caption in sent_visual:
        score1 = 1
    else:
        score1 = sentence_bleu(
            sent_visual,
            sent_caption,
            weights = (0.25, 0.25, 0.25, 0.25),
         )

    # score2: entity --> physical meaning
    tmp_score = [len(set(v_sent) & set(sent_caption_remove_stop_words))/len(v_sent) for v_sent in sent_visual_remove_stop_words if len(v_sent) != 0 ]  # noqa: E501
    score2 = np.mean(tmp_score)

    return np.mean([score1, score2])
# --- end of the copy


# Two clips of a drone dataset, five captions each (as the script's image_text_rate = 5), sharing some words.
CLIP_A = [
    "two white boats are moored beside a wooden pier",
    "Two white boats moored at a wooden pier.",
    "an aerial view of boats beside the pier",
    "the drone flies over two boats and a pier",
    "white boats are parked beside the wooden pier .",
]
CLIP_B = [
    "a red car turns left at the crossroads",
    "A red car is turning left at a crossroads.",
    "an aerial view of a car at the crossroads",
    "the drone hovers over a red car and the road",
    "a car drives through the crossroads, there are trees beside the road",
]


def _corpus(clips: list[list[str]], fingerprint: str | None = None) -> CaptionCorpus:
    texts = tuple(t for caps in clips for t in caps)
    owners = np.repeat(np.arange(len(clips)), [len(c) for c in clips])
    return CaptionCorpus(texts=texts, caption_to_clip=owners, clip_ids=tuple(f"clip{i}" for i in range(len(clips))),
                         fingerprint=fingerprint)


@pytest.mark.filterwarnings("ignore:\\s*The hypothesis contains 0 counts")
def test_matches_the_authors_calc_sim():
    clips = [CLIP_A, CLIP_B]
    sim = prior_similarity(_corpus(clips))
    assert sim.shape == (10, 2) and sim.dtype == np.float32
    # their main_process fills sim_t2t_matrix[image, caption] = calc_sim(image's captions, caption)
    theirs = np.array([[calc_sim(visual, caption) for visual in clips] for caption in CLIP_A + CLIP_B])
    np.testing.assert_allclose(sim, theirs, rtol=1e-6, atol=1e-7)
    # a caption against its own clip scores BLEU 1: the prior is at least 1/2 there, and above the other clip's
    own = sim[np.arange(10), np.repeat([0, 1], 5)]
    other = sim[np.arange(10), np.repeat([1, 0], 5)]
    assert (own >= 0.5).all() and (own > other).all()


def test_hand_computed_pair():
    # "a car at the crossroads" against CLIP_B's first caption alone, computed by hand: stems
    # [a, car, at, the, crossroad] vs [a, red, car, turn, left, at, the, crossroad]. BLEU: p1 = 5/5,
    # p2 = 2/4 ("the crossroad", "a car"), p3 = 1/3 ("at the crossroad"), p4 = 0/2 -> method0's smallest float: the
    # score is below 1e-70. Overlap: content stems {car, crossroad} vs [red, car, turn, left, crossroad] -> 2/5.
    s = pair_similarity([CLIP_B[0]], "a car at the crossroads")
    assert s == pytest.approx(0.2, abs=1e-60)
    assert preprocess(CLIP_B[0]) == (["a", "red", "car", "turn", "left", "at", "the", "crossroad"],
                                     ["red", "car", "turn", "left", "crossroad"])


TEMPLATES = [
    "two white boats are moored beside a wooden pier near the river",
    "a red car turns left at the crossroads and a white car waits",
    "the drone flies over the river and the boats on the river",
]
WORDS = "a the two red white boat boats car cars pier road river is are moored beside near at over drone".split()


def _random_corpus(seed: int, n_clips: int) -> CaptionCorpus:
    """Captions that are noisy copies of a few templates, so that many pairs share 3- and 4-grams (BLEU well above
    0, with brevity penalties and clipped repeats), plus the script's corner cases."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n_clips):
        clip = []
        for _ in range(int(rng.integers(1, 6))):
            words = TEMPLATES[int(rng.integers(len(TEMPLATES)))].split()
            words = [str(rng.choice(WORDS)) if rng.random() < 0.15 else w for w in words]
            start = int(rng.integers(0, 4))
            clip.append(" ".join(words[start:start + int(rng.integers(4, 13))]))
        clips.append(clip)
    clips[0].append(clips[1][0])                       # one caption under two clips: an exact match elsewhere
    clips[1].append("boats boats boats boats on the river")  # repeated n-grams, clipped by the references' counts
    clips.append(["the a , .", "of and"])              # no reference with a non-stop stem
    return _corpus(clips)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_pair_matches_sentence_bleu(seed):
    corpus = _random_corpus(seed, n_clips=12)
    sim = prior_similarity(corpus)
    ref = np.array([[pair_similarity([corpus.texts[r] for r in corpus.captions_of(c)], t)
                     for c in range(corpus.n_clips)] for t in corpus.texts])
    np.testing.assert_allclose(sim, ref, rtol=1e-6, atol=1e-7)
    assert np.isfinite(sim).all() and (sim >= 0).all() and (sim <= 1).all()
    # the BLEU term is exercised: many pairs of different captions score well above 0 on it
    content = [preprocess(t)[1] for t in corpus.texts]
    overlap_only = np.array([[np.mean([len(set(content[r]) & set(content[k])) / len(content[r])
                                       for r in corpus.captions_of(c) if content[r]] or [0.0]) / 2
                              for c in range(corpus.n_clips)] for k in range(len(corpus))])
    assert ((sim - overlap_only) > 0.05).mean() > 0.2


@pytest.mark.filterwarnings("ignore:\\s*The hypothesis contains 0 counts")
def test_departures_from_the_script():
    # no reference with a non-stop stem: the script's overlap is nan (np.mean([])), here 0
    with pytest.warns(RuntimeWarning):
        assert np.isnan(calc_sim(["the a", "of"], "a boat"))
    assert pair_similarity(["the a", "of"], "a boat") == pytest.approx(0.0, abs=1e-60)
    # a clip without captions (the script has none) scores 0 for every caption
    corpus = CaptionCorpus(texts=("a boat", "a car"), caption_to_clip=np.array([0, 0]), clip_ids=("x", "y"))
    sim = prior_similarity(corpus)
    assert (sim[:, 1] == 0).all() and (sim[:, 0] >= 0.5).all()


def test_cache_under_the_fingerprint(monkeypatch, _cache_dir):
    corpus = _corpus([CLIP_A, CLIP_B], fingerprint="fp")
    calls = []
    real = similarity._compute
    monkeypatch.setattr(similarity, "_compute", lambda c: calls.append(1) or real(c))
    first = prior_similarity(corpus)
    (path,) = _cache_dir.glob("prior-*.npy")
    np.testing.assert_array_equal(prior_similarity(corpus), first)
    assert len(calls) == 1
    # another fingerprint, or the same captions under other clips, is another entry
    prior_similarity(_corpus([CLIP_A, CLIP_B], fingerprint="fp2"))
    prior_similarity(_corpus([CLIP_A[:3], CLIP_A[3:] + CLIP_B], fingerprint="fp"))
    assert len(calls) == 3
    # a corrupt entry is recomputed and rewritten
    path.write_bytes(path.read_bytes()[:100])
    np.testing.assert_array_equal(prior_similarity(corpus), first)
    assert len(calls) == 4
    np.testing.assert_array_equal(prior_similarity(corpus), first)
    assert len(calls) == 4
    # no fingerprint: computed, never cached
    prior_similarity(_corpus([CLIP_B], fingerprint=None))
    assert len(list(_cache_dir.glob("prior-*.npy"))) == 3


def test_missing_nltk_says_how_to_install(monkeypatch, hide_import):
    similarity._tools.cache_clear()
    hide_import("nltk")
    try:
        with pytest.raises(ConfigError, match=r"needs NLTK, which is not installed: pip install 'nltk==3\.10\.4'"):
            prior_similarity(_corpus([CLIP_A]))
    finally:
        monkeypatch.undo()
        similarity._tools.cache_clear()
