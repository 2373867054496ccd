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
import threading
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
# "threads": decoding threads in the run's process (the default); "processes": DataLoader worker processes
LOADERS = ("threads", "processes")


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG (or any image PIL reads) bytes -> uint8 [H, W, 3] RGB, through PIL."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def decode_images(blobs: Sequence[bytes], device: torch.device | str | None = None) -> list[torch.Tensor]:
    """One clip's stored frames -> a list of uint8 ``[H, W, 3]`` RGB frames on ``device`` (CPU by default).

    libjpeg-turbo (or nvjpeg for a CUDA device) through ``torchvision.io.decode_jpeg``, all frames in one batched
    call, as it decodes them (channels last in memory; not stacked: a caller copies each frame once, straight
    where it belongs). Its pixels equal PIL's on the stored frames (both are libjpeg-turbo with the same IDCT;
    the tests check it). A frame it cannot read (PNG, CMYK JPEG) sends the clip through PIL instead.
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
            # torchvision returns [3, H, W] views of channels-last memory: permuting back is free
            images = [im.permute(1, 2, 0) for im in tv_decode_jpeg(data, mode=ImageReadMode.RGB, device=dev)]
    except RuntimeError:
        images = [torch.from_numpy(np.require(decode_jpeg(b), requirements="W")).to(dev) for b in blobs]
    sizes = {tuple(im.shape) for im in images}
    if len(sizes) > 1:
        raise ValueError(f"frames of different sizes in one clip: {sorted(sizes)}")
    return images


def decode_frames(blobs: Sequence[bytes], device: torch.device | str | None = None) -> torch.Tensor:
    """One clip's stored frames -> uint8 ``[t, H, W, 3]`` RGB on ``device`` (CPU by default); see
    :func:`decode_images`."""
    return torch.stack(decode_images(blobs, device))


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

    def images(self, i: int, device: torch.device | str | None = None,
               blobs: Sequence[bytes] | None = None) -> list[torch.Tensor]:
        """Clip ``i``'s stored frames as a list of uint8 ``[H, W, 3]`` (at most num_frames)."""
        blobs = self.blobs(i) if blobs is None else blobs
        try:
            return decode_images(blobs, device)
        except InputError:
            raise
        except Exception as exc:  # a corrupt JPEG, or frames of mixed sizes inside one clip
            raise InputError(f"cannot decode the clip's frames: {exc}", file=self.name, record=int(i)) from exc

    def decode(self, i: int, device: torch.device | str | None = None,
               blobs: Sequence[bytes] | None = None) -> torch.Tensor:
        """Clip ``i``'s stored frames as uint8 ``[t, H, W, 3]`` (t <= num_frames)."""
        return torch.stack(self.images(i, device, blobs))

    def __getitem__(self, i: int) -> tuple[int, Any, torch.Tensor]:
        if self.output == "bytes":
            blobs = self.blobs(i)
            mask = torch.zeros(self.num_frames, dtype=torch.bool)
            mask[:len(blobs)] = True
            return int(i), blobs, mask
        if self.output == "raw":
            raw = self.decode(i)
            return int(i), raw, torch.ones(raw.shape[0], dtype=torch.bool)
        idx, frames, mask = self.batch([i])
        return int(idx[0]), frames[0], mask[0]

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """Clips ``indices`` as one batch: (indices, frames, mask ``[B, T]``), ``frames`` as ``output`` says.

        ``"float"``: ``[B, T, 3, S, S]`` through the FrameSpec; ``"uint8"``: ``[B, T, H, W, 3]``, where a frame
        whose short side is already S is centre-cropped to S x S (the FrameSpec's first step, a selection of
        bytes: only the pixels the model sees cross to the device), or a list of per-clip tensors when clips of
        the batch still differ in size. Padded slots are exact zeros.

        Each decoded frame is written once, straight into its slot of the batch (in a DataLoader worker the
        batch is allocated in shared memory, so handing it to the main process copies nothing more).
        """
        job = _BatchJob(self, indices, _batch_buffer)
        for b in range(len(job.idx)):
            job.fill(b)
        return job.result()

    def batch_shape(self, n: int, frame_hw: tuple[int, int]) -> tuple[tuple[int, ...], torch.dtype]:
        """(shape, dtype) of a batch of ``n`` clips whose stored frames are ``frame_hw``."""
        T, S = self.num_frames, self.spec.image_size
        if self.output == "float":
            return (n, T, 3, S, S), torch.float32
        if self.output != "uint8":
            raise ValueError(f"only float and uint8 items are assembled into batches (this view: {self.output!r})")
        h, w = frame_hw
        return ((n, T, S, S, 3) if min(h, w) == S else (n, T, h, w, 3)), torch.uint8

    def uint8_crop(self, frame: torch.Tensor) -> torch.Tensor:
        """A decoded ``[H, W, 3]`` frame as a uint8 batch carries it: its centre ``S x S`` crop (a view) when the
        short side is already S, the FrameSpec's first step; else the whole frame (the FrameSpec resizes it)."""
        h, w = int(frame.shape[0]), int(frame.shape[1])
        s = self.spec.image_size
        if min(h, w) != s:
            return frame
        top, left = self.spec.crop_offsets(h, w)
        return frame[top:top + s, left:left + s]

    def write_clip(self, frames: Sequence[torch.Tensor], out: torch.Tensor) -> bool:
        """Write a clip's decoded frames (uint8 ``[H, W, 3]`` each) into ``out``, its batch slot (float
        ``[T, 3, S, S]`` through the FrameSpec, or uint8 ``[T, h, w, 3]``, centre-cropped when the short side is
        already S), and zero the padded slots.

        False (nothing written) when uint8 frames of this stored size do not fit ``out``.
        """
        dst = out.numpy()  # NumPy from here: one thread per call, the GIL released (see FrameSpec.into)
        if self.output == "float":
            for k, f in enumerate(frames):
                self.spec.into(f.numpy(), dst[k])
        else:
            kept = [self.uint8_crop(f) for f in frames]
            if tuple(kept[0].shape) != tuple(out.shape[1:]):
                return False
            for k, f in enumerate(kept):
                np.copyto(dst[k], f.numpy())
        dst[len(frames):] = 0
        return True


