"""The one interface every retrieval method implements, and the frame preprocessing contract.

The trainer, the evaluation runner and the protocol only ever talk to a :class:`RetrievalMethod`:

* ``tokenize(captions)`` -> :data:`TextInputs`: ``LongTensor[B, MAX_TOKENS]`` (protocol v1: 32 tokens incl.
  start/end), or a dict of batch-first tensors holding those tokens and whatever else the method derives from the
  caption text (part-of-speech weights, phrase tokens); the engine only slices rows and moves them to a device.
* ``prepare_text(corpus)`` (optional): called once by the trainer, before the optimiser is built, with the training
  captions (:class:`~dvtr_bench.text.CaptionCorpus`), for methods that build vocabularies or caption-caption
  priors from them; ``tokenize_corpus(corpus)`` tokenises those captions (row ``k`` = caption ``k``; a method may
  add per-row inputs such as the row index). Whatever a trained model needs at evaluation must live in its state
  dict, so a saved checkpoint evaluates without the corpus.
* ``encode_text(tokens)`` / ``encode_video(frames, frame_mask)`` -> :data:`Embedding`, a dict of tensors that are
  all batch-first, so blocks of embeddings can be concatenated along dim 0 or all-gathered across processes
  without knowing what is inside.
* ``score(text, video)`` -> ``Tensor[n_text, n_video]``; higher means more similar. A score depends only on
  its (text, video) pair and the frozen model (protocol v1), unless ``transductive`` is True.
* ``loss(text, video)`` -> ``{"loss": total, ...named terms}``; text ``i`` matches video ``i``.
* ``param_groups()`` -> backbone parameters vs. new-module parameters (they get different learning rates), each
  split into decayed / not decayed.
* ``text_vector(text)`` / ``video_vector(video)`` -> one ``[n, D]`` float vector per caption / clip, what a vector
  index (``dvtr index``) stores and searches. When ``dot_product`` is True, ``score`` *is* their inner product, so
  the index ranks clips exactly as the method does; otherwise (cross-encoders, text-conditioned pooling) the
  vectors only shortlist candidates, which the method's own ``score`` then re-ranks.

Transductive scoring (MSAM as released, option ``transductive_scoring=True``): the score of a pair also depends on
the other captions scored with it. Such a method sets ``transductive = True`` and ``eval_text_block`` (the number
of captions the release scores together); the runner must then score consecutive blocks of exactly
``eval_text_block`` captions (in dataset order, the last block may be shorter) with ``score_batch`` against the
videos. :meth:`RetrievalMethod.score_all` does exactly that, chunked, for both kinds of method.

Frames: a dataset stores the protocol frames as uint8 RGB images, short side 224. :class:`FrameSpec` (``method.
frame_spec``) turns them into model input: resize the short side to the model's ``image_size`` when it differs,
center-crop to ``image_size`` x ``image_size``, scale to [0, 1] and normalise with the backbone's mean/std.
``FrameSpec`` is a small frozen dataclass, so data-loader worker processes can receive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dvtr_bench.protocol import v1

if TYPE_CHECKING:
    from dvtr_bench.text import CaptionCorpus

Embedding = dict[str, torch.Tensor]
"""What ``encode_text`` / ``encode_video`` return: named tensors, every one batch-first."""

TextInputs = Union[torch.Tensor, dict[str, torch.Tensor]]
"""What ``tokenize`` returns: a token tensor, or named batch-first tensors (see the module docstring)."""

LOGIT_SCALE_MAX = float(np.log(100.0))  # CLIP, CLIP4Clip and X-Pool clamp exp(logit_scale) at 100


@dataclass(frozen=True)
class FrameSpec:
    """How stored uint8 RGB frames become the model's input tensor.

    ``image_size`` is the square side the backbone expects; ``mean``/``std`` are per RGB channel in [0, 1] units;
    ``interpolation`` is used only when the stored short side differs from ``image_size``.
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"

    def __call__(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 ``[..., H, W, 3]`` (channels last, as decoded) -> float32 ``[..., 3, S, S]`` normalised.

        Runs where the frames are: in loader workers on the CPU, or on the GPU once the uint8 frames got there.
        """
        if isinstance(frames, torch.Tensor):
            x = frames
        else:
            arr = np.asarray(frames)
            # decoded images are often read-only views; torch wants memory it may write to
            x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        if x.dtype != torch.uint8 or x.ndim < 3 or x.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames shaped [..., H, W, 3], got {tuple(x.shape)} {x.dtype}")
        lead = x.shape[:-3]
        h, w = int(x.shape[-3]), int(x.shape[-2])
        x = x.reshape(-1, h, w, 3)
        s = self.image_size
        if min(h, w) == s:
            # Crop while still uint8: the float work then covers only the pixels that are kept (the same numbers).
            top, left = self.crop_offsets(h, w)
            x = x[:, top:top + s, left:left + s].permute(0, 3, 1, 2).float().div_(255.0)
        else:
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            scale = s / min(h, w)
            nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
            x = F.interpolate(x, size=(nh, nw), mode=self.interpolation, align_corners=False, antialias=True)
            x = x.clamp_(0.0, 1.0)
            top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
            x = x[:, :, top:top + s, left:left + s]
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.reshape(*lead, 3, s, s).contiguous()

    def into(self, frame: np.ndarray, out: np.ndarray) -> None:
        """One decoded frame, uint8 ``[H, W, 3]`` -> ``out``, float32 ``[3, S, S]``: the same numbers as
        :meth:`__call__` (the same IEEE float32 operations, in place).

        NumPy on one thread, so loader threads can run it side by side (NumPy releases the GIL; torch's element-
        wise kernels would each start an OpenMP team per thread and oversubscribe the cores). A frame that
        needs resizing goes through :meth:`__call__`.
        """
        s = self.image_size
        h, w = int(frame.shape[0]), int(frame.shape[1])
        if min(h, w) != s:
            out[...] = self(torch.from_numpy(np.require(frame, requirements="W"))).numpy()
            return
        top, left = self.crop_offsets(h, w)
        np.copyto(out, frame[top:top + s, left:left + s].transpose(2, 0, 1), casting="unsafe")
        np.divide(out, np.float32(255.0), out=out)
        np.subtract(out, np.asarray(self.mean, dtype=np.float32)[:, None, None], out=out)
        np.divide(out, np.asarray(self.std, dtype=np.float32)[:, None, None], out=out)

    def crop_offsets(self, h: int, w: int) -> tuple[int, int]:
        """(top, left) of the centre ``S x S`` crop of an ``h x w`` frame whose short side is already ``S``."""
        s = self.image_size
        return int(round((h - s) / 2.0)), int(round((w - s) / 2.0))

    def from_images(self, images: Sequence[Any]) -> torch.Tensor:
        """A clip's frames as PIL images or HWC uint8 arrays -> float32 ``[T, 3, S, S]``.

        All frames of a clip share one size (they were stored by one build), so they are stacked first.
        """
        arrays = [np.asarray(im.convert("RGB")) if hasattr(im, "convert") else np.asarray(im) for im in images]
        return self(np.stack(arrays))


def pad_clip(frames: torch.Tensor, num_frames: int = v1.NUM_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (with zeros) or keep a clip's ``[T, 3, S, S]`` frames to ``num_frames``; returns (frames, frame_mask).

    Protocol v1 stores exactly 12 frames, but other datasets (or a shorter clip) may have fewer; padded slots are
    masked out by every method, so their content can never change a score.
    """
    t = frames.shape[0]
    if t > num_frames:
        raise ValueError(f"clip has {t} frames, more than {num_frames}")
    mask = torch.zeros(num_frames, dtype=torch.bool)
    mask[:t] = True
    if t == num_frames:
        return frames, mask
    pad = frames.new_zeros((num_frames - t, *frames.shape[1:]))
    return torch.cat([frames, pad], dim=0), mask


def symmetric_infonce(logits: torch.Tensor) -> torch.Tensor:
    """CLIP4Clip's ``CrossEn`` applied both ways: mean of text->video and video->text cross-entropy.

    ``logits`` is ``[B, B]`` (texts x videos, already multiplied by the logit scale); pair ``i`` is the positive.
    """
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


class RetrievalMethod(nn.Module):
    """Base class of every method. Subclasses set ``name`` and implement the encode / score / loss methods.

    ``backbone`` is a :class:`dvtr_bench.models.backbone.Backbone` (open_clip model + tokenizer + frame spec);
    every parameter under ``self.backbone`` is a backbone parameter, everything else is a new module.
    """

    name: ClassVar[str] = ""
    transductive: bool = False
    eval_text_block: int | None = None  # set only by transductive methods: captions scored together
    # True only when score(t, v) == text_vector(t) @ video_vector(v).T (checked by the conformance tests): a claim
    # an index relies on to skip re-ranking, so a method that looks at the pair must leave it False.
    dot_product: ClassVar[bool] = False

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.config: dict[str, Any] = {}  # the method's effective options, recorded in result records

    # ---- preprocessing -------------------------------------------------------------------------------------
    @property
    def frame_spec(self) -> FrameSpec:
        return self.backbone.frame_spec

    @property
    def image_size(self) -> int:
        return self.frame_spec.image_size

    def tokenize(self, captions: list[str]) -> TextInputs:
        """Captions -> ``LongTensor[B, MAX_TOKENS]`` (truncated to protocol v1's 32 tokens, end token kept).

        A method that reads more from the text returns a dict of batch-first tensors instead; ``encode_text``
        receives exactly what this returns (rows selected, moved to the device).
        """
        return self.backbone.tokenize(captions)

    # ---- the caption-corpus hook (methods that learn from the caption text itself) -----------------------
    def prepare_text(self, corpus: "CaptionCorpus") -> None:
        """Receive the training captions once, before the optimiser is built. Default: nothing to prepare.

        A method may build vocabularies or priors here (and new modules whose size they fix). What evaluation
        needs must be registered as buffers or module state, so that a checkpoint evaluates without the corpus.
        """

    def tokenize_corpus(self, corpus: "CaptionCorpus") -> TextInputs:
        """The training captions' inputs, row ``k`` = ``corpus.texts[k]``. Default: :meth:`tokenize`.

        Training batches select rows of this, so a method may add per-row tensors (e.g. the row index, to look up
        caption-caption priors computed in :meth:`prepare_text`) that ``tokenize`` cannot know.
        """
        return self.tokenize(list(corpus.texts))

    # ---- the interface -------------------------------------------------------------------------------------
    def encode_text(self, tokens: torch.Tensor) -> Embedding:
        raise NotImplementedError

    def encode_video(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> Embedding:
        """``frames``: float ``[B, T, 3, S, S]`` already preprocessed; ``frame_mask``: bool ``[B, T]``, True = real."""
        raise NotImplementedError

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        """``[n_text, n_video]`` scores; for a non-transductive method each depends only on its pair."""
        raise NotImplementedError

    def score_batch(self, text: Embedding, video: Embedding) -> torch.Tensor:
        """Scores of one evaluation block. Equal to :meth:`score` unless the method is transductive."""
        return self.score(text, video)

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        """Training loss of a batch where text ``i`` matches video ``i``; ``"loss"`` is the total."""
        raise NotImplementedError

    def text_vector(self, text: Embedding) -> torch.Tensor:
        """``[n_text, D]`` float vectors for a vector index; with ``dot_product`` their inner products with
        :meth:`video_vector` are the scores."""
        raise NotImplementedError

    def video_vector(self, video: Embedding) -> torch.Tensor:
        """``[n_video, D]`` float vectors for a vector index (see :meth:`text_vector`)."""
        raise NotImplementedError

    # ---- helpers shared by all methods ---------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters as ``[{"group": "backbone"|"new", "decay": bool, "names": [...], "params": [...]}]``.

        The trainer gives "backbone" groups the backbone learning rate and "new" groups the method's learning rate.
        Under the uniform regime weight decay applies where ``decay`` is True: biases, norm weights, scalars such as
        the logit scale and gates (``ndim < 2``) are not decayed (open_clip's training rule). The releases group
        otherwise -- CLIP4Clip exempts only names containing "bias", X-Pool decays everything -- and the release
        regime regroups by name (``dvtr_bench.engine.optim``). Empty groups are left out.
        """
        buckets: dict[tuple[str, bool], tuple[list[str], list[nn.Parameter]]] = {}
        for pname, p in self.named_parameters():
            if not p.requires_grad:
                continue
            group = "backbone" if pname.startswith("backbone.") else "new"
            key = (group, p.ndim >= 2)
            names, params = buckets.setdefault(key, ([], []))
            names.append(pname)
            params.append(p)
        order = [("backbone", True), ("backbone", False), ("new", True), ("new", False)]
        return [{"group": g, "decay": d, "names": buckets[(g, d)][0], "params": buckets[(g, d)][1]}
                for g, d in order if (g, d) in buckets]

    def logit_scale(self) -> torch.Tensor:
        """exp(learned CLIP logit scale), clamped at 100 in the forward pass (so no trainer hook is needed)."""
        return self.backbone.logit_scale.clamp(max=LOGIT_SCALE_MAX).exp()

    @torch.no_grad()
    def score_all(self, text: Embedding, video: Embedding, block: int = 1024) -> torch.Tensor:
        """The full ``[n_text, n_video]`` score matrix, computed block by block.

        For a transductive method the caption blocks are exactly ``eval_text_block`` long (the release's eval
        chunks), in the given order; videos never interact, so they are chunked freely.
        """
        n_t = _batch_len(text)
        n_v = _batch_len(video)
        t_block = self.eval_text_block if self.transductive and self.eval_text_block else block
        # One float32 CPU matrix, each block copied into place: the matrix is held once, beside one block
        # (a list of blocks concatenated by columns, then by rows, held it three times at its peak).
        out = torch.empty((n_t, n_v), dtype=torch.float32)
        for i in range(0, n_t, t_block):
            t = slice_embedding(text, i, i + t_block)
            rows = min(n_t, i + t_block) - i
            for j in range(0, n_v, block):
                s = self.score_batch(t, slice_embedding(video, j, j + block)).float().cpu()
                cols = min(n_v, j + block) - j
                if tuple(s.shape) != (rows, cols):
                    raise ValueError(f"{type(self).__name__}.score_batch returned shape {tuple(s.shape)} for "
                                     f"{rows} captions x {cols} clips")
                out[i:i + rows, j:j + cols] = s
        return out

    def extra_repr(self) -> str:
        return f"name={self.name!r}, transductive={self.transductive}"


def select_text(inputs: TextInputs, index: torch.Tensor | slice) -> TextInputs:
    """Rows ``index`` of a method's text inputs (a token tensor or a dict of batch-first tensors)."""
    if isinstance(inputs, dict):
        return {k: v[index] for k, v in inputs.items()}
    return inputs[index]


def text_to(inputs: TextInputs, device: torch.device | str) -> TextInputs:
    """Text inputs moved to ``device``."""
    if isinstance(inputs, dict):
        return {k: v.to(device) for k, v in inputs.items()}
    return inputs.to(device)


def text_len(inputs: TextInputs) -> int:
    """Number of captions in text inputs."""
    return _batch_len(inputs) if isinstance(inputs, dict) else int(inputs.shape[0])


def slice_embedding(emb: Embedding, start: int, stop: int) -> Embedding:
    """Rows ``start:stop`` of every tensor of an embedding."""
    return {k: v[start:stop] for k, v in emb.items()}


def concat_embeddings(parts: Sequence[Embedding]) -> Embedding:
    """Concatenate embedding blocks along the batch dimension (e.g. after an all_gather or a loader loop)."""
    if not parts:
        raise ValueError("no embeddings to concatenate")
    return {k: torch.cat([p[k] for p in parts], dim=0) for k in parts[0]}


class EmbeddingBuffer:
    """Embedding blocks written in place, in order, into one preallocated tensor per key of ``n`` rows.

    The same tensors as :func:`concat_embeddings` of the blocks (the same bits: rows are copied, never
    computed), without holding the list of blocks and then a concatenated copy beside it: evaluation keeps one
    ``[n, ...]`` tensor per key and nothing else that grows with the split. The tensors are allocated from the
    first block: its keys, trailing shapes, dtypes and device; with ``float_dtype`` floating tensors are stored
    in that dtype (copying converts exactly as ``Tensor.to`` does). Later blocks must have the same keys and
    trailing shapes; the last may be shorter (any block may).
    """

    def __init__(self, n: int, float_dtype: torch.dtype | None = None):
        if n < 1:
            raise ValueError(f"an embedding buffer needs at least one row, got {n}")
        self.n = int(n)
        self.filled = 0
        self.float_dtype = float_dtype
        self._data: Embedding | None = None

    def write(self, block: Embedding) -> None:
        """Copy ``block`` (every tensor batch-first, same batch size) into the next rows."""
        if not block:
            raise ValueError("an embedding block has no tensors")
        b = _batch_len(block)
        if self.filled + b > self.n:
            raise ValueError(f"embedding blocks hold more than the {self.n} rows of the buffer")
        if self._data is None:
            self._data = {k: torch.empty((self.n, *v.shape[1:]), device=v.device,
                                         dtype=self.float_dtype if self.float_dtype is not None
                                         and v.is_floating_point() else v.dtype)
                          for k, v in block.items()}
        if block.keys() != self._data.keys():
            raise ValueError(f"embedding block has keys {sorted(block)}, the first block {sorted(self._data)}")
        for k, v in block.items():  # checked whole before a row is written
            out = self._data[k]
            if v.shape[0] != b or v.shape[1:] != out.shape[1:]:
                raise ValueError(f"embedding block {k!r} has shape {tuple(v.shape)}, expected "
                                 f"({b}, {', '.join(map(str, out.shape[1:]))})")
            if v.dtype != out.dtype and not (self.float_dtype is not None and v.is_floating_point()):
                # torch.cat would promote the dtypes; a copy into the first block's dtype could round
                raise ValueError(f"embedding block {k!r} is {v.dtype}, the first block {out.dtype}")
        for k, v in block.items():
            self._data[k][self.filled:self.filled + b].copy_(v)
        self.filled += b

    def result(self) -> Embedding:
        """The ``n``-row embedding; every row must have been written."""
        if self._data is None or self.filled != self.n:
            raise ValueError(f"embedding buffer has {self.filled} of its {self.n} rows written")
        return self._data


def _batch_len(emb: Embedding) -> int:
    return int(next(iter(emb.values())).shape[0])
