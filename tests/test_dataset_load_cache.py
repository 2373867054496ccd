"""Loading a dataset folder must never return rows of another build from the datasets cache."""

from __future__ import annotations

from pathlib import Path

import dvtr_bench
from dvtr_bench.dataset.hub import card_yaml, write_shards


def _row(i: int, split: str) -> dict:
    return {"clip_id": f"c{i}", "video_id": f"v{i}", "split": split, "start_s": 0.0, "end_s": 1.0, "fps": 25.0,
            "width": 64, "height": 36, "captions": [f"caption {i}"], "frames": [], "frame_times_s": [],
            "segmenter": "annotations", "segmenter_params": "{}", "label": None, "clip_path": None, "meta": None}


def _make(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    write_shards({"test": [_row(i, "test") for i in range(n)]}, folder, max_shard_bytes=1 << 20)
    (folder / "README.md").write_text(card_yaml(["test"], n, "other", "t") + "\n# t\n", encoding="utf-8")


def test_same_folder_name_and_shards_do_not_collide(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "dataset", tmp_path / "b" / "dataset"
    _make(a, 3)
    _make(b, 5)
    assert len(dvtr_bench.load_dataset(str(a), split="test")) == 3
    assert len(dvtr_bench.load_dataset(str(b), split="test")) == 5


def test_rebuilt_folder_is_reloaded(tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "dataset"
    _make(d, 3)
    assert len(dvtr_bench.load_dataset(str(d), split="test")) == 3
    shutil.rmtree(d)
    _make(d, 4)
    ds = dvtr_bench.load_dataset(str(d), split="test")
    assert len(ds) == 4 and ds[3]["captions"] == ["caption 3"]
