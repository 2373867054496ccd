"""Feeding a dvtr dataset split to a model: stored JPEG frames -> preprocessed tensors, captions -> tokens.

The stored protocol frames are decoded with libjpeg-turbo through ``torchvision.io.decode_jpeg`` (a clip's frames
in one batched call; frames that are not JPEG fall back to PIL) in DataLoader worker processes (``datasets``' own
image decoding builds a PIL object per image in the main process and cannot be spread over workers the same way).
Where the method's FrameSpec runs is the *frame device*:

* ``frame_device=None`` (CPU runs): in the same worker, so the CPU cores share decoding and preprocessing;
* ``frame_device=<device>`` (CUDA runs): frames stay uint8 until they reach the device -- workers hand over
  padded uint8 clips in pinned memory, the copy is non-blocking and one batch ahead, and resizing, cropping and
  normalising run on the device (4x fewer bytes over the bus than float32, and no float work on the CPU);
* ``decode_device=<cuda device>`` as well: the workers only read the JPEG bytes and the device decodes each batch
  (nvjpeg, batched).

Every path applies the same FrameSpec to the same decoded pixels, and padded frame slots are exact zeros on every
path, so the choice never changes a number (tests compare the paths tensor for tensor on CPU).

Small splits (the demo's, the tests') are decoded once into memory and reused every epoch; large ones stream from
the Parquet shards through the workers. ``frame_cache="auto"`` picks by size.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset as TorchDataset

from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.models.base import FrameSpec, pad_clip
from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.protocol.v1 import NUM_FRAMES

# frame_cache="auto": a split whose model-ready float frames fit in PREPARED_CACHE_BYTES is kept in memory
# ready to use; else one whose decoded uint8 frames fit in RAW_CACHE_BYTES is kept decoded (the FrameSpec then
# runs on every use); else frames stream from the shards through the workers.
PREPARED_CACHE_BYTES = 2 << 30
RAW_CACHE_BYTES = 3 << 30
FRAME_TRANSFORMS = ("auto", "workers", "device")


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG (or any image PIL reads) bytes -> uint8 [H, W, 3] RGB, through PIL."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def decode_frames(blobs: Sequence[bytes], device: torch.device | str | None = None) -> torch.Tensor:
    """One clip's stored frames -> uint8 ``[t, H, W, 3]`` RGB on ``device`` (CPU by default).

    libjpeg-turbo (or nvjpeg for a CUDA device) through ``torchvision.io.decode_jpeg``, all frames in one batched
    call. Its pixels equal PIL's on the stored frames (both are libjpeg-turbo with the same IDCT; the tests
    check it). A frame it cannot read (PNG, CMYK JPEG) sends the clip through PIL instead.
    """
    from torchvision.io import ImageReadMode, decode_jpeg as tv_decode_jpeg

    dev = torch.device(device) if device is not None else torch.device("cpu")
    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    try:
        with warnings.catch_warnings():
            # torchvision 0.29 points to TorchCodec's image decoders, which need system FFmpeg libraries; until
            # dvtr can assume those, this is the libjpeg-turbo binding at hand. Only this message is muted.
            warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                                    category=DeprecationWarning)
            images = tv_decode_jpeg(data, mode=ImageReadMode.RGB, device=dev)
        sizes = {tuple(im.shape) for im in images}
        if len(sizes) > 1:
            raise ValueError(f"frames of different sizes in one clip: {sorted(sizes)}")
        return torch.stack(images).permute(0, 2, 3, 1)  # CHW -> HWC, as a view: FrameSpec permutes back for free
    except RuntimeError:
        pass
    out = torch.from_numpy(np.stack([decode_jpeg(b) for b in blobs]))
    return out.to(dev) if dev.type != "cpu" else out


def _pad_raw(raw: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[t, H, W, 3]`` -> zero-padded ``[num_frames, H, W, 3]`` and its mask."""
    t = raw.shape[0]
    mask = torch.zeros(num_frames, dtype=torch.bool)
    mask[:t] = True
    if t == num_frames:
        return raw.contiguous(), mask
    out = raw.new_zeros((num_frames, *raw.shape[1:]))
    out[:t] = raw
    return out, mask


