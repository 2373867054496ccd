"""Splits per source video (deterministic, stratified), shard planning, the audit and the card header."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from dvtr_bench.annotations import CaptionRecord
from dvtr_bench.dataset.audit import audit_dataset, near_duplicates
from dvtr_bench.dataset.config import BuildConfig
from dvtr_bench.dataset.hub import card_yaml, plan_shards
from dvtr_bench.dataset.splits import assign_splits, split_counts, splits_from_records, video_labels
from dvtr_bench.errors import ConfigError, InputError

FR = {"train": 0.7, "validation": 0.1, "test": 0.2}


def test_split_counts():
    assert split_counts(10, FR) == {"train": 7, "validation": 1, "test": 2}
    assert split_counts(3, FR) == {"train": 1, "validation": 1, "test": 1}
    assert sum(split_counts(101, FR).values()) == 101


def test_assign_splits_deterministic_and_order_free():
    vids = [f"v{i:03d}" for i in range(50)]
    a = assign_splits(vids, FR, seed=1)
    assert a == assign_splits(list(reversed(vids)), FR, seed=1)
    assert a != assign_splits(vids, FR, seed=2)
    assert Counter(a.values()) == {"train": 35, "validation": 5, "test": 10}


def test_assign_splits_stratified():
    vids = [f"v{i:03d}" for i in range(60)]
    labels = {v: ("river" if i % 3 == 0 else "forest" if i % 3 == 1 else "road") for i, v in enumerate(vids)}
    a = assign_splits(vids, FR, seed=0, labels=labels)
    for lab in ("river", "forest", "road"):
        c = Counter(a[v] for v in vids if labels[v] == lab)
        assert c == {"train": 14, "validation": 2, "test": 4}


def test_video_labels_and_splits_from_records():
    assert video_labels([("a", "x"), ("a", "y"), ("a", "y"), ("b", None)]) == {"a": "y", "b": None}
    recs = [CaptionRecord("a", ["c"], split="train"), CaptionRecord("b", ["c"], split="test")]
    assert splits_from_records(recs, ["a", "b"]) == {"a": "train", "b": "test"}
    with pytest.raises(InputError, match="no split"):
        splits_from_records(recs, ["a", "b", "c"])


def test_config_validation():
    assert BuildConfig(splits={"train": 2, "test": 2}).splits == {"train": 0.5, "test": 0.5}
    with pytest.raises(ConfigError):
        BuildConfig(splits={"dev": 1})
    with pytest.raises(ConfigError):
        BuildConfig(segmenter="magic")
    with pytest.raises(ConfigError, match="did you mean 'windows'"):
        BuildConfig(segmenter="window")
    # the segmenter is made with the build's parameters, so each mistake is caught here, before any job
    with pytest.raises(ConfigError, match="did you mean 'length'"):
        BuildConfig(segmenter="windows", segmenter_params={"lenght": 4})
    with pytest.raises(ConfigError, match="'threshold' must be float"):
        BuildConfig(segmenter_params={"threshold": "high"})
    with pytest.raises(ConfigError, match="shorter than the window length"):
        BuildConfig(segmenter="windows", max_len=5)
    with pytest.raises(ConfigError, match="must be a mapping"):
        BuildConfig(segmenter_params=[("threshold", 3)])
    with pytest.raises(ConfigError, match="treshold"):
        BuildConfig.from_dict({"segmenter_params": {"treshold": 3}})
    # max_len does not apply to spans that are the caption records' own (never split), so it is not an error
    assert BuildConfig(segmenter="annotations", max_len=5).make_segmenter().params() == {"min_len": None}
    assert BuildConfig(segmenter="windows", min_len=2, max_len=20).segmenter_kwargs() == {"min_len": 2, "max_len": 20}


def test_plan_shards_bounded():
    rows = [{"frames": [{"bytes": b"x" * 1000}] * 12, "captions": ["a"]} for _ in range(50)]
    shards = plan_shards(rows, 40_000)
    assert sum(len(s) for s in shards) == 50 and len(shards) > 1
    assert all(sum(12_000 + 513 for _ in s) <= 40_000 for s in shards)


def test_audit_finds_leaks_duplicates_and_ambiguity():
    rows = [
        {"clip_id": "a1", "video_id": "a", "split": "train", "captions": ["A river.", "Boats"], "_phash": 0},
        {"clip_id": "a2", "video_id": "a", "split": "test", "captions": ["a river"], "_phash": 0b111},
        {"clip_id": "b1", "video_id": "b", "split": "test", "captions": ["A road with cars"], "_phash": -1},
    ]
    audit = audit_dataset(rows, near_dup_bits=3)
    assert audit.videos_in_several_splits == {"a": ["train", "test"]}
    assert [(d.clip_a, d.clip_b, d.distance, d.cross_split) for d in audit.near_duplicates] == [("a1", "a2", 3, True)]
    assert [a.clip_ids for a in audit.captions.ambiguous_captions] == [["a1", "a2"]]
    md = audit.to_markdown()
    assert "Near-duplicate" in md and "`a1`" in md
    assert near_duplicates(["x"], [1], ["train"]) == []


def test_card_yaml_is_valid():
    y = yaml.safe_load(card_yaml(["train", "test"], 1500, "cc-by-4.0", 'My "set"').strip().strip("-"))
    assert y["license"] == "cc-by-4.0" and y["pretty_name"] == 'My "set"'
    assert y["size_categories"] == ["1K<n<10K"]
    assert y["configs"][0]["data_files"] == [{"split": "train", "path": "data/train-*.parquet"},
                                             {"split": "test", "path": "data/test-*.parquet"}]
