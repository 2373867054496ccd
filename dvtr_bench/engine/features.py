"""Cached frame features: with a frozen backbone, each clip's frames go through the image tower once.

When the backbone does not train (zero-shot evaluation, head-only training with ``freeze_backbone``, ablations
of the heads), :meth:`~dvtr_bench.models.common.FrameMethod.frame_features` of a clip is the same in every
epoch, every seed and every method that shares the backbone. This module computes it once per split and keeps
it, in memory and (given a folder) on disk, under a key made of everything that decides those numbers:

* the split's content fingerprint (:func:`dvtr_bench.protocol.fingerprint.dataset_fingerprint`: clip ids,
  captions and the stored frame bytes),
* the backbone's architecture name, its pretrained label and the sha256 of its weights (every tensor of its
  state dict, so a fine-tuned or re-initialised backbone never meets another one's features),
* the FrameSpec (size, mean, std, interpolation), the number of frame slots and the precision of the encoding.

A cache file is named by the hash of that key and stores the key itself; a file whose stored key differs from
the wanted one is re-encoded and replaced, never used. Methods feed their head from the cached features with
``encode_video_features`` (only methods for which :func:`~dvtr_bench.models.common.uses_frame_features` holds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from dvtr_bench.progress import Progress, ProgressFn

FEATURE_CACHE_VERSION = 1


def is_temperature(name: str) -> bool:
    """CLIP's logit scale (and a SigLIP bias): they scale scores, never the features, so they may train."""
    return name.rsplit(".", 1)[-1] in ("logit_scale", "logit_bias")


def weights_sha256(module: torch.nn.Module) -> str:
    """sha256 of a module's state dict (every tensor's name, dtype, shape and bytes, in name order).

    The temperature (:func:`is_temperature`) is left out: it trains under ``freeze_backbone`` and does not enter
    the frame features.
    """
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        if is_temperature(name):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        # bytes of the raw storage: bfloat16 has no numpy dtype, a uint8 view covers every dtype alike
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def feature_key(method: Any, split_fingerprint: str, num_frames: int, precision: str = "float32") -> dict[str, Any]:
    """The full key of one split's cached frame features under ``method``'s backbone (see the module docstring)."""
    bb = method.backbone
    return {"version": FEATURE_CACHE_VERSION, "dataset_fingerprint": split_fingerprint,
            "backbone": getattr(bb, "model_name", type(bb).__name__), "pretrained": getattr(bb, "pretrained", None),
            "weights_sha256": weights_sha256(bb), "frame_spec": dataclasses.asdict(method.frame_spec),
            "num_frames": int(num_frames), "precision": precision}


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


@dataclass
class FrameFeatures:
    """One split's frame features: ``feats [n, T, D]`` float32 (real frames first), ``mask [n, T]``, on the CPU."""

    feats: torch.Tensor
    mask: torch.Tensor
    key: dict[str, Any]
    origin: str  # "encoded" (computed in this call) or "loaded" (read from the cache folder) or "memory"

    def __len__(self) -> int:
        return int(self.feats.shape[0])

    def batches(self, batches: Sequence[Sequence[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(indices, features ``[B, T, D]``, mask ``[B, T]``) per batch of clip indices, like FrameSource.batches."""
        for b in batches:
            idx = torch.as_tensor(list(b), dtype=torch.long)
            yield idx, self.feats[idx], self.mask[idx]


def _autocast_dtype(precision: str) -> torch.dtype | None:
    return {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]


@torch.no_grad()
def encode_frame_features(method: Any, source: Any, device: torch.device, batch_size: int,
                          precision: str = "float32", progress: ProgressFn | None = None,
                          task: str = "frame features") -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``method.frame_features`` over every clip of a FrameSource; returns CPU (feats, mask)."""
    n = len(source)
    batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    feats: torch.Tensor | None = None
    mask = torch.zeros((n, source.num_frames), dtype=torch.bool)
    dtype = _autocast_dtype(precision)
    was_training = method.backbone.training
    method.backbone.eval()
    done = 0
    try:
        for idx, frames, m in source.batches(batches):
            with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                f, fm = method.frame_features(frames.to(device, non_blocking=True), m.to(device))
            if feats is None:
                feats = torch.zeros((n, source.num_frames, f.shape[-1]), dtype=torch.float32)
            feats[idx] = f.float().cpu()
            mask[idx] = fm.cpu()
            done += len(idx)
            if progress is not None:
                progress(Progress(task=task, completed=done, total=n))
    finally:
        method.backbone.train(was_training)
    if feats is None:
        raise ValueError("no clips to encode")
    return feats, mask


def frame_features_for(method: Any, source: Any, split_fingerprint: str, *, device: torch.device | str,
                       batch_size: int, cache_dir: str | os.PathLike[str] | None = None,
                       precision: str = "float32", memo: dict[str, FrameFeatures] | None = None,
                       progress: ProgressFn | None = None, name: str = "split") -> FrameFeatures:
    """The split's frame features under ``method``'s (frozen) backbone: from ``memo``, the cache folder, or encoded.

    Args:
        method: a FrameMethod (``uses_frame_features(method)``) whose backbone does not train.
        source: the split's :class:`~dvtr_bench.engine.data.FrameSource` (read only when encoding).
        split_fingerprint: the split's content fingerprint (``dataset_fingerprint(split)``).
        device / batch_size / precision: how to encode (precision is part of the key).
        cache_dir: folder of ``<key digest>.pt`` files shared by runs; None keeps features in ``memo`` only.
        memo: an in-process dict (key digest -> FrameFeatures), e.g. shared by the seeds of one run.
        progress: callback, task ``"<name> frame features"``.
    """
    device = torch.device(device)
    key = feature_key(method, split_fingerprint, source.num_frames, precision)
    digest = key_digest(key)
    if memo is not None and digest in memo and memo[digest].key == key:
        hit = memo[digest]
        return FrameFeatures(hit.feats, hit.mask, key, "memory")
    path = Path(cache_dir) / f"{digest}.pt" if cache_dir is not None else None
    out: FrameFeatures | None = None
    if path is not None and path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a truncated or foreign file is re-encoded below, never trusted
            state = None
        if (isinstance(state, dict) and state.get("key") == key and isinstance(state.get("feats"), torch.Tensor)
                and state["feats"].shape[0] == len(source)):
            out = FrameFeatures(state["feats"], state["mask"], key, "loaded")
    if out is None:
        feats, mask = encode_frame_features(method, source, device, batch_size, precision, progress,
                                            task=f"{name} frame features")
        out = FrameFeatures(feats, mask, key, "encoded")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"key": key, "feats": feats, "mask": mask}, tmp)
            os.replace(tmp, path)
    if memo is not None:
        memo[digest] = out
    return out
