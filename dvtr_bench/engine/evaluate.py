"""The evaluation runner: a frozen method + one dataset split -> full score matrix, metrics, cost figures.

The protocol: every caption of the split is scored against every clip of the split. Captions and clips are
encoded in blocks (sharded over processes under torch.distributed and gathered), the (captions x clips)
matrix is scored block by block by the method itself (``RetrievalMethod.score_all``: free blocks for a
protocol-compliant method, the release's fixed caption blocks for a transductive one), and the metrics come
from the protocol's metrics engine only.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dvtr_bench.progress import Progress, ProgressFn


@dataclass
class EvalResult:
    """What one evaluation produced. ``scores`` is set on the main process only (None on other ranks)."""

    split: str
    metrics: dict[str, float]
    scores: np.ndarray | None
    caption_to_clip: np.ndarray
    clip_ids: list[str]
    caption_texts: list[str]
    transductive: bool
    n_clips: int
    n_captions: int
    seconds: float                  # whole evaluation: encode + score + metrics
    encode_video_seconds: float     # clip loading + video encoding (the throughput figure's denominator)
    clips_per_s: float
    peak_memory_mb: float
    memory_kind: str                # "cuda_max_allocated" or "cpu_maxrss"
    scores_path: str | None = None
    scores_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """Peak memory: CUDA allocator peak on GPU, else the process's peak resident set (ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return (rss / 2**20 if sys.platform == "darwin" else rss / 1024), "cpu_maxrss"


