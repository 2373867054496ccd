"""MCSAN (Nian, Ding, Hu, Gu 2022), a reconstruction: the authors published no code, and only the paper's abstract
could be read, so every equation below is this toolkit's reading of the described structure (docs/methods.md).

Four semantic levels l in {global, entity, action, relation}, each a text vector t_l and a video vector v_l:

* text (phrases from :func:`dvtr_bench.text.parse.parse_captions`, each encoded alone by the CLIP text tower):
  t_global = CLIP sentence embedding; t_entity / t_action / t_relation = x + W_l x for x the mean of the
  normalised embeddings of the caption's noun chunks / verb lemmas / "subject predicate object" triples (the
  sentence embedding when the caption has none);
* video (no object detector: CLIP patch tokens stand in for regions): v_global = meanP of the frame embeddings;
  v_entity = mean of ``entity_slots`` learned queries attending over the patch tokens of every real frame;
  v_relation = mean of those slots after one self-attention block among them; v_action = meanP after a temporal
  transformer over the frame embeddings (seqTransf's module).

Score s(t, v) = sum_l w_l cos(t_l, v_l) (w_l = ``level_weights``, summing to 1): a dot product of the concatenated
sqrt(w_l)-weighted unit vectors, so ``dot_product`` holds. A parameter-shared attribute projection P_l (one
Linear(D, K_l) per level, applied to both modalities) maps each level into its attribute space; the attribute
vocabularies (top-K_l training-caption keywords / nouns / verbs / relation predicates) are built in
:meth:`prepare_text` and kept as hashed ids in a buffer, so a checkpoint scores without the corpus.

loss = InfoNCE(exp(lambda) s) + kl_weight * sum_l 1/2 [KL(p_t || p_v) + KL(p_v || p_t)]
       + focal_weight * sum_l [FBCE(P_l t_l, y_l) + FBCE(P_l v_l, y_l)]
with p = softmax(P_l .), FBCE the sigmoid focal loss (Lin et al. 2017; alpha, gamma) averaged over batch and
attributes, and y_l the paired clip's soft attribute labels (HANet's: counts over the clip's training captions,
divided by the largest count, rounded to 2 decimals).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import nn

from dvtr_bench.errors import ConfigError
from dvtr_bench.models.backbone import Backbone, l2n
from dvtr_bench.models.base import Embedding, TextInputs, symmetric_infonce
from dvtr_bench.models.common import FrameMethod, init_new_module, mean_pool
from dvtr_bench.models.methods.seqtransf import SeqTransfHeader
from dvtr_bench.models.registry import register

if TYPE_CHECKING:
    from dvtr_bench.text import CaptionCorpus

LEVELS = ("global", "entity", "action", "relation")
PHRASE_LEVELS = ("entity", "action", "relation")
NO_ID = -1  # an empty vocabulary slot; stable ids are non-negative


# ---- caption -> phrases and attributes (pure functions of a parse, tested on hand-checked sentences) -------------

def caption_phrases(parsed: Any) -> dict[str, list[str]]:
    """The phrases each text level encodes: noun chunks, verb lemmas and "subject predicate object" triples."""
    return {"entity": [str(e) for e in parsed.entities],
            "action": [str(a) for a in parsed.actions],
            "relation": [" ".join(str(x) for x in r) for r in parsed.relations]}


def caption_attributes(parsed: Any) -> dict[str, list[str]]:
    """The attribute words of each level, as often as the parse gives them (HANet counts every occurrence).

    global: content-word lemmas (``keywords``); entity: noun lemmas, per occurrence; action: verb lemmas; relation:
    the predicates of the relation triples (lower case). The parser lists keywords, actions and relations once per
    caption.
    """
    nouns = [lem.lower() for lem, pos in zip(parsed.lemmas, parsed.pos) if pos in ("NOUN", "PROPN")]
    return {"global": [k.lower() for k in parsed.keywords], "entity": nouns,
            "action": [a.lower() for a in parsed.actions],
            "relation": [str(r[1]).lower() for r in parsed.relations]}


def top_k(counts: Counter, k: int) -> list[str]:
    """The ``k`` most frequent words, ties broken alphabetically (so a vocabulary is a function of the corpus)."""
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def stable_id(word: str) -> int:
    """A non-negative 63-bit id of a word, the same in every process (Python's ``hash`` of a str is salted)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def soft_labels(captions_attrs: Iterable[Sequence[str]], index: Mapping[str, int]) -> dict[int, float]:
    """HANet's per-video targets (data/make_gt.py, ``*_gt_all``): count every in-vocabulary word over the video's
    captions, divide by the largest count, round to 2 decimals. Returns {vocabulary index: label}."""
    counts: Counter = Counter()
    for attrs in captions_attrs:
        for w in attrs:
            if w in index:
                counts[index[w]] += 1
    if not counts:
        return {}
    top = max(counts.values())
    return {i: round(c / top, 2) for i, c in counts.items()}


def focal_bce(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Focal binary cross-entropy (Lin et al. 2017), mean over every element:

    -[alpha y (1-p)^gamma log p + (1-alpha)(1-y) p^gamma log(1-p)] for hard labels; with soft labels y, the form of
    torchvision's ``sigmoid_focal_loss``: alpha_t (1-p_t)^gamma BCE, p_t = p y + (1-p)(1-y),
    alpha_t = alpha y + (1-alpha)(1-y). ``alpha < 0`` disables the class weighting.
    """
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean()


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """1/2 [KL(p_a || p_b) + KL(p_b || p_a)] of p = softmax(logits), averaged over the batch (torch KLDivLoss)."""
    la, lb = F.log_softmax(logits_a, dim=-1), F.log_softmax(logits_b, dim=-1)
    return 0.5 * (F.kl_div(lb, la, reduction="batchmean", log_target=True)
                  + F.kl_div(la, lb, reduction="batchmean", log_target=True))


# ---- video modules -----------------------------------------------------------------------------------------------

class SlotAttention(nn.Module):
    """``slots`` learned queries attending (multi-head, one step) over a clip's patch tokens: detector-free regions.

    Keys of padded frames are masked out; a clip without real frames gets zero slots.
    """

    def __init__(self, d: int, slots: int, heads: int):
        super().__init__()
        if d % heads:
            raise ValueError(f"width {d} not divisible by {heads} heads")
        self.heads, self.head_dim = heads, d // heads
        self.queries = nn.Parameter(torch.randn(slots, d) * d ** -0.5)
        self.ln = nn.LayerNorm(d)
        self.k_proj, self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """tokens ``[B, N, D]``, mask ``[B, N]`` (True = real) -> slots ``[B, K, D]``."""
        b, n, d = tokens.shape
        h, hd = self.heads, self.head_dim
        x = self.ln(tokens)
        k = self.k_proj(x).reshape(b, n, h, hd)
        v = self.v_proj(x).reshape(b, n, h, hd)
        q = self.queries.reshape(-1, h, hd)
        logits = torch.einsum("khd,bnhd->bhkn", q, k) / math.sqrt(hd)
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
        attn = torch.nan_to_num(F.softmax(logits, dim=-1), nan=0.0)
        out = torch.einsum("bhkn,bnhd->bkhd", attn, v).reshape(b, -1, d)
        return self.out_proj(out)


def frame_tokens(backbone: Backbone, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, 3, S, S]`` frames -> (CLS embeddings ``[N, D]``, patch tokens ``[N, P, D]``), both after ``ln_post`` and
    the image projection (the projection of patch tokens as in X-CLIP / TS2-Net).

    The steps are open_clip's ``VisionTransformer.forward``, kept apart so the patch tokens come out too.
    """
    visual = backbone.model.visual
    if not all(hasattr(visual, a) for a in ("_embeds", "_pool", "transformer")):
        raise ConfigError(f"mcsan needs the patch tokens of an open_clip VisionTransformer; backbone "
                          f"{backbone.model_name} has a {type(visual).__name__} image tower")
    x = visual.transformer(visual._embeds(frames))
    pooled, tokens = visual._pool(x)
    if visual.proj is not None:
        pooled, tokens = pooled @ visual.proj, tokens @ visual.proj
    return pooled, tokens


# ---- the method --------------------------------------------------------------------------------------------------

@register
class MCSAN(FrameMethod):
    name = "mcsan"
    dot_product = True  # sum_l w_l cos(t_l, v_l) is the inner product of the concatenated sqrt(w_l)-scaled vectors

    def __init__(self, backbone: Backbone, vocab_sizes: Mapping[str, int] | None = None,
                 max_phrases: Mapping[str, int] | None = None, phrase_tokens: int = 16, entity_slots: int = 4,
                 action_layers: int = 1, level_weights: Mapping[str, float] | None = None, kl_weight: float = 1.0,
                 focal_weight: float = 0.01, focal_alpha: float = 0.25, focal_gamma: float = 2.0,
                 prior_prob: float = 0.01, **options: Any):
        """
        Args:
            backbone: the open_clip backbone (a VisionTransformer image tower: its patch tokens are read).
            vocab_sizes: K_l, the attribute vocabulary size of each level (fixed here so a checkpoint loads
                without the corpus).
            max_phrases: at most this many phrases per caption for the entity / action / relation levels.
            phrase_tokens: the CLIP token length of one phrase (start and end tokens included).
            entity_slots: learned queries over the patch tokens (the detector-free entity regions).
            action_layers: layers of the temporal transformer of the action level.
            level_weights: w_l of the score; normalised to sum to 1.
            kl_weight, focal_weight: weights of the KL alignment and of the focal BCE terms.
            focal_alpha, focal_gamma: the focal loss's alpha (class weight; < 0 disables it) and gamma.
            prior_prob: initial attribute probability of the projection's bias (Lin et al. 2017's pi).
        """
        if options:
            raise TypeError(f"unknown mcsan options {sorted(options)}")
        super().__init__(backbone, max_frames=backbone.context_length)
        vocab = dict(vocab_sizes or {"global": 1024, "entity": 1024, "action": 512, "relation": 256})
        phrases = dict(max_phrases or {"entity": 6, "action": 4, "relation": 4})
        weights = dict(level_weights or {lvl: 0.25 for lvl in LEVELS})
        for what, got, need in (("vocab_sizes", vocab, LEVELS), ("max_phrases", phrases, PHRASE_LEVELS),
                                ("level_weights", weights, LEVELS)):
            if set(got) != set(need):
                raise ConfigError(f"mcsan option {what} must give exactly {', '.join(need)}; got {sorted(got)}")
        if any(int(v) < 1 for v in vocab.values()) or any(int(v) < 1 for v in phrases.values()):
            raise ConfigError("mcsan vocab_sizes and max_phrases must be positive")
        if any(float(w) < 0 for w in weights.values()) or sum(float(w) for w in weights.values()) <= 0:
            raise ConfigError(f"mcsan level_weights must be non-negative with a positive sum; got {weights}")
        if not 0.0 < prior_prob < 1.0:
            raise ConfigError(f"mcsan prior_prob must lie in (0, 1); got {prior_prob}")
        total_w = sum(float(w) for w in weights.values())
        self.level_weights = {lvl: float(weights[lvl]) / total_w for lvl in LEVELS}
        self.vocab_sizes = {lvl: int(vocab[lvl]) for lvl in LEVELS}
        self.max_phrases = {lvl: int(phrases[lvl]) for lvl in PHRASE_LEVELS}
        self.phrase_tokens = int(phrase_tokens)
        self.kl_weight, self.focal_weight = float(kl_weight), float(focal_weight)
        self.focal_alpha, self.focal_gamma = float(focal_alpha), float(focal_gamma)
        d = self.embed_dim
        heads = max(1, d // 64)
        self.text_heads = nn.ModuleDict({lvl: nn.Linear(d, d) for lvl in PHRASE_LEVELS})
        self.entity_pool = SlotAttention(d, entity_slots, heads)
        self.relation_block = ResidualAttentionBlock(d, heads, batch_first=True)
        self.relation_proj = nn.Linear(d, d)
        self.attributes = nn.ModuleDict({lvl: nn.Linear(d, self.vocab_sizes[lvl]) for lvl in LEVELS})
        init_new_module(nn.ModuleList([self.text_heads, self.entity_pool, self.relation_block, self.relation_proj,
                                       self.attributes]))
        for lin in self.attributes.values():  # rare attributes: start every probability at pi (Lin et al. 2017)
            nn.init.constant_(lin.bias, -math.log((1 - prior_prob) / prior_prob))
        self.action_header = SeqTransfHeader(backbone, layers=action_layers)
        # hashed attribute words, levels concatenated in LEVELS order; NO_ID marks a slot the corpus did not fill
        self.register_buffer("vocab_ids", torch.full((sum(self.vocab_sizes.values()),), NO_ID, dtype=torch.long))
        self.vocab_words: dict[str, list[str]] = {}  # readable vocabulary, known only after prepare_text
        # the training captions' parses, kept between prepare_text and tokenize_corpus (one parse per run)
        self._corpus_parses: tuple[tuple[str, ...], list[Any]] | None = None
        self.config = {"vocab_sizes": self.vocab_sizes, "max_phrases": self.max_phrases,
                       "phrase_tokens": self.phrase_tokens, "entity_slots": entity_slots,
                       "action_layers": action_layers, "level_weights": self.level_weights,
                       "kl_weight": self.kl_weight, "focal_weight": self.focal_weight,
                       "focal_alpha": self.focal_alpha, "focal_gamma": self.focal_gamma, "prior_prob": prior_prob,
                       "layers_copied_from_text": self.action_header.transformer.n_copied,
                       "reconstruction": True}

    # ---- the caption-corpus hook ----------------------------------------------------------------------------
    def _offsets(self) -> dict[str, int]:
        out, o = {}, 0
        for lvl in LEVELS:
            out[lvl] = o
            o += self.vocab_sizes[lvl]
        return out

    def _parse(self, texts: Sequence[str], fingerprint: str | None = None) -> list[Any]:
        from dvtr_bench.text.parse import parse_captions

        return parse_captions(list(texts), fingerprint=fingerprint)

    def _parse_corpus(self, corpus: "CaptionCorpus") -> list[Any]:
        if self._corpus_parses is None or self._corpus_parses[0] != corpus.texts:
            self._corpus_parses = (corpus.texts, self._parse(corpus.texts, corpus.fingerprint))
        return self._corpus_parses[1]

    def prepare_text(self, corpus: "CaptionCorpus") -> None:
        """Build the attribute vocabularies: the K_l most frequent attribute words of the training captions."""
        counts = {lvl: Counter() for lvl in LEVELS}
        for parsed in self._parse_corpus(corpus):
            for lvl, words in caption_attributes(parsed).items():
                counts[lvl].update(words)
        ids = torch.full_like(self.vocab_ids, NO_ID)
        offsets = self._offsets()
        self.vocab_words = {}
        for lvl in LEVELS:
            words = top_k(counts[lvl], self.vocab_sizes[lvl])
            self.vocab_words[lvl] = words
            if words:
                ids[offsets[lvl]:offsets[lvl] + len(words)] = torch.tensor([stable_id(w) for w in words])
        self.vocab_ids.copy_(ids)

    def _columns(self, attrs: Sequence[dict[str, list[str]]]) -> dict[str, dict[str, int]]:
        """Per level, word -> column of the concatenated attribute vector for the words of ``attrs`` that are in the
        vocabulary, read back from the ``vocab_ids`` buffer (a word may sit in several levels' vocabularies)."""
        ids = self.vocab_ids.tolist()
        out: dict[str, dict[str, int]] = {}
        for lvl, off in self._offsets().items():
            by_id = {i: off + j for j, i in enumerate(ids[off:off + self.vocab_sizes[lvl]]) if i != NO_ID}
            words = {w for a in attrs for w in a[lvl]}
            out[lvl] = {w: by_id[stable_id(w)] for w in words if stable_id(w) in by_id}
        return out

    def _inputs(self, parses: Sequence[Any], label_groups: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Tokens, phrase tokens and sparse soft labels; caption ``i`` is labelled by the captions ``label_groups[i]``."""
        n = len(parses)
        tokens = self.backbone.tokenize([p.text for p in parses])
        n_slots = sum(self.max_phrases.values())
        phrase_text: list[str] = []
        where: list[tuple[int, int]] = []
        for i, parsed in enumerate(parses):
            slot = 0
            for lvl, items in caption_phrases(parsed).items():
                for j, phrase in enumerate(items[:self.max_phrases[lvl]]):
                    phrase_text.append(phrase)
                    where.append((i, slot + j))
                slot += self.max_phrases[lvl]
        phrase_tokens = torch.zeros(n, n_slots, self.phrase_tokens, dtype=torch.long)
        phrase_mask = torch.zeros(n, n_slots, dtype=torch.bool)
        if phrase_text:
            toks = self.backbone.tokenize(phrase_text, context_length=self.phrase_tokens)
            rows = torch.tensor([w[0] for w in where])
            cols = torch.tensor([w[1] for w in where])
            phrase_tokens[rows, cols] = toks
            phrase_mask[rows, cols] = True
        attrs = [caption_attributes(p) for p in parses]
        index = self._columns(attrs)
        labels: list[dict[int, float]] = []
        for group in label_groups:
            lab: dict[int, float] = {}
            for lvl in LEVELS:
                # a column already carries its level's offset; soft_labels normalises within the level
                lab.update(soft_labels((attrs[k][lvl] for k in group), index[lvl]))
            labels.append(lab)
        width = max(1, max((len(lab) for lab in labels), default=1))
        attr_ids = torch.full((n, width), -1, dtype=torch.long)
        attr_vals = torch.zeros(n, width)
        for i, lab in enumerate(labels):
            if lab:
                attr_ids[i, :len(lab)] = torch.tensor(list(lab.keys()))
                attr_vals[i, :len(lab)] = torch.tensor(list(lab.values()))
        return {"tokens": tokens, "phrase_tokens": phrase_tokens, "phrase_mask": phrase_mask,
                "attr_ids": attr_ids, "attr_vals": attr_vals}

    def tokenize(self, captions: list[str]) -> TextInputs:
        """Caption tokens, phrase tokens and each caption's own attribute labels (training uses its clip's)."""
        if isinstance(captions, str):
            raise TypeError("tokenize expects a list of captions, not a single string")
        parses = self._parse(captions)
        return self._inputs(parses, [[i] for i in range(len(parses))])

    def tokenize_corpus(self, corpus: "CaptionCorpus") -> TextInputs:
        """As :meth:`tokenize`, labelled by every training caption of the row's clip (HANet's per-video targets)."""
        parses = self._parse_corpus(corpus)
        groups = {c: corpus.captions_of(c) for c in sorted(set(int(c) for c in corpus.caption_to_clip))}
        return self._inputs(parses, [groups[int(c)] for c in corpus.caption_to_clip])

    # ---- encoders ---------------------------------------------------------------------------------------------
    def encode_text(self, inputs: TextInputs) -> Embedding:
        if not isinstance(inputs, dict):
            raise TypeError("mcsan.encode_text takes what mcsan.tokenize returns (a dict), not bare tokens")
        sentence, _ = self.backbone.encode_text(inputs["tokens"])
        sentence = sentence.float()
        pmask = inputs["phrase_mask"]
        b, p, _ = inputs["phrase_tokens"].shape
        phrases = sentence.new_zeros(b, p, sentence.shape[-1])
        if bool(pmask.any()):
            emb, _ = self.backbone.encode_text(inputs["phrase_tokens"][pmask])
            phrases[pmask] = l2n(emb.float())
        out = {"global": l2n(sentence)}
        slot = 0
        for lvl in PHRASE_LEVELS:
            k = self.max_phrases[lvl]
            m = pmask[:, slot:slot + k].to(sentence.dtype).unsqueeze(-1)
            n_real = m.sum(1)
            pooled = (phrases[:, slot:slot + k] * m).sum(1) / n_real.clamp(min=1.0)
            # a caption without phrases of this level: its sentence stands in, so every level stays defined
            x = torch.where(n_real > 0, pooled, l2n(sentence))
            out[lvl] = l2n(x + self.text_heads[lvl](x))
            slot += k
        if self.training:
            out["attr_labels"] = self._dense_labels(inputs["attr_ids"], inputs["attr_vals"])
        return out

    def _dense_labels(self, ids: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        dense = vals.new_zeros(ids.shape[0], int(self.vocab_ids.shape[0]) + 1)
        dense.scatter_(1, torch.where(ids >= 0, ids, dense.shape[1] - 1), vals)
        return dense[:, :-1]

    def encode_video(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> Embedding:
        # real frames first, in order (as FrameMethod.frame_features); only real frames reach the image tower
        real, mask = self.real_frames(frames, frame_mask)
        b, t = mask.shape
        cls, patches = frame_tokens(self.backbone, real)
        cls, patches = cls.float(), patches.float()
        feats = cls.new_zeros((b, t, cls.shape[-1]))
        feats[mask] = cls
        n_patch = patches.shape[1]
        tokens = patches.new_zeros((b, t, n_patch, patches.shape[-1]))
        tokens[mask] = patches
        token_mask = mask[:, :, None].expand(b, t, n_patch).reshape(b, t * n_patch)
        slots = self.entity_pool(tokens.reshape(b, t * n_patch, -1), token_mask)
        related = self.relation_block(slots)
        return {"global": mean_pool(feats, mask),
                "entity": l2n(slots.mean(1)),
                "action": mean_pool(self.action_header(feats, mask), mask),
                "relation": l2n(self.relation_proj(related.mean(1)))}

    # ---- scoring ----------------------------------------------------------------------------------------------
    def _weighted(self, emb: Embedding) -> torch.Tensor:
        return torch.cat([math.sqrt(self.level_weights[lvl]) * emb[lvl].float() for lvl in LEVELS], dim=-1)

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        return self._weighted(text) @ self._weighted(video).t()

    def text_vector(self, text: Embedding) -> torch.Tensor:
        """The concatenated sqrt(w_l)-scaled level vectors (unit norm): their dot products are the scores."""
        return self._weighted(text)

    def video_vector(self, video: Embedding) -> torch.Tensor:
        return self._weighted(video)

    # ---- training ---------------------------------------------------------------------------------------------
    def attribute_logits(self, emb: Embedding, level: str) -> torch.Tensor:
        """P_l applied to a level's vectors (the same Linear for text and video: the shared attribute projection)."""
        return self.attributes[level](emb[level])

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        infonce = symmetric_infonce(self.logit_scale() * self.score(text, video))
        out = {"infonce": infonce.detach()}
        total = infonce
        if self.kl_weight or self.focal_weight:
            if "attr_labels" not in text:
                raise ValueError("mcsan.loss needs text embeddings computed in training mode (attr_labels)")
            offsets = self._offsets()
            kl = infonce.new_zeros(())
            fbce = infonce.new_zeros(())
            for lvl in LEVELS:
                lt, lv = self.attribute_logits(text, lvl), self.attribute_logits(video, lvl)
                y = text["attr_labels"][:, offsets[lvl]:offsets[lvl] + self.vocab_sizes[lvl]]
                kl = kl + symmetric_kl(lt, lv)
                fbce = fbce + focal_bce(lt, y, self.focal_alpha, self.focal_gamma) \
                    + focal_bce(lv, y, self.focal_alpha, self.focal_gamma)
            total = total + self.kl_weight * kl + self.focal_weight * fbce
            out.update(kl=kl.detach(), fbce=fbce.detach())
        out["loss"] = total
        return out

