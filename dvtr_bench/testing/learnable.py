"""Small in-memory dvtr datasets whose captions describe their frames: for tests, benchmarks and docs.

Each clip shows a coloured square moving over a coloured ground; its captions name the two colours and the
direction. The three attributes give 6 x 5 x 4 = 120 distinguishable clips, so a model can learn the task
and a chance-level model cannot fake it. Rows follow :func:`dvtr_bench.dataset.schema.clip_features`.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from dvtr_bench.protocol import v1

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 230), "yellow": (240, 220, 40),
           "white": (245, 245, 245), "purple": (150, 40, 180)}
GROUNDS = {"dark": (20, 20, 20), "grey": (128, 128, 128), "sandy": (200, 170, 110), "grassy": (60, 120, 50),
           "watery": (30, 90, 140)}
MOTIONS = ("left", "right", "up", "down")
_TEMPLATES = ("a {c} square moving {m} over {g} ground", "{c} object drifting {m} on a {g} background",
              "drone view of a {c} patch heading {m} across {g} terrain", "the {c} block goes {m}, {g} below")


def _jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=v1.JPEG_QUALITY)
    return buf.getvalue()


def _clip_frames(colour: tuple[int, int, int], ground: tuple[int, int, int], motion: str, size: int,
                 n_frames: int, rng: np.random.Generator) -> list[bytes]:
    frames = []
    side = size // 3
    for t in range(n_frames):
        a = np.empty((size, size, 3), dtype=np.uint8)
        a[:] = np.clip(np.asarray(ground) + rng.normal(0, 12, 3), 0, 255).astype(np.uint8)
        p = int((size - side) * t / max(1, n_frames - 1))
        x, y = {"right": (p, size // 3), "left": (size - side - p, size // 3),
                "down": (size // 3, p), "up": (size // 3, size - side - p)}[motion]
        a[y:y + side, x:x + side] = colour
        frames.append(_jpeg(a))
    return frames


def learnable_rows(n_clips: int, split: str, seed: int = 0, size: int = v1.FRAME_SHORT_SIDE,
                   n_frames: int = v1.NUM_FRAMES, captions_per_clip: int = 2, offset: int = 0) -> list[dict[str, Any]]:
    """``n_clips`` clip rows of ``split``; attribute combinations cycle from ``offset`` so splits can differ."""
    rng = np.random.default_rng([seed, offset])
    combos = [(c, g, m) for c in COLOURS for g in GROUNDS for m in MOTIONS]
    rows = []
    for i in range(n_clips):
        c, g, m = combos[(offset + i) % len(combos)]
        caps = [_TEMPLATES[(i + k) % len(_TEMPLATES)].format(c=c, g=g, m=m) for k in range(captions_per_clip)]
        vid = f"{split}_video_{i // 4:03d}"
        rows.append({
            "clip_id": f"{split}_clip_{offset + i:04d}", "video_id": vid, "split": split,
            "start_s": float(i), "end_s": float(i + 1), "fps": 25.0, "width": size, "height": size,
            "captions": caps,
            "frames": [{"bytes": b, "path": None}
                       for b in _clip_frames(COLOURS[c], GROUNDS[g], m, size, n_frames, rng)],
            "frame_times_s": [float(x) for x in v1.frame_times(float(i), float(i + 1), n_frames)],
            "segmenter": "fixture", "segmenter_params": json.dumps({}), "label": c, "clip_path": None,
            "meta": None, "telemetry": None,
        })
    return rows


def learnable_dataset(n_train: int = 48, n_val: int = 16, n_test: int = 16, seed: int = 0, **kw: Any) -> Any:
    """A ``datasets.DatasetDict`` with train / validation / test splits of :func:`learnable_rows`."""
    from datasets import Dataset, DatasetDict

    from dvtr_bench.dataset.schema import clip_features

    feats = clip_features()
    parts = {}
    offset = 0
    for name, n in (("train", n_train), ("validation", n_val), ("test", n_test)):
        parts[name] = Dataset.from_list(learnable_rows(n, name, seed=seed, offset=offset, **kw), features=feats)
        offset += n
    return DatasetDict(parts)


def write_learnable_dataset(out_dir: Any, n_train: int = 48, n_val: int = 16, n_test: int = 16, seed: int = 0,
                            **kw: Any) -> Any:
    """Write :func:`learnable_dataset`'s splits as a dvtr dataset folder (Hub layout); return the folder."""
    from pathlib import Path

    from dvtr_bench.dataset.hub import card_yaml, write_atomic, write_shards

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    offset = 0
    for name, n in (("train", n_train), ("validation", n_val), ("test", n_test)):
        if n:
            rows[name] = learnable_rows(n, name, seed=seed, offset=offset, **kw)
        offset += n
    write_shards(rows, out, max_shard_bytes=64 << 20)
    card = card_yaml(list(rows), sum(len(r) for r in rows.values()), "cc-by-4.0", "dvtr learnable fixture")
    write_atomic(out / "README.md", card + "\nColoured squares over coloured ground; captions name them.\n")
    return out