class _BatchJob:
    """One batch being assembled: clips decoded (possibly by several threads) into one buffer."""

    def __init__(self, frames: ClipFrames, indices: Sequence[int], allocate: Any):
        self.frames = frames
        self.idx = torch.tensor([int(i) for i in indices], dtype=torch.long)
        self.mask = torch.zeros((len(self.idx), frames.num_frames), dtype=torch.bool)
        self.allocate = allocate
        self.out: torch.Tensor | None = None
        self.aside: dict[int, list[torch.Tensor]] = {}
        self._lock = threading.Lock()

    def _buffer(self, frame_hw: tuple[int, int]) -> torch.Tensor:
        with self._lock:  # the first clip decoded fixes the batch's frame size
            if self.out is None:
                self.out = self.allocate(*self.frames.batch_shape(len(self.idx), frame_hw))
            return self.out

    def fill(self, b: int) -> None:
        """Decode the batch's clip ``b`` into its slot (thread-safe: each clip writes its own slot)."""
        frames = self.frames.images(int(self.idx[b]))
        out = self._buffer((int(frames[0].shape[0]), int(frames[0].shape[1])))
        if not self.frames.write_clip(frames, out[b]):
            self.aside[b] = [self.frames.uint8_crop(f) for f in frames]
        self.mask[b, :len(frames)] = True

    def result(self) -> tuple[torch.Tensor, Any, torch.Tensor]:
        assert self.out is not None or len(self.idx) == 0
        if self.out is None:
            return self.idx, torch.empty(0), self.mask
        if not self.aside:
            return self.idx, self.out, self.mask
        # clips of different frame sizes: a list, and the FrameSpec on the device brings each to S x S
        T = self.frames.num_frames
        return self.idx, [_pad_raw(torch.stack(self.aside[b]), T)[0] if b in self.aside else self.out[b]
                          for b in range(len(self.idx))], self.mask


