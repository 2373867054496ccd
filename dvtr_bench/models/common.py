"""Pieces the CLIP-based methods share: frame encoding with masking, CLIP-style temporal transformers, chunking."""

from __future__ import annotations

import copy
from typing import Callable, ClassVar

import torch
from open_clip.transformer import ResidualAttentionBlock
from torch import nn

from dvtr_bench.models.backbone import Backbone, frame_mask_mean, l2n
from dvtr_bench.models.base import Embedding, RetrievalMethod

INIT_STD = 0.02  # CLIP4Clip's initializer_range for every new Linear / Embedding


def init_new_module(module: nn.Module) -> None:
    """CLIP4Clip's ``init_weights``: new Linear/Embedding weights ~ N(0, 0.02), biases 0, LayerNorm (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=INIT_STD)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def key_padding_bias(mask: torch.Tensor, heads: int, n_query: int | None = None) -> torch.Tensor:
    """Additive attention bias ``[B * heads, Lq, Lk]``: 0 for real keys, -1e6 for padded ones (as CLIP4Clip).

    A finite value keeps a clip without any real frame finite; exp(-1e6) is exactly 0 in float32, so a padded
    key gets no weight at all.
    """
    b, lk = mask.shape
    lq = lk if n_query is None else n_query
    bias = (~mask).to(torch.float32) * -1e6
    return bias[:, None, None, :].expand(b, heads, lq, lk).reshape(b * heads, lq, lk)


class TemporalTransformer(nn.Module):
    """A stack of CLIP residual attention blocks over a sequence, with key-padding masks.

    ``from_text`` copies the backbone's first text blocks (CLIP4Clip's initialisation); blocks beyond what the text
    tower has, or all of them when the widths differ, are new CLIP-style blocks.
    """

    def __init__(self, width: int, layers: int, heads: int, init_blocks: list[nn.Module] | None = None):
        super().__init__()
        init_blocks = init_blocks or []
        blocks: list[nn.Module] = [copy.deepcopy(b) for b in init_blocks[:layers]]
        self.n_copied = len(blocks)
        for _ in range(layers - len(blocks)):
            blk = ResidualAttentionBlock(width, heads, batch_first=True)
            _clip_block_init(blk, width, layers)
            blocks.append(blk)
        self.blocks = nn.ModuleList(blocks)
        self.heads = int(blocks[0].attn.num_heads) if blocks else heads
        self.width = width

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        bias = key_padding_bias(mask, self.heads).to(x.dtype)
        for blk in self.blocks:
            x = blk(x, attn_mask=bias)
        return x


def _clip_block_init(blk: ResidualAttentionBlock, width: int, layers: int) -> None:
    # CLIP's text-transformer initialisation, so an uncopied block starts like a copied one would have.
    proj_std = (width ** -0.5) * ((2 * layers) ** -0.5)
    nn.init.normal_(blk.attn.in_proj_weight, std=width ** -0.5)
    nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
    nn.init.normal_(blk.mlp.c_fc.weight, std=(2 * width) ** -0.5)
    nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)


def position_table(backbone: Backbone, n: int, width: int) -> nn.Parameter:
    """``[n, width]`` learned positions, initialised from the text positional embedding when widths agree."""
    pos = backbone.text_positional_embedding()
    if pos is not None and pos.shape[1] == width and pos.shape[0] >= n:
        return nn.Parameter(pos.detach()[:n].clone().float())
    return nn.Parameter(torch.randn(n, width) * INIT_STD)


def text_heads(backbone: Backbone, width: int) -> tuple[int, list[nn.Module]]:
    """Heads and blocks to copy for a temporal transformer of ``width`` (empty when widths differ)."""
    if backbone.text_width == width and backbone.text_blocks():
        blocks = backbone.text_blocks()
        return int(blocks[0].attn.num_heads), blocks
    return max(1, width // 64), []


class FrameMethod(RetrievalMethod):
    """A method over per-frame CLIP embeddings and the CLIP sentence embedding (all methods here are).

    Video encoding is split in two: :meth:`frame_features` (the backbone's image tower, per frame) and
    :meth:`encode_video_features` (the method's own head over those features). ``encode_video`` is their
    composition, so a subclass implements only the head; with a frozen backbone the engine computes the
    frame features once per clip and feeds the head from that cache (``dvtr_bench.engine.features``).
    """

    # The engine may call encode_video_features on cached frame_features output instead of encode_video.
    frame_feature_hook: ClassVar[bool] = True

    def __init__(self, backbone: Backbone, max_frames: int = 32):
        super().__init__(backbone)
        self.embed_dim = backbone.embed_dim
        self.max_frames = max_frames

    # ---- encoders shared by every method --------------------------------------------------------------------
    def encode_text(self, tokens: torch.Tensor) -> Embedding:
        sentence, _ = self.backbone.encode_text(tokens)
        return {"text": sentence.float()}

    def frame_features(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CLS embeddings ``[B, T, D]`` of the real frames only, moved to the front of each clip; zeros elsewhere.

        Only real frames go through the image tower, so the content of a padded slot cannot reach any output,
        and a prefix mask lets every temporal module (LSTM packing, positions) treat frames ``0..n-1`` as the clip.
        """
        real, mask_sorted = self.real_frames(frames, frame_mask)
        feats = self.backbone.encode_frames(real).float()
        out = feats.new_zeros((*mask_sorted.shape, feats.shape[-1]))
        out[mask_sorted] = feats
        return out, mask_sorted

    def real_frames(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The real frames ``[N, 3, S, S]`` of a batch, clip-major, and the prefix mask ``[B, T]`` they fill
        (each clip's real frames moved to its front, in their original order)."""
        if frames.ndim != 5:
            raise ValueError(f"frames must be [B, T, 3, H, W], got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        if t > self.max_frames:
            raise ValueError(f"{t} frames per clip, this method supports at most {self.max_frames}")
        mask = frame_mask.to(device=frames.device, dtype=torch.bool)
        # stable reorder: real frames first, in their original order
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        mask_sorted = torch.gather(mask, 1, order)
        idx = order[mask_sorted]  # frame index within its clip, for each real frame, clip-major
        clip_idx = torch.arange(b, device=frames.device).unsqueeze(1).expand(b, t)[mask_sorted]
        return frames[clip_idx, idx], mask_sorted

    def encode_video(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> Embedding:
        return self.encode_video_features(*self.frame_features(frames, frame_mask))

    def encode_video_features(self, feats: torch.Tensor, mask: torch.Tensor) -> Embedding:
        """The method's head: :meth:`frame_features` output (``[B, T, D]`` features, prefix ``mask``) -> embedding."""
        raise NotImplementedError

    # ---- vectors for an index ---------------------------------------------------------------------------------
    def text_vector(self, text: Embedding) -> torch.Tensor:
        """The normalised sentence embedding."""
        return l2n(text["text"].float())

    def video_vector(self, video: Embedding) -> torch.Tensor:
        """The method's own pooled video when it has one, else meanP of its frame embeddings.

        For a method whose score is not a dot product these are CLIP-style candidates, not its scores: the
        text-independent summary closest to what its score compares.
        """
        if "video" in video:
            return l2n(video["video"].float())
        return mean_pool(video["frames"].float(), video["frame_mask"])


def pairwise_chunks(n_text: int, n_video: int, budget: int) -> int:
    """How many texts to score at once so that ``texts x videos`` stays under ``budget`` pairs."""
    return max(1, min(n_text, budget // max(1, n_video)))


def chunked_over_text(fn: Callable[[torch.Tensor | dict, dict], torch.Tensor], text: Embedding, video: Embedding,
                      budget: int) -> torch.Tensor:
    """Apply a pairwise scorer to blocks of texts, concatenating the ``[n_t_chunk, n_video]`` results."""
    n_t = next(iter(text.values())).shape[0]
    n_v = next(iter(video.values())).shape[0]
    step = pairwise_chunks(n_t, n_v, budget)
    if step >= n_t:
        return fn(text, video)
    return torch.cat([fn({k: v[i:i + step] for k, v in text.items()}, video) for i in range(0, n_t, step)], dim=0)


def mean_pool(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CLIP4Clip's meanP: normalise each frame, masked mean, normalise."""
    return l2n(frame_mask_mean(l2n(frames), mask))


def cosine_logits(text: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    return l2n(text) @ l2n(video).t()



def uses_frame_features(method: object) -> bool:
    """True when ``method.encode_video`` is exactly its head over :meth:`FrameMethod.frame_features`.

    Only then may the engine feed the head from cached frame features: a subclass that overrides
    ``encode_video`` itself (or a method that is no FrameMethod) computes something the cache cannot stand for.
    """
    cls = type(method)
    return (isinstance(method, FrameMethod) and cls.frame_feature_hook
            and cls.encode_video is FrameMethod.encode_video
            and cls.encode_video_features is not FrameMethod.encode_video_features)


def uses_backbone_text(method: object) -> bool:
    """True when ``method.encode_text`` is the backbone's sentence embedding alone (:meth:`FrameMethod.encode_text`).

    With a frozen backbone such text embeddings are constants of the caption, so the trainer may compute them once.
    """
    return isinstance(method, FrameMethod) and type(method).encode_text is FrameMethod.encode_text
