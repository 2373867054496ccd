"""The build configuration: everything that decides a dataset's content, recorded in build/build.json.

Options that only change how fast a build runs (workers, executor, Ray address) are not part of it, so the
same config built on a laptop or a cluster gives the same dataset and the same fingerprints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from dvtr_bench.errors import ConfigError
from dvtr_bench.protocol import v1
from dvtr_bench.video.segmenters import DEFAULT_SEGMENTER, Segmenter, make_segmenter, segmenter_class


def segmenter_kwargs(segmenter: str, segmenter_params: Mapping[str, Any] | None, min_len: float | None,
                     max_len: float | None) -> dict[str, Any]:
    """The parameters a build gives its segmenter: its own, plus the build's clip-length limits.

    ``max_len`` is left out for segmenters whose spans are the caption records' own: such a span is never
    split, since its captions describe all of it.
    """
    params = dict(segmenter_params or {})
    if min_len is not None:
        params["min_len"] = min_len
    if max_len is not None and not segmenter_class(segmenter).spans_from_records:
        params["max_len"] = max_len
    return params


@dataclass
class BuildConfig:
    segmenter: str = DEFAULT_SEGMENTER              # a name registered in dvtr_bench.video.segmenters
    segmenter_params: dict[str, Any] = field(default_factory=dict)
    min_len: float | None = None                    # seconds; None = the segmenter's default
    max_len: float | None = None
    num_frames: int = v1.NUM_FRAMES
    frame_short_side: int = v1.FRAME_SHORT_SIDE
    jpeg_quality: int = v1.JPEG_QUALITY
    overlap: str = "iou"                            # how a timed caption record matches a clip (iou | record | clip)
    min_overlap: float = 0.5                        # minimum overlap for a record to attach to a clip
    keep_uncaptioned: bool = False                  # keep clips that received no caption
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "validation": 0.1, "test": 0.2})
    split_seed: int = 0
    stratify: bool = False                          # stratify the split of videos by their label
    # each video's split from the annotation file: None = when the records carry splits, True = required,
    # False = draw new ones
    split_from_annotations: bool | None = None
    video_ids: str = "path"                         # video ids: path under the input folder, or file name
    telemetry_gps_order: str = "auto"               # DJI GPS(a,b) order in .SRT sidecars: auto, latlon, lonlat
    export_clips: bool = False
    clip_short_side: int = 360
    clip_gop_s: float = 0.5                         # keyframe interval of exported clips
    clip_crf: int = 23
    shard_max_mb: float = 256.0
    near_dup_bits: int = 6                          # perceptual-hash distance under which clips are near duplicates
    license: str = "other"
    license_name: str | None = None                 # for license "other": the licence's name on the Hub
    license_link: str | None = None                 # for license "other": a link to its text (or LICENSE.md)
    pretty_name: str = "dvtr drone video-text dataset"

    def __post_init__(self) -> None:
        self.validate()
        total = sum(self.splits.values())
        self.splits = {k: self.splits[k] / total for k in v1.SPLITS if k in self.splits}

    def validate(self) -> None:
        """Raise one ConfigError for the first invalid or inconsistent option.

        The segmenter is instantiated with the parameters the jobs will give it, so an unknown segmenter, a
        misspelled or ill-typed parameter or a value the segmenter rejects stops the build before any video is
        decoded, instead of failing every video. ``build`` calls this again, for configs changed after creation.
        """
        segmenter_class(self.segmenter)
        if self.overlap not in ("iou", "record", "clip"):
            raise ConfigError(f"overlap must be iou, record or clip, got {self.overlap!r}")
        if not 0 <= self.min_overlap <= 1:
            raise ConfigError(f"min_overlap must be in [0, 1], got {self.min_overlap}")
        unknown = set(self.splits) - set(v1.SPLITS)
        if unknown:
            raise ConfigError(f"unknown split name(s) {sorted(unknown)}; use {list(v1.SPLITS)}")
        if any(v < 0 for v in self.splits.values()) or sum(self.splits.values()) <= 0:
            raise ConfigError(f"split fractions must be >= 0 and not all 0: {self.splits}")
        if self.num_frames < 1 or self.frame_short_side < 16:
            raise ConfigError("num_frames must be >= 1 and frame_short_side >= 16")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError("jpeg_quality must be in 1..100")
        if self.min_len is not None and self.max_len is not None and self.max_len < self.min_len:
            raise ConfigError(f"max_len {self.max_len} < min_len {self.min_len}")
        if self.video_ids not in ("path", "name"):
            raise ConfigError(f"video_ids must be path or name, got {self.video_ids!r}")
        if self.telemetry_gps_order not in ("auto", "latlon", "lonlat"):
            raise ConfigError(f"telemetry_gps_order must be auto, latlon or lonlat, got {self.telemetry_gps_order!r}")
        if self.shard_max_mb <= 0:
            raise ConfigError("shard_max_mb must be > 0")
        if not isinstance(self.segmenter_params, Mapping):
            raise ConfigError(f"segmenter_params must be a mapping of parameter names to values, "
                              f"got {self.segmenter_params!r}")
        self.make_segmenter()

    def segmenter_kwargs(self) -> dict[str, Any]:
        """The parameters every job gives the segmenter (see :func:`segmenter_kwargs`)."""
        return segmenter_kwargs(self.segmenter, self.segmenter_params, self.min_len, self.max_len)

    def make_segmenter(self) -> Segmenter:
        """A segmenter as the jobs of this build make it (ConfigError when that is impossible)."""
        return make_segmenter(self.segmenter, **self.segmenter_kwargs())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BuildConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown build option(s) {sorted(unknown)}")
        return cls(**d)

    def job_config(self) -> dict[str, Any]:
        """The part of the config one per-video job depends on (its result is cached under its hash)."""
        keys = ("segmenter", "segmenter_params", "min_len", "max_len", "num_frames", "frame_short_side",
                "jpeg_quality", "overlap", "min_overlap", "keep_uncaptioned", "export_clips", "clip_short_side",
                "clip_gop_s", "clip_crf", "telemetry_gps_order")
        d = self.to_dict()
        return {k: d[k] for k in keys}