def _all_finite(scores: np.ndarray, elements: int = 1 << 20) -> bool:
    """``np.isfinite(scores).all()`` a block of rows at a time (no boolean matrix of the whole split)."""
    rows = max(1, elements // max(1, scores.shape[1] if scores.ndim > 1 else 1))
    return all(bool(np.isfinite(scores[s:s + rows]).all()) for s in range(0, scores.shape[0], rows))


def _shard(n: int, rank: int, world: int) -> range:
    per = (n + world - 1) // world
    return range(min(n, rank * per), min(n, (rank + 1) * per))


@torch.no_grad()
def encode_captions(method: Any, tokens: Any, device: torch.device, batch_size: int,
                    progress: ProgressFn | None = None, task: str = "encode text") -> dict[str, torch.Tensor]:
    """Encode pre-tokenized captions in blocks; the embedding stays on ``device``.

    Each block is written in place into one preallocated tensor per key (:class:`~dvtr_bench.models.base.
    EmbeddingBuffer`): the same tensors as concatenating the blocks, without holding both.
    """
    from dvtr_bench.models.base import EmbeddingBuffer, select_text, text_len, text_to

    n = text_len(tokens)
    if n == 0:
        raise ValueError("no captions to encode")
    out = EmbeddingBuffer(n)
    for s in range(0, n, batch_size):
        out.write(method.encode_text(text_to(select_text(tokens, slice(s, s + batch_size)), device)))
        if progress is not None:
            progress(Progress(task=task, completed=min(n, s + batch_size), total=n))
    return out.result()


@torch.no_grad()
def encode_clips(method: Any, source: Any, indices: range | list[int], device: torch.device, batch_size: int,
                 progress: ProgressFn | None = None, task: str = "encode video",
                 autocast: bool | torch.dtype = False) -> dict[str, torch.Tensor]:
    """Encode the clips ``indices`` of a FrameSource (or cached FrameFeatures) in blocks, in that order.

    The embedding stays on ``device``, floating tensors as float32. ``autocast``: True (float16, the historical
    meaning), a dtype (``torch.bfloat16`` works on CPU too) or False. Each block is written in place into one
    preallocated tensor per key (:class:`~dvtr_bench.models.base.EmbeddingBuffer`), so the split's embedding is
    held once, not as a list of blocks plus their concatenation.
    """
    from dvtr_bench.models.base import EmbeddingBuffer

    if not isinstance(indices, (range, list)):
        indices = list(indices)
    n = len(indices)
    if n == 0:
        raise ValueError("no clips to encode")
    # Slices of ``indices``: of a range they are ranges, so no list of every clip index is built here.
    batches = [indices[s:s + batch_size] for s in range(0, n, batch_size)]
    out = EmbeddingBuffer(n, float_dtype=torch.float32)
    done = 0
    # A FrameFeatures source holds the backbone's frame features already: only the method's head runs.
    encode = method.encode_video_features if hasattr(source, "feats") else method.encode_video
    dtype = torch.float16 if autocast is True else (autocast or None)
    for _, frames, mask in source.batches(batches):
        with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            emb = encode(frames.to(device, non_blocking=True), mask.to(device))
        out.write(emb)  # floating tensors stored as float32: Tensor.float()'s exact conversion
        done += frames.shape[0]
        if progress is not None:
            progress(Progress(task=task, completed=done, total=n))
    return out.result()


def evaluate(method: Any, split: Any, *, device: torch.device | str = "cpu", split_name: str = "test",
             batch_size: int = 32, text_batch_size: int = 256, score_block: int = 1024, num_workers: int = 0,
             frame_cache: bool | str = "stream", scores_path: str | Path | None = None,
             source: Any = None, captions: Any = None, tokens: Any = None,
             autocast: bool | torch.dtype = False, clip_digests: dict[str, str] | None = None,
             features: Any = None, frame_device: torch.device | str | None = None,
             decode_device: torch.device | str | None = None, loader: str = "threads",
             progress: ProgressFn | None = None) -> EvalResult:
    """Evaluate a frozen ``method`` on one split under the protocol.

    ``split`` is a ``datasets.Dataset`` with the clip columns (``frames``, ``captions``, ``clip_id``).
    Its frames stream through the loader by default (``frame_cache="stream"``): a split read once gains nothing
    from being held in memory, and streaming keeps host memory flat in the split's size.
    ``frame_device`` / ``decode_device``: the data path (:func:`dvtr_bench.engine.data.choose_frame_path`);
    ``loader``: ``num_workers`` decoding threads ("threads") or DataLoader worker processes ("processes").
    ``source``/``captions``/``tokens`` may be passed in to reuse frames already decoded (the trainer evaluates
    the validation split every epoch). Under torch.distributed every rank must call this; each encodes its
    shard, the embeddings are gathered, and the main rank scores, saves ``scores_path`` (the protocol's .npz)
    and computes the metrics, which are then broadcast so every rank returns the same ``metrics``.
    ``clip_digests`` (``dvtr_bench.protocol.fingerprint.clip_digests(split)``) bind the saved score file to
    the split: its fingerprint can then be recomputed from the file alone. ``features``
    (:class:`~dvtr_bench.engine.features.FrameFeatures` of this split under the method's frozen backbone) replaces
    the frames: only the method's head runs on them, and ``encode_video_seconds`` then times the head alone.
    """
    from dvtr_bench.protocol.metrics import compute_metrics
    from dvtr_bench.engine import distributed as D
    from dvtr_bench.engine.data import Captions, FrameSource
    from dvtr_bench.models.base import select_text

    device = torch.device(device)
    rank, world = D.world()
    was_training = method.training
    method.eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    if captions is None:
        captions = Captions.from_split(split, name=split_name)
    if features is not None:
        if len(features) != captions.n_clips:
            raise ValueError(f"{split_name}: cached features hold {len(features)} clips, the split {captions.n_clips}")
        source = features
    elif source is None:
        source = FrameSource(split, method.frame_spec, num_workers=num_workers, cache=frame_cache,
                             name=split_name, progress=progress, frame_device=frame_device,
                             decode_device=decode_device, loader=loader)
    if tokens is None:
        tokens = method.tokenize(captions.texts)

    t_shard = _shard(len(captions.texts), rank, world)
    v_shard = _shard(captions.n_clips, rank, world)
    text = encode_captions(method, select_text(tokens, slice(t_shard.start, t_shard.stop)), device, text_batch_size,
                           progress=progress, task=f"{split_name} text")
    tv = time.perf_counter()
    video = encode_clips(method, source, v_shard, device, batch_size, progress=progress,
                         task=f"{split_name} clips", autocast=autocast)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    video_seconds = time.perf_counter() - tv
    text = D.gather_embedding(text, with_grad=False)
    video = D.gather_embedding(video, with_grad=False)

    metrics: dict[str, float] | None = None
    scores_np: np.ndarray | None = None
    sha = None
    if rank == 0:
        if progress is not None:
            progress(Progress(task=f"{split_name} score", completed=0, total=1))
        scores = method.score_all(text, video, block=score_block)
        del text, video  # scored: the metrics need only the matrix
        scores_np = scores.float().cpu().numpy()
        del scores
        if not _all_finite(scores_np):
            raise FloatingPointError(f"{type(method).__name__} produced non-finite scores on {split_name}")
        metrics = compute_metrics(scores_np, captions.caption_to_clip)
        if scores_path is not None:
            from dvtr_bench.protocol.scores import save_scores

            Path(scores_path).parent.mkdir(parents=True, exist_ok=True)
            digests = None if clip_digests is None else [clip_digests[c] for c in captions.clip_ids]
            sha = save_scores(scores_path, scores_np, captions.caption_to_clip, captions.clip_ids,
                              caption_ids=captions.caption_ids(), caption_texts=captions.texts, clip_digests=digests)
        if progress is not None:
            progress(Progress(task=f"{split_name} score", completed=1, total=1))
    metrics = D.broadcast_object(metrics)  # type: ignore[assignment]
    # Throughput of the whole job: all ranks' clips over the slowest rank's encoding time.
    vs = torch.tensor([video_seconds], dtype=torch.float64)
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(vs, op=dist.ReduceOp.MAX)
    video_seconds = float(vs.item())
    seconds = time.perf_counter() - t0
    mem, kind = peak_memory_mb(device)
    if was_training:
        method.train()
    return EvalResult(
        split=split_name, metrics=dict(metrics or {}), scores=scores_np, caption_to_clip=captions.caption_to_clip,
        clip_ids=list(captions.clip_ids), caption_texts=list(captions.texts),
        transductive=bool(getattr(method, "transductive", False)), n_clips=captions.n_clips,
        n_captions=len(captions.texts), seconds=seconds, encode_video_seconds=video_seconds,
        clips_per_s=captions.n_clips / max(video_seconds, 1e-9), peak_memory_mb=mem, memory_kind=kind,
        scores_path=str(scores_path) if scores_path is not None and rank == 0 else None, scores_sha256=sha,
        extra={"data_path": "cached frame features" if features is not None else getattr(source, "path", None)})
