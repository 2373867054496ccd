"""The CLIP4Clip/MSVD layout: ``raw-captions.pkl`` (id -> token lists) plus one id list per split."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Sequence

from dvtr_bench.annotations.formats._common import _head, _open_text, _Sink
from dvtr_bench.annotations.formats.base import AnnotationFormat, register_format
from dvtr_bench.annotations.record import SPLIT_NAMES, CaptionRecord, normalize_id, normalize_split
from dvtr_bench.annotations.safe_pickle import load_plain
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError

CLIP4CLIP_CAPTIONS = "raw-captions.pkl"
CLIP4CLIP_SPLITS = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}
_EXTENSIONS = (".pkl", ".pickle")


def read_clip4clip(path: str | Path, *, problems: list[Problem] | None = None,
                   split_files: dict[str, str | Path] | None = None) -> list[CaptionRecord]:
    """The CLIP4Clip/MSVD layout: ``raw-captions.pkl`` plus ``train_list.txt``/``val_list.txt``/``test_list.txt``.

    ``path`` is the folder or the pickle itself. The pickle maps each video id (the clip file's stem) to
    a list of captions, each a list of tokens (joined with single spaces) or a string. It is loaded with
    a restricted unpickler: plain containers and strings only, anything else is refused and never run.
    Split lists hold one video id per line; they are looked up next to the pickle unless ``split_files``
    maps split names to other paths, and missing lists are skipped.
    """
    p = Path(path)
    pkl = p / CLIP4CLIP_CAPTIONS if p.is_dir() else p
    folder = pkl.parent
    data = load_plain(pkl)
    if not isinstance(data, dict):
        raise InputError(f"expected a dict of video id -> captions, got {type(data).__name__}", pkl)
    sink = _Sink(problems)
    records: dict[str, CaptionRecord] = {}
    for key, caps in data.items():
        if isinstance(key, bytes):
            key = key.decode("utf-8", "surrogateescape")
        loc = f"key {key!r}"
        try:
            if not isinstance(key, (str, int)):
                raise InputError(f"video id must be a string, got {type(key).__name__}", pkl, loc)
            if not isinstance(caps, (list, tuple)):
                raise InputError(f"captions must be a list, got {type(caps).__name__}", pkl, loc)
            texts = []
            for n, cap in enumerate(caps):
                if isinstance(cap, (list, tuple)):
                    toks = [t.decode("utf-8", "surrogateescape") if isinstance(t, bytes) else t for t in cap]
                    if not all(isinstance(t, str) for t in toks):
                        raise InputError(f"caption {n + 1}: tokens must be strings", pkl, loc)
                    texts.append(" ".join(toks))
                elif isinstance(cap, bytes):
                    texts.append(cap.decode("utf-8", "surrogateescape"))
                elif isinstance(cap, str):
                    texts.append(cap)
                else:
                    raise InputError(f"caption {n + 1}: expected a token list or a string, got "
                                     f"{type(cap).__name__}", pkl, loc)
            rec = CaptionRecord.from_dict({"video_id": key, "captions": texts}, pkl, loc)
            if rec.video_id in records:
                raise InputError(f"video id {rec.video_id!r} appears twice after normalisation "
                                 f"(also {records[rec.video_id].source.record})", pkl, loc)
            records[rec.video_id] = rec
        except InputError as exc:
            sink.error(exc)
    lists = {s: Path(f) for s, f in (split_files or {}).items()} if split_files else \
        {s: folder / name for s, name in CLIP4CLIP_SPLITS.items()}
    assigned: dict[str, str] = {}
    for split, list_path in lists.items():
        split = normalize_split(split) or split
        if not list_path.exists():
            if split_files:
                raise InputError("split list not found", list_path)
            continue
        with _open_text(list_path) as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                vid = normalize_id(line)
                loc = f"line {lineno}"
                try:
                    if vid not in records:
                        raise InputError(f"{vid!r} is listed for {split} but has no captions in {pkl.name}",
                                         list_path, loc)
                    if vid in assigned and assigned[vid] != split:
                        raise InputError(f"{vid!r} is listed for {split} and for {assigned[vid]}", list_path, loc)
                    assigned[vid] = split
                    records[vid].split = split
                except InputError as exc:
                    sink.error(exc, "split_conflict" if vid in records else "unknown_video")
    return list(records.values())


def clip4clip_files(path: str | Path, *, split_files: dict[str, str | Path] | None = None,
                    **_: object) -> list[Path]:
    """The pickle, then the split lists a read of ``path`` reads (those that exist)."""
    p = Path(path)
    pkl = p / CLIP4CLIP_CAPTIONS if p.is_dir() else p
    lists = [Path(f) for f in split_files.values()] if split_files else \
        [pkl.parent / name for name in CLIP4CLIP_SPLITS.values()]
    return [pkl] + [f for f in lists if f.is_file()]


def write_clip4clip(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """A CLIP4Clip/MSVD folder: raw-captions.pkl (id -> token lists) plus one list file per split.

    ``path`` is the folder, or the pickle itself (.pkl/.pickle) with the split lists written next to it.
    """
    p = Path(path)
    folder, pkl = (p.parent, p) if p.suffix.lower() in _EXTENSIONS else (p, p / CLIP4CLIP_CAPTIONS)
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, list[list[str]]] = {}
    splits: dict[str, list[str]] = {s: [] for s in CLIP4CLIP_SPLITS}
    for r in records:
        # as the input spelled it: CLIP4Clip loaders open <id>.mp4, and real ids end in spaces (USRD's "Party_042 ")
        key = r.clip_id_as_given or r.video_id_as_given
        if key in data:
            raise InputError(f"two records share the id {key!r}; the CLIP4Clip layout keys captions by one id "
                             "per clip file", None, r.where())
        data[key] = [c.split() for c in r.captions]
        if r.split in splits:
            splits[r.split].append(key)
    with open(pkl, "wb") as f:
        pickle.dump(data, f, protocol=4)
    for split, ids in splits.items():
        if ids:
            (folder / CLIP4CLIP_SPLITS[split]).write_text("".join(i + "\n" for i in ids), encoding="utf-8")


def _reshape(record: CaptionRecord) -> CaptionRecord:
    # One entry per clip file, named by the clip id when there is one; captions are stored as token lists,
    # and only the three canonical splits have a list file.
    return dataclasses.replace(record, video_id=record.clip_id or record.video_id,
                               captions=[" ".join(c.split()) for c in record.captions],
                               split=record.split if record.split in SPLIT_NAMES else None)


def _sniff(path: Path) -> bool:
    # Pickle protocol 2 and later start with the PROTO opcode.
    return _head(path)[:1] == b"\x80"


CLIP4CLIP = register_format(AnnotationFormat(
    name="clip4clip", title="CLIP4Clip",
    description="CLIP4Clip/MSVD: raw-captions.pkl plus a *_list.txt per split, unpickled without running code",
    extensions=_EXTENSIONS, read=read_clip4clip, write=write_clip4clip, sniff=_sniff,
    options=("split_files",), holds=frozenset({"video_id", "captions", "split"}), reshape=_reshape,
    folder_marker=CLIP4CLIP_CAPTIONS, inputs=clip4clip_files,
))
