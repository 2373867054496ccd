"""What a person looks at: thumbnail strips of a clip's stored frames, its telemetry, and a dataset's frames by id.

A *strip* is one JPEG holding ``n`` of the clip's frames side by side, each center-cropped to 16:9 and scaled to
``STRIP_FRAME_SIZE``. Pages show it one frame at a time and flip through it on hover (pure CSS), so a hit's motion
-- a pan, a descent -- is visible without a video player. One small image per clip keeps a 100,000-clip index a
few hundred megabytes and a page light.

No torch here: the gallery command, which needs only score files and stored frames, uses these too.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from dvtr_bench.dataset.hub import open_dataset
from dvtr_bench.errors import InputError

STRIP_FRAMES = 6
STRIP_FRAME_SIZE = (128, 72)   # width, height of one frame in a strip
STRIP_QUALITY = 80


def _as_image(frame: Any, size: tuple[int, int]) -> Any:
    from PIL import Image

    if isinstance(frame, (bytes, bytearray, memoryview)):
        im = Image.open(io.BytesIO(bytes(frame)))
        # JPEG decoders can scale by 1/2..1/8 while decoding: far cheaper than a full decode for a thumbnail.
        im.draft("RGB", (size[0] * 2, size[1] * 2))
        return im.convert("RGB")
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected JPEG bytes or uint8 [H, W, 3] frames, got {arr.shape} {arr.dtype}")
    return Image.fromarray(arr)


def _fit(im: Any, size: tuple[int, int]) -> Any:
    """Center-crop to the aspect of ``size``, then resize to it."""
    from PIL import Image

    w, h = im.size
    tw, th = size
    if w * th > h * tw:          # wider than the target: crop the sides
        nw = max(1, round(h * tw / th))
        left = (w - nw) // 2
        im = im.crop((left, 0, left + nw, h))
    elif w * th < h * tw:        # taller: crop top and bottom
        nh = max(1, round(w * th / tw))
        top = (h - nh) // 2
        im = im.crop((0, top, w, top + nh))
    return im.resize(size, Image.BILINEAR, reducing_gap=2.0)


def pick_frames(n_available: int, n: int = STRIP_FRAMES) -> list[int]:
    """Indices of ``n`` frames spread evenly over ``n_available`` (all of them when there are fewer)."""
    if n_available <= n:
        return list(range(n_available))
    return [int(round(x)) for x in np.linspace(0, n_available - 1, n)]


def thumbnail_strip(frames: Sequence[Any], n: int = STRIP_FRAMES, size: tuple[int, int] = STRIP_FRAME_SIZE,
                    quality: int = STRIP_QUALITY) -> bytes:
    """A JPEG strip of ``n`` frames picked evenly from ``frames`` (JPEG bytes or uint8 ``[H, W, 3]`` arrays).

    A clip with fewer frames repeats its last one, so every strip holds exactly ``n`` frames and a page can rely on
    the layout. Raises ValueError for a clip without frames.
    """
    from PIL import Image

    if len(frames) == 0:
        raise ValueError("a clip without frames has no thumbnail")
    idx = pick_frames(len(frames), n)
    idx += [idx[-1]] * (n - len(idx))
    strip = Image.new("RGB", (size[0] * n, size[1]))
    cache: dict[int, Any] = {}
    for k, i in enumerate(idx):
        if i not in cache:
            cache[i] = _fit(_as_image(frames[i], size), size)
        strip.paste(cache[i], (k * size[0], 0))
    buf = io.BytesIO()
    strip.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------- telemetry

_LAT = ("lat", "latitude")
_LON = ("lon", "lng", "longitude")
_ALT = ("alt", "alt_m", "altitude", "altitude_m", "height_m")


def _point(d: Any) -> dict[str, float] | None:
    if not isinstance(d, dict):
        return None
    lat = next((d[k] for k in _LAT if isinstance(d.get(k), (int, float))), None)
    lon = next((d[k] for k in _LON if isinstance(d.get(k), (int, float))), None)
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    out = {"lat": float(lat), "lon": float(lon)}
    alt = next((d[k] for k in _ALT if isinstance(d.get(k), (int, float))), None)
    if alt is not None:
        out["alt_m"] = float(alt)
    return out


def telemetry_of(meta: str | dict[str, Any] | None, start_s: float | None = None, end_s: float | None = None
                 ) -> dict[str, Any] | None:
    """The GPS position of a clip from its ``meta`` column, or None.

    Read forms: ``{"lat", "lon"[, "alt"]}`` at the top level or under ``"telemetry"`` / ``"gps"``; or, under
    those keys, a list of timed samples ``[{"t": seconds, "lat", "lon", ...}, ...]`` (times in the source video),
    from which the sample nearest the clip's middle is taken and the samples inside the clip are counted.
    """
    if meta is None:
        return None
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return None
    if not isinstance(meta, dict):
        return None
    for key in ("telemetry", "gps"):
        val = meta.get(key)
        if isinstance(val, list):
            samples = [(float(s.get("t", s.get("time_s", math.nan))), _point(s)) for s in val if isinstance(s, dict)]
            samples = [(t, p) for t, p in samples if p is not None and math.isfinite(t)]
            if not samples:
                continue
            mid = 0.5 * ((start_s or 0.0) + (end_s if end_s is not None else (start_s or 0.0)))
            t, p = min(samples, key=lambda s: abs(s[0] - mid))
            inside = sum(1 for ts, _ in samples if start_s is None or end_s is None or start_s <= ts < end_s)
            return {**p, "t": t, "samples_in_clip": inside}
        p = _point(val)
        if p is not None:
            return p
    return _point(meta)


# -------------------------------------------------------------------------------------------- dataset frames

class DatasetFrames:
    """A dvtr dataset's stored frames by clip id, read as JPEG bytes from the shards (``datasets`` never decodes).

    Args:
        dataset: a dataset folder, a Hub repo id, or an already loaded ``DatasetDict`` / ``Dataset``.
        splits: the splits to read (default: every split it has).
        name: how messages name the dataset (default: the folder or repo id).

    Raises:
        InputError: the dataset cannot be loaded, or it has no stored frames (no ``frames`` column, or empty ones).
    """

    def __init__(self, dataset: Any, splits: Iterable[str] | None = None, name: str | None = None):
        self.name = name or (str(dataset) if isinstance(dataset, (str, Path)) else "dataset")
        if isinstance(dataset, (str, Path)):
            dataset = open_dataset(dataset)
        parts = dict(dataset) if hasattr(dataset, "keys") else {"split": dataset}
        if splits is not None:
            wanted = list(splits)
            missing = [s for s in wanted if s not in parts]
            if missing:
                raise InputError(f"the dataset has no {', '.join(missing)} split (it has {', '.join(parts)})",
                                 file=self.name)
            parts = {s: parts[s] for s in wanted}
        self.splits = parts
        self._where: dict[str, tuple[str, int]] = {}
        for split, ds in parts.items():
            if "frames" not in ds.column_names:
                raise InputError(f"the dataset has no stored frames (its {split} split has no 'frames' column): "
                                 "build it with `dvtr build-dataset`, which stores each clip's protocol frames",
                                 file=self.name)
            for i, cid in enumerate(ds["clip_id"]):
                self._where[cid] = (split, i)
        self._arrow = {s: ds.select_columns(["frames"]).with_format("arrow") for s, ds in parts.items()}

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def frames(self, clip_id: str) -> list[bytes]:
        """The clip's stored frames, JPEG bytes, in time order."""
        if clip_id not in self._where:
            raise InputError("no clip with this id in the dataset", file=self.name, record=clip_id)
        split, i = self._where[clip_id]
        items = self._arrow[split][i].column("frames")[0].as_py() or []
        out = []
        for it in items:
            data = it.get("bytes") if isinstance(it, dict) else None
            if data is None and isinstance(it, dict) and it.get("path"):
                data = Path(it["path"]).read_bytes()
            if data:
                out.append(data)
        if not out:
            raise InputError("the clip has no stored frames", file=self.name, record=clip_id)
        return out

    def strips(self, clip_ids: Iterable[str], n: int = STRIP_FRAMES) -> dict[str, bytes]:
        """``{clip_id: thumbnail strip}`` for the given clips."""
        return {cid: thumbnail_strip(self.frames(cid), n) for cid in dict.fromkeys(clip_ids)}