def prepare_on(raw: torch.Tensor, mask: torch.Tensor, spec: FrameSpec) -> torch.Tensor:
    """Padded uint8 clips ``[B, T, H, W, 3]`` (+ mask ``[B, T]``) -> float ``[B, T, 3, S, S]`` where they are.

    Padded slots come out as exact zeros, as :func:`pad_clip` makes them on the worker path.
    """
    x = spec(raw)
    return x * mask.to(device=x.device, dtype=x.dtype)[:, :, None, None, None]


def _frame_bytes(item: Any, file: str | None, record: Any) -> bytes:
    if isinstance(item, dict):
        if item.get("bytes") is not None:
            return item["bytes"]
        if item.get("path"):
            with open(item["path"], "rb") as f:
                return f.read()
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    raise InputError("frame has neither bytes nor a readable path", file=file, record=record)


class ClipFrames(TorchDataset):
    """Dataset of one split's clips: index -> (index, float frames [T, 3, S, S], bool mask [T]).

    Works on the raw JPEG bytes of the ``frames`` column (read as Arrow, never decoded by ``datasets``) and
    applies the method's own :class:`~dvtr_bench.models.base.FrameSpec`, so every method sees its backbone's
    preprocessing of the identical stored pixels. ``output`` says what an item holds instead of float frames:
    ``"raw"``, the decoded uint8 frames ``[t, H, W, 3]`` (what the in-memory cache keeps); ``"uint8"``, those
    zero-padded to ``[T, H, W, 3]`` with their mask (the FrameSpec then runs on the device); ``"bytes"``, the
    frames' JPEG bytes (the device decodes them).
    """

    OUTPUTS = ("float", "raw", "uint8", "bytes")

    def __init__(self, split: Any, spec: FrameSpec, name: str = "split", num_frames: int = NUM_FRAMES,
                 raw: bool = False, output: str = "float"):
        if "frames" not in split.column_names:
            raise InputError("dataset split has no 'frames' column", file=name)
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS} (got {output!r})")
        self.name = name
        self.spec = spec
        self.num_frames = num_frames
        self.output = "raw" if raw else output
        # Arrow rows give the stored {"bytes", "path"} structs without datasets decoding (or casting) images.
        self._frames = split.select_columns(["frames"]).with_format("arrow")

    @property
    def raw(self) -> bool:
        return self.output == "raw"

    def view(self, output: str) -> "ClipFrames":
        """The same split with items of another ``output`` kind (shares the Arrow table)."""
        other = ClipFrames.__new__(ClipFrames)
        other.__dict__.update(self.__dict__)
        other.output = output
        return other

    def __len__(self) -> int:
        return len(self._frames)

    def blobs(self, i: int) -> list[bytes]:
        """Clip ``i``'s stored frame bytes (at most ``num_frames``, subsampled uniformly when there are more)."""
        items = self._frames[int(i)].column("frames")[0].as_py()
        if not items:
            raise InputError("clip has no frames", file=self.name, record=int(i))
        T = self.num_frames
        if len(items) > T:
            # Protocol datasets store exactly T frames; a longer list is subsampled uniformly (CLIP4Clip's
            # slice_framepos=2) rather than cut, so the whole clip stays covered.
            keep = np.linspace(0, len(items) - 1, T).round().astype(int)
            items = [items[k] for k in keep]
        return [_frame_bytes(it, self.name, i) for it in items]

    def decode(self, i: int, device: torch.device | str | None = None,
               blobs: Sequence[bytes] | None = None) -> torch.Tensor:
        """Clip ``i``'s stored frames as uint8 ``[t, H, W, 3]`` (t <= num_frames)."""
        blobs = self.blobs(i) if blobs is None else blobs
        try:
            return decode_frames(blobs, device)
        except InputError:
            raise
        except Exception as exc:  # a corrupt JPEG, or frames of mixed sizes inside one clip
            raise InputError(f"cannot decode the clip's frames: {exc}", file=self.name, record=int(i)) from exc

    def __getitem__(self, i: int) -> tuple[int, Any, torch.Tensor]:
        if self.output == "bytes":
            blobs = self.blobs(i)
            mask = torch.zeros(self.num_frames, dtype=torch.bool)
            mask[:len(blobs)] = True
            return int(i), blobs, mask
        raw = self.decode(i)
        if self.output == "raw":
            return int(i), raw, torch.ones(raw.shape[0], dtype=torch.bool)
        if self.output == "uint8":
            padded, mask = _pad_raw(raw, self.num_frames)
            return int(i), padded, mask
        frames, mask = prepare(raw, self.spec, self.num_frames)
        return int(i), frames, mask