def _batch_buffer(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor for a batch: in shared memory inside a DataLoader worker, where the batch then
    crosses to the main process without a copy (as torch's default collate does), else ordinary memory."""
    from torch.utils.data import get_worker_info

    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = 1
    for d in shape:
        numel *= d
    storage = torch.UntypedStorage._new_shared(numel * torch.empty((), dtype=dtype).element_size())
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


def prepare(raw: torch.Tensor, spec: FrameSpec, num_frames: int = NUM_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[t, H, W, 3]`` -> (float ``[num_frames, 3, S, S]`` through the FrameSpec, padded; mask)."""
    return pad_clip(spec(raw), num_frames)


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


def _item_collate(output: str) -> Any:
    """How per-clip items of a "raw" or "bytes" view become a batch (float and uint8 batches are assembled)."""
    return _collate_list if output == "raw" else _collate_uint8


def _worker_init(_: int) -> None:
    # Each worker decodes on one core; letting torch spawn a thread pool per worker oversubscribes.
    torch.set_num_threads(1)


class _Batches(TorchDataset):
    """A DataLoader's view of a ClipFrames: each whole batch is made in the worker (float and uint8 ones
    assembled by ``ClipFrames.batch``), and a clip's InputError comes back as a value, so the main process
    raises it as it was (the DataLoader would re-raise it with the worker's traceback in its message)."""

    def __init__(self, frames: ClipFrames):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> tuple[int, Any, torch.Tensor]:
        return self.frames[i]

    def __getitems__(self, indices: Sequence[int]) -> Any:
        try:
            if self.frames.output in ("float", "uint8"):
                return self.frames.batch(indices)
            return _item_collate(self.frames.output)([self.frames[i] for i in indices])
        except InputError as exc:
            return LoaderFailure.of(exc)


@dataclass(frozen=True)
class LoaderFailure:
    """An InputError raised in a DataLoader worker, carried back as a value (see :func:`raise_failures`)."""

    reason: str
    file: str | None
    record: Any

    @classmethod
    def of(cls, exc: InputError) -> "LoaderFailure":
        return cls(exc.reason, exc.file, exc.record)


def assembled(batch: Any) -> Any:
    """A DataLoader collate_fn for a dataset whose ``__getitems__`` returns the whole batch already."""
    return batch


def raise_failures(items: Iterator[Any]) -> Iterator[Any]:
    """The items of a DataLoader, raising a :class:`LoaderFailure` among them as the InputError it was: the
    DataLoader itself would re-raise it with the worker's traceback in its message."""
    for item in items:
        if isinstance(item, LoaderFailure):
            raise InputError(item.reason, file=item.file, record=item.record)
        yield item


def make_loader(frames: ClipFrames, batches: Sequence[Sequence[int]], num_workers: int,
                pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, Any, torch.Tensor]]:
    """(indices, frames, masks) for the given batches of clip indices, in that order, from a DataLoader with
    ``num_workers`` worker processes."""
    return raise_failures(iter(DataLoader(_Batches(frames), batch_sampler=[list(b) for b in batches],
                                    num_workers=num_workers, collate_fn=assembled, pin_memory=pin_memory,
                                    worker_init_fn=_worker_init if num_workers > 0 else None,
                                    prefetch_factor=4 if num_workers > 0 else None)))


class BufferPool:
    """Batch buffers reused once nothing else holds them, so a stream of batches stops faulting in fresh pages.

    A batch of 16 clips is 30 to 120 MB; allocating it anew each time costs a page fault per 4 KiB written
    (measured here: a third of the decode time). A buffer returns to service when its storage has no other
    holder than the pool (the consumer dropped the batch and every view of it), checked with torch's storage
    use count. Pinned buffers (for CUDA copies) are not pooled here: torch's caching host allocator already
    reuses them, and knows when a non-blocking copy out of one has finished.
    """

    def __init__(self, pin: bool = False, keep: int = 8):
        self.pin = pin
        self.keep = keep
        self._free: list[torch.Tensor] = []
        self._lock = threading.Lock()
        self._use_count = getattr(torch._C, "_storage_Use_Count", None)

    def __call__(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        if self.pin:
            return torch.empty(shape, dtype=dtype, pin_memory=True)
        with self._lock:
            for t in self._free:
                # 2: the pool's own tensor and the temporary storage object of this check
                if t.shape == shape and t.dtype == dtype and self._held(t) <= 2:
                    return t.view(shape)
            t = torch.empty(shape, dtype=dtype)
            if self._use_count is None:
                return t
            if len(self._free) >= self.keep:
                self._free.pop(0)
            self._free.append(t)
            # Handed out as an alias, a tensor of its own over the same storage: while the caller (or anything it
            # passes the batch to) holds it, the storage's use count says so. The pool's tensor itself would not.
            return t.view(shape)

    def _held(self, t: torch.Tensor) -> int:
        assert self._use_count is not None
        return int(self._use_count(t.untyped_storage()._cdata))


def threaded_batches(frames: ClipFrames, batches: Sequence[Sequence[int]], threads: int,
                     pool: BufferPool | None = None, ahead: int = 2
                     ) -> Iterator[tuple[torch.Tensor, Any, torch.Tensor]]:
    """(indices, frames, mask) for each batch of clip indices, in order, decoded by ``threads`` threads.

    The decoder (libjpeg-turbo through torchvision) and the NumPy that writes each frame into its slot release
    the GIL, so threads decode in parallel inside this process: no batch is pickled, copied into shared memory
    or faulted in afresh (buffers come from ``pool``), and no worker process starts. Up to ``ahead`` batches
    beyond the one being consumed are decoded in the background, one clip per task so that every thread works
    on the next batch. Float and uint8 views are assembled into one buffer per batch; "raw" and "bytes" items
    are collated as the worker loader does.
    """
    pool = pool or BufferPool()

    def job(b: list[int]) -> tuple[list[Any], Any]:
        if frames.output in ("raw", "bytes"):
            items: list[Any] = [None] * len(b)
            return ([functools.partial(_put, items, k, frames.__getitem__, i) for k, i in enumerate(b)],
                     functools.partial(_item_collate(frames.output), items))
        batch = _BatchJob(frames, b, pool)
        return [functools.partial(batch.fill, k) for k in range(len(b))], batch.result

    yield from _pipeline([list(b) for b in batches], job, threads, ahead)


def _put(items: list[Any], k: int, fn: Any, *args: Any) -> None:
    items[k] = fn(*args)


def _pipeline(order: list[list[int]], job: Any, threads: int, ahead: int) -> Iterator[Any]:
    """Run each batch's tasks (``job(batch) -> (tasks, finish)``) on ``threads`` threads, at most ``ahead``
    batches beyond the one being consumed (memory stays bounded), and yield ``finish()`` of each, in order."""
    if threads <= 0:
        for b in order:
            tasks, finish = job(b)
            for task in tasks:
                task()
            yield finish()
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dvtr-decode") as ex:
        pending: deque[tuple[list[Any], Any]] = deque()
        nxt = 0
        try:
            while nxt < len(order) or pending:
                while nxt < len(order) and len(pending) <= ahead:
                    tasks, finish = job(order[nxt])
                    pending.append(([ex.submit(t) for t in tasks], finish))
                    nxt += 1
                futures, finish = pending.popleft()
                for f in futures:
                    f.result()  # a clip's error (an InputError naming it) surfaces here, in order
                yield finish()
        finally:
            for futures, _ in pending:
                for f in futures:
                    f.cancel()


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
                 frame_device: torch.device | str | None = None, decode_device: torch.device | str | None = None,
                 loader: str = "threads"):
        if loader not in LOADERS:
            raise ConfigError(f"loader {loader!r} is not supported (known: {', '.join(LOADERS)})")
        self.loader = loader
        self.frames = ClipFrames(split, spec, name=name, num_frames=num_frames)
        self.num_frames = num_frames
        self.spec = spec
        self.num_workers = num_workers
        self.name = name
        self.decode_device = torch.device(decode_device) if decode_device is not None else None
        self.frame_device = torch.device(frame_device) if frame_device is not None else self.decode_device
        self._pool = BufferPool(pin=self.frame_device is not None and self.frame_device.type == "cuda")
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
        n = self.num_workers
        workers = ("the main process" if not n else f"{n} thread{'s' if n != 1 else ''}"
                   if self.loader == "threads" else f"{n} worker process{'es' if n != 1 else ''}")
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
            for idx, f, m in self.stream(self.frames, batches):
                data[idx], mask[idx] = f, m
                done += len(idx)
                if progress is not None:
                    progress(Progress(task=f"decode {self.name}", completed=done, total=n))
            self._prepared = (data, mask)
            return
        out: list[torch.Tensor | None] = [None] * n
        for idx, clips, _ in self.stream(self.frames.view("raw"), batches):
            for i, c in zip(idx.tolist(), clips):
                # A worker process's clip lives in shared memory (a file descriptor each): keep a private copy. A
                # decoding thread's clip is already its own tensor, so a copy would only double the work.
                out[i] = c.clone() if self.loader == "processes" else c
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
            yield from self.stream(self.frames, batches)

    def stream(self, frames: ClipFrames, batches: Sequence[Sequence[int]], pin: bool = False
               ) -> Iterator[tuple[torch.Tensor, Any, torch.Tensor]]:
        """(indices, frames, mask) of ``frames`` (this source's ClipFrames, or a view of it: ``frames.view("uint8")``
        is what a GPU run's loader hands over) for each batch, decoded by this source's loader: ``num_workers``
        threads, or DataLoader worker processes. ``pin``: batches in pinned memory (for CUDA copies)."""
        if self.loader == "threads":
            return threaded_batches(frames, batches, self.num_workers, pool=self._pool)
        return make_loader(frames, batches, self.num_workers, pin_memory=pin)

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
                     self.stream(self.frames.view("bytes"), batches))
        else:
            items = _one_ahead(self.stream(self.frames.view("uint8"), batches, pin=pin), move)
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
                     self.stream(self.frames.view("raw"), batches))
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