def prepare(raw: torch.Tensor, spec: FrameSpec, num_frames: int = NUM_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[t, H, W, 3]`` -> (float ``[num_frames, 3, S, S]`` through the FrameSpec, padded; mask)."""
    return pad_clip(spec(raw), num_frames)


def _collate(batch: list[tuple[int, torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    idx = torch.tensor([b[0] for b in batch], dtype=torch.long)
    return idx, torch.stack([b[1] for b in batch]), torch.stack([b[2] for b in batch])


def _collate_list(batch: list[tuple[int, torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, list[torch.Tensor], None]:
    # Raw clips of one batch may differ in size (source videos of different aspect ratios): keep a list.
    return torch.tensor([b[0] for b in batch], dtype=torch.long), [b[1] for b in batch], None


def _collate_uint8(batch: list[tuple[int, Any, torch.Tensor]]) -> tuple[torch.Tensor, Any, torch.Tensor]:
    # One stacked uint8 tensor when the clips share a frame size (one copy to the device); else a list of clips.
    idx = torch.tensor([b[0] for b in batch], dtype=torch.long)
    masks = torch.stack([b[2] for b in batch])
    clips = [b[1] for b in batch]
    if isinstance(clips[0], torch.Tensor) and len({tuple(c.shape) for c in clips}) == 1:
        return idx, torch.stack(clips), masks
    return idx, clips, masks


def _worker_init(_: int) -> None:
    # Each worker decodes on one core; letting torch spawn a thread pool per worker oversubscribes.
    torch.set_num_threads(1)


def make_loader(frames: ClipFrames, batches: Sequence[Sequence[int]], num_workers: int,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader yielding (indices, frames, masks) for the given batches of clip indices, in that order."""
    collate = {"raw": _collate_list, "uint8": _collate_uint8, "bytes": _collate_uint8}.get(frames.output, _collate)
    return DataLoader(frames, batch_sampler=[list(b) for b in batches], num_workers=num_workers,
                      collate_fn=collate, pin_memory=pin_memory,
                      worker_init_fn=_worker_init if num_workers > 0 else None,
                      prefetch_factor=4 if num_workers > 0 else None)


def _one_ahead(items: Iterator[Any], move: Any) -> Iterator[Any]:
    """Apply ``move`` (an asynchronous host-to-device copy) to the next item before yielding the current one."""
    pending = None
    for item in items:
        moved = move(item)
        if pending is not None:
            yield pending
        pending = moved
    if pending is not None:
        yield pending


_REPORTED_PATHS: set[str] = set()


def choose_frame_path(device: torch.device | str, frame_transform: str = "auto",
                      gpu_decode: bool = False) -> tuple[torch.device | None, torch.device | None]:
    """(frame_device, decode_device) for a run on ``device``.

    ``frame_transform``: "auto" (on the device when it is a GPU, else in the loader workers, which measured
    faster on CPU: the workers spread the float work over the cores), "workers" or "device". ``gpu_decode``
    also decodes the JPEG bytes on the device (CUDA only).
    """
    device = torch.device(device)
    if frame_transform not in FRAME_TRANSFORMS:
        raise ConfigError(f"frame_transform {frame_transform!r} is not supported (known: {', '.join(FRAME_TRANSFORMS)})")
    if gpu_decode:
        if device.type != "cuda":
            raise ConfigError(f"gpu_decode needs a CUDA device (this run is on {device})")
        if frame_transform == "workers":
            raise ConfigError("gpu_decode decodes on the GPU, so the FrameSpec cannot run in the loader workers: "
                              "use frame_transform auto or device")
        return device, device
    on_device = frame_transform == "device" or (frame_transform == "auto" and device.type == "cuda")
    return (device if on_device else None), None


class FrameSource:
    """All clips of a split, either decoded once into memory or streamed through worker processes.

    Every path applies the same FrameSpec to the same decoded pixels, so cached and streamed splits give
    bit-identical inputs (a split's size must never change a number). ``cache``: "auto", True (cache, ready
    to use if it fits the budget, else decoded), "prepared", "raw" or False. ``frame_device`` / ``decode_device``
    (see the module docstring and :func:`choose_frame_path`): where the FrameSpec runs and where JPEG is
    decoded; batches then come out on ``frame_device``. With a frame device the in-memory cache keeps uint8.
    """

    def __init__(self, split: Any, spec: FrameSpec, num_workers: int = 0, cache: bool | str = "auto",
                 name: str = "split", progress: ProgressFn | None = None, decode_batch: int = 16,
                 num_frames: int = NUM_FRAMES, raw_only: bool = False,
                 frame_device: torch.device | str | None = None, decode_device: torch.device | str | None = None):
        self.frames = ClipFrames(split, spec, name=name, num_frames=num_frames)
        self.num_frames = num_frames
        self.spec = spec
        self.num_workers = num_workers
        self.name = name
        self.decode_device = torch.device(decode_device) if decode_device is not None else None
        self.frame_device = torch.device(frame_device) if frame_device is not None else self.decode_device
        # a float cache would undo the point of moving uint8: keep decoded frames instead
        keep_uint8 = raw_only or self.frame_device is not None
        n = len(self.frames)
        prepared_bytes = 4 * n * num_frames * 3 * spec.image_size ** 2
        if cache in ("auto", True):
            raw_bytes = self._estimate_raw_bytes()
            if prepared_bytes <= PREPARED_CACHE_BYTES and not keep_uint8:
                self.mode = "prepared"
            elif cache is True or (raw_bytes is not None and raw_bytes <= RAW_CACHE_BYTES):
                self.mode = "raw"
            else:
                self.mode = "stream"
        elif cache in ("prepared", "raw"):
            self.mode = "raw" if keep_uint8 else str(cache)
        elif cache in (False, None, "stream", "none"):
            self.mode = "stream"
        else:
            raise ValueError(f"frame_cache must be auto, prepared, raw or stream (got {cache!r})")
        self._raw: list[torch.Tensor] | None = None
        self._prepared: tuple[torch.Tensor, torch.Tensor] | None = None
        if progress is not None and self.path not in _REPORTED_PATHS:
            # Said once per process and path, so a user sees which data path runs without a line per split.
            _REPORTED_PATHS.add(self.path)
            progress(Progress(task="data path", completed=1, total=1, info={"frames": self.path}))
        if self.mode != "stream":
            self._materialise(progress, decode_batch)

    @property
    def path(self) -> str:
        """The data path in words: decoder, where the FrameSpec runs, what is cached."""
        workers = f"{self.num_workers} worker{'s' if self.num_workers != 1 else ''}" if self.num_workers else "the main process"
        decode = (f"nvjpeg on {self.decode_device} (batched)" if self.decode_device is not None
                  and self.decode_device.type == "cuda" else
                  "libjpeg-turbo in the main process (batched)" if self.decode_device is not None else
                  f"libjpeg-turbo in {workers}")
        spec = (f"FrameSpec on {self.frame_device} (uint8 until there)" if self.frame_device is not None
                else f"FrameSpec in {workers}")
        cache = {"prepared": "split kept preprocessed in memory", "raw": "split kept decoded (uint8) in memory",
                 "stream": "streamed"}[self.mode]
        return f"{decode}; {spec}; {cache}"

    @property
    def cached(self) -> bool:
        return self.mode != "stream"

    def _estimate_raw_bytes(self) -> int | None:
        n = len(self.frames)
        if n == 0:
            return 0
        try:
            first = self.frames.decode(0)
        except InputError:
            return None
        return int(first.numel()) * n

    def __len__(self) -> int:
        return len(self.frames)

    def _materialise(self, progress: ProgressFn | None, decode_batch: int) -> None:
        n = len(self.frames)
        batches = [list(range(s, min(n, s + decode_batch))) for s in range(0, n, decode_batch)]
        done = 0
        if self.mode == "prepared":
            S = self.spec.image_size
            data = torch.empty((n, self.num_frames, 3, S, S), dtype=torch.float32)
            mask = torch.zeros((n, self.num_frames), dtype=torch.bool)
            for idx, f, m in make_loader(self.frames, batches, self.num_workers):
                data[idx], mask[idx] = f, m
                done += len(idx)
                if progress is not None:
                    progress(Progress(task=f"decode {self.name}", completed=done, total=n))
            self._prepared = (data, mask)
            return
        out: list[torch.Tensor | None] = [None] * n
        for idx, clips, _ in make_loader(self.frames.view("raw"), batches, self.num_workers):
            for i, c in zip(idx.tolist(), clips):
                out[i] = c.clone()
            done += len(idx)
            if progress is not None:
                progress(Progress(task=f"decode {self.name}", completed=done, total=n))
        self._raw = out  # type: ignore[assignment]

    def batches(self, batches: Sequence[Sequence[int]], transform: Any = None,
                generator: torch.Generator | None = None, clip_seeds: Sequence[Sequence[int]] | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (indices, float frames [B, T, 3, S, S], mask [B, T]) for each batch of clip indices, in order.

        ``transform(raw_uint8 [t, H, W, 3], generator) -> float [t, 3, S, S]`` replaces the FrameSpec (training
        augmentation); it needs a source built with ``raw_only=True`` (the prepared cache has no raw frames).
        Its draws come from ``generator``, or with ``clip_seeds`` (shaped like ``batches``) clip ``k`` of batch
        ``b`` draws from its own generator seeded with ``clip_seeds[b][k]``: what a clip gets then does not depend
        on which other clips were transformed before it.
        """
        if transform is not None:
            if clip_seeds is not None and [len(s) for s in clip_seeds] != [len(b) for b in batches]:
                raise ValueError("clip_seeds must hold one seed per clip of batches")
            yield from self._transformed(batches, transform, generator, clip_seeds)
            return
        if self.frame_device is not None:
            yield from self._on_device(batches)
        elif self._prepared is not None:
            data, mask = self._prepared
            for b in batches:
                idx = torch.as_tensor(list(b), dtype=torch.long)
                yield idx, data[idx], mask[idx]
        elif self._raw is not None:
            for b in batches:
                prepared = [prepare(self._raw[i], self.spec, self.num_frames) for i in b]
                yield (torch.as_tensor(list(b), dtype=torch.long), torch.stack([p[0] for p in prepared]),
                       torch.stack([p[1] for p in prepared]))
        else:
            yield from make_loader(self.frames, batches, self.num_workers)

    def _on_device(self, batches: Sequence[Sequence[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The uint8 path: padded uint8 clips reach ``frame_device`` (pinned, non-blocking, one batch ahead),
        where they are decoded (``decode_device``) and/or put through the FrameSpec."""
        dev = self.frame_device
        assert dev is not None
        pin = dev.type == "cuda"
        T = self.num_frames

        def move(item: tuple[torch.Tensor, Any, torch.Tensor]) -> tuple[torch.Tensor, Any, torch.Tensor]:
            idx, clips, mask = item
            if isinstance(clips, torch.Tensor):
                clips = (clips.pin_memory() if pin and not clips.is_pinned() else clips).to(dev, non_blocking=True)
            return idx, clips, mask.to(dev, non_blocking=True)

        if self._raw is not None:
            cached = (_collate_uint8([(i, *_pad_raw(self._raw[i], T)) for i in b]) for b in batches)
            items: Iterator[tuple[torch.Tensor, Any, torch.Tensor]] = _one_ahead(cached, move)
        elif self.decode_device is not None:
            # The workers only read bytes; every frame of the batch is decoded on the device.
            items = (self._decode_batch(idx, blobs, mask) for idx, blobs, mask in
                     make_loader(self.frames.view("bytes"), batches, self.num_workers))
        else:
            items = _one_ahead(iter(make_loader(self.frames.view("uint8"), batches, self.num_workers,
                                                pin_memory=pin)), move)
        for idx, clips, mask in items:
            if isinstance(clips, torch.Tensor):
                frames = prepare_on(clips, mask, self.spec)
            else:  # clips of different frame sizes: the FrameSpec brings each to S x S
                frames = torch.stack([prepare_on(c.to(dev)[None], m[None], self.spec)[0]
                                      for c, m in zip(clips, mask)])
            yield idx, frames, mask

    def _decode_batch(self, idx: torch.Tensor, blobs: list[list[bytes]],
                      mask: torch.Tensor) -> tuple[torch.Tensor, Any, torch.Tensor]:
        dev = self.decode_device
        clips = [_pad_raw(self.frames.decode(int(i), device=dev, blobs=b), self.num_frames)[0]
                 for i, b in zip(idx.tolist(), blobs)]
        mask = mask.to(dev)
        if len({tuple(c.shape) for c in clips}) == 1:
            return idx, torch.stack(clips), mask
        return idx, clips, mask


    def _transformed(self, batches: Sequence[Sequence[int]], transform: Any, generator: torch.Generator | None,
                     clip_seeds: Sequence[Sequence[int]] | None = None
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        if self._prepared is not None:
            raise ValueError(f"{self.name}: a transform needs raw frames; build the FrameSource with raw_only=True")
        if self._raw is not None:
            clips: Iterator[tuple[list[int], list[torch.Tensor]]] = (
                (list(b), [self._raw[i] for i in b]) for b in batches)
        else:
            clips = ((idx.tolist(), raws) for idx, raws, _ in
                     make_loader(self.frames.view("raw"), batches, self.num_workers))
        for b, (idx, raws) in enumerate(clips):
            gens = ([torch.Generator().manual_seed(int(s)) for s in clip_seeds[b]] if clip_seeds is not None
                    else [generator] * len(raws))
            prepared = [pad_clip(transform(r, g), self.num_frames) for r, g in zip(raws, gens)]
            yield (torch.as_tensor(idx, dtype=torch.long), torch.stack([p[0] for p in prepared]),
                   torch.stack([p[1] for p in prepared]))


@dataclass
class Captions:
    """The captions of a split, flattened: ``texts[k]`` belongs to clip ``caption_to_clip[k]``.

    Every clip of the split is kept, in split order, including a clip without captions: the protocol makes it
    a text->video distractor (it is scored against every caption, it is no video->text query, and training
    never draws it). A caption that is empty, only whitespace or not a string is an annotation problem and
    raises an :class:`~dvtr_bench.errors.InputError` naming the clip and the caption; it is never dropped.
    """

    texts: list[str]
    caption_to_clip: np.ndarray
    clip_ids: list[str]
    # offsets[c]:offsets[c+1] are clip c's captions in ``texts``
    offsets: np.ndarray

    @classmethod
    def from_split(cls, split: Any, name: str = "split") -> "Captions":
        for col in ("clip_id", "captions"):
            if col not in split.column_names:
                raise InputError(f"dataset split has no '{col}' column", file=name)
        arrow = _caption_columns(split)
        if arrow is not None:
            clip_ids, texts, offsets = arrow
            owner = np.repeat(np.arange(len(clip_ids), dtype=np.int64), np.diff(offsets))
            bad = [k for k, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
            if bad:
                c = int(owner[bad[0]])
                cls._check_texts(texts[offsets[c]:offsets[c + 1]], name, clip_ids[c])
        else:
            clip_ids, texts, owner, offsets = cls._from_rows(split, name)
        if _has_duplicates(clip_ids):
            raise InputError("clip_id values are not unique", file=name)
        return cls(texts, np.asarray(owner, dtype=np.int64), clip_ids, np.asarray(offsets, dtype=np.int64))

    @staticmethod
    def _check_texts(lst: list[Any], name: str, clip_id: Any) -> None:
        for k, t in enumerate(lst):
            if not isinstance(t, str) or not t.strip():
                what = ("is not a string" if not isinstance(t, str) else
                        "is empty" if not t else "is only whitespace")
                raise InputError(
                    f"caption {k + 1} of {len(lst)} {what}: an annotation problem. Fix or remove it in the "
                    "annotations and rebuild the dataset (`dvtr annotations validate` lists such captions "
                    "as empty_caption)", file=name, record=clip_id)

    @classmethod
    def _from_rows(cls, split: Any, name: str) -> tuple[list[Any], list[str], list[int], list[int]]:
        """Row by row, for a split that is not an Arrow-backed ``datasets.Dataset``."""
        clip_ids = list(split["clip_id"])
        caps = list(split["captions"])
        texts: list[str] = []
        owner: list[int] = []
        offsets = [0]
        for c, lst in enumerate(caps):
            lst = list(lst or [])
            cls._check_texts(lst, name, clip_ids[c])
            texts.extend(lst)
            owner.extend([c] * len(lst))
            offsets.append(len(texts))
        return clip_ids, texts, owner, offsets

    @property
    def n_clips(self) -> int:
        return len(self.clip_ids)

    @property
    def n_uncaptioned(self) -> int:
        """Clips without any caption (text->video distractors only)."""
        return int(np.count_nonzero(np.diff(self.offsets) == 0))

    @functools.cached_property
    def text_ids(self) -> np.ndarray:
        """One integer per caption; equal exactly when the two texts are equal up to case and whitespace."""
        ids: dict[str, int] = {}
        return np.asarray([ids.setdefault(caption_key(t), len(ids)) for t in self.texts], dtype=np.int64)

    def caption_ids(self) -> list[str]:
        """Stable caption ids "<clip_id>#<k>" (k = position in the clip's caption list)."""
        return [f"{self.clip_ids[c]}#{k - self.offsets[c]}" for k, c in enumerate(self.caption_to_clip)]


def _caption_columns(split: Any) -> tuple[list[Any], list[Any], np.ndarray] | None:
    """(clip ids, flat caption texts, offsets) read from the split's Arrow columns, or None if it has none.

    Only the clip ids and the captions themselves become Python objects: no list per clip (a split of mostly
    uncaptioned distractor clips would otherwise build one empty list per clip), and no row dicts.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not hasattr(split, "select_columns") or not hasattr(split, "with_format"):
        return None
    # [:] honours an indices mapping (a select / shuffle / filter); without one it is a zero-copy slice.
    table = split.select_columns(["clip_id", "captions"]).with_format("arrow")[:]
    if not isinstance(table, pa.Table):
        return None
    caps = table.column("captions")
    if not (pa.types.is_list(caps.type) or pa.types.is_large_list(caps.type)):
        return None
    lengths = pc.fill_null(pc.list_value_length(caps), 0).to_numpy().astype(np.int64, copy=False)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64, copy=False)
    texts = pc.list_flatten(caps).to_pylist()
    return table.column("clip_id").to_pylist(), texts, offsets


def _has_duplicates(ids: list[Any]) -> bool:
    """Whether a value repeats, checked on a sorted copy of the list (8 bytes per id; a set of them took about
    100, and Arrow's ``count_distinct`` left a hash table of about 300 resident in its own allocator)."""
    try:
        order = sorted(ids)
    except TypeError:  # ids of mixed types (a missing clip_id): fall back to hashing them
        return len(set(ids)) != len(ids)
    return any(order[k] == order[k + 1] for k in range(len(order) - 1))


def caption_key(text: str) -> str:
    """What makes two captions "the same text" for batching: case and runs of whitespace are ignored."""
    return " ".join(text.casefold().split())


def epoch_plan(captions: Captions, seed: int, epoch: int, batch_size: int) -> list[list[tuple[int, int]]]:
    """Training order for one epoch: batches of (clip index, caption index into ``captions.texts``).

    Every (caption, clip) pair of the split is visited once per epoch, as the CLIP4Clip, X-Pool and MSAM
    releases do (their loaders iterate sentence-level pairs), in a random order that depends only on
    (seed, epoch) -- a resumed run replays exactly the epochs it missed. Unlike the releases' plain shuffles,
    a batch never holds two captions of one clip, nor two identical caption texts (:func:`caption_key`) of
    different clips: either would put a positive among the InfoNCE negatives.

    Batches are filled greedily in shuffled order; a pair that would break the rule waits for the next batch
    with room for it. The pairs left when no full batch can be made any more (fewer than ``batch_size``, plus
    any that cannot be placed) sit this epoch out, like the releases' ``drop_last``. Clips without captions are
    never drawn.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    g = np.random.default_rng([int(seed), int(epoch), 0x64767472])
    owner = captions.caption_to_clip.tolist()
    key = captions.text_ids.tolist()
    stream = iter(g.permutation(len(owner)).tolist())
    batches: list[list[tuple[int, int]]] = []
    carry: list[int] = []
    exhausted = False
    while True:
        batch: list[int] = []
        clips: set[int] = set()
        texts: set[int] = set()
        waiting: list[int] = []
        pending = iter(carry)  # pairs that waited get the first chance, then the shuffled stream
        while len(batch) < batch_size:
            k = next(pending, None)
            if k is None and not exhausted:
                k = next(stream, None)
                exhausted = k is None
            if k is None:
                break
            if owner[k] in clips or key[k] in texts:
                waiting.append(k)
            else:
                batch.append(k)
                clips.add(owner[k])
                texts.add(key[k])
        carry = waiting + list(pending)
        if len(batch) < batch_size:
            return batches
        batches.append([(owner[k], k) for k in batch])
