"""Probe a video file: duration, frame rate, size, codec and whether the frame rate is variable.

Only the container and stream headers plus the timestamps of the first packets are read, so probing costs
milliseconds even for hours of 4K footage. Anything PyAV cannot open becomes an :class:`InputError` that names
the file, which the build records in its manifest instead of stopping.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dvtr_bench.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm")
# Sidecar files that travel with a video (DJI telemetry subtitles): read through their video, never as one.
SIDECAR_EXTENSIONS = (".srt",)
VIDEO_ID_MODES = ("path", "name")

# How many packets to look at when deciding whether the frame rate is variable.
_VFR_PACKETS = 120


@dataclass(frozen=True)
class VideoInfo:
    """What a build needs to know about a source video before decoding it."""

    path: str
    duration_s: float
    fps: float             # average frame rate (frames / duration); nominal rate when the container says so
    n_frames: int          # container's frame count, or an estimate from duration * fps
    width: int
    height: int
    codec: str
    pix_fmt: str | None
    vfr: bool              # True when packet durations vary (phones, some drones, screen recordings)
    start_time_s: float    # timestamp of the first frame; frame times are reported relative to it
    size_bytes: int
    # Display rotation, degrees counter-clockwise (0, 90, 180, 270): phones and gimbals filmed upright store
    # frames sideways with a display matrix that players apply; decoders hand out the stored frames.
    rotation: int = 0

    @property
    def display_width(self) -> int:
        """Width of the picture as it is shown (after the display rotation)."""
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_videos(inputs: list[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of video files by extension.

    A file given explicitly is kept whatever its extension: the user asked for it, and if it is not a video
    the build records why.
    """
    return [p for p, _ in _listed(inputs)]


def _listed(inputs: list[str | Path]) -> list[tuple[Path, Path | None]]:
    """(video, the folder input it was found under, or None when given as a file), unique, in input order."""
    out: list[tuple[Path, Path | None]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend((q, p) for q in sorted(q for q in p.rglob("*")
                                               if q.is_file() and q.suffix.lower() in VIDEO_EXTENSIONS))
        elif p.exists() and p.suffix.lower() in SIDECAR_EXTENSIONS:
            if sidecar_video(p) is None:
                raise InputError("a telemetry sidecar (DJI .SRT), not a video, and no video of the same name is "
                                 "next to it; give the video: its .SRT is read with it", p)
            continue   # its video is read with it, whether given or not
        elif p.exists():
            out.append((p, None))
        else:
            raise InputError("no such file or folder", p)
    seen: set[Path] = set()
    unique = []
    for p, root in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            unique.append((p, root))
    return unique


def sidecar_video(srt: Path) -> Path | None:
    """The video a sidecar belongs to: the file next to it with the same name and a video extension."""
    for q in sorted(srt.parent.glob(srt.stem + ".*")):
        if q.suffix.lower() in VIDEO_EXTENSIONS and q.stem == srt.stem and q.is_file():
            return q
    return None


def footage_ids(inputs: list[str | Path], mode: str = "path") -> dict[str, Path]:
    """Video id -> file for every video under ``inputs``, in id order.

    ``mode="path"`` (the default): the path under the folder given as input, without the extension
    (``cards/A/DJI_0001.MP4`` under ``cards/`` is ``A/DJI_0001``), prefixed by that folder's name when several
    inputs are given (``cardA/DJI_0001``, ``cardB/DJI_0001``); a file given as input is its name without the
    extension. Cameras restart their numbering on every card, so file names alone collide. ``mode="name"``: the
    file name without the extension (the rule of dvtr before 0.2; two files of one name are then an error).
    Two videos that still get one id are an :class:`InputError` naming both.
    """
    if mode not in VIDEO_ID_MODES:
        raise InputError(f"unknown video id mode {mode!r}; choose one of {', '.join(VIDEO_ID_MODES)}")
    listed = _listed(inputs)
    prefix = len(inputs) > 1
    by_id: dict[str, Path] = {}
    for path, root in listed:
        if mode == "name" or root is None:
            vid = _strip(path.name)
        else:
            rel = path.relative_to(root).with_suffix("").as_posix()
            name = root.resolve().name
            vid = f"{name}/{rel}" if prefix and name else rel
            vid = "/".join(_strip(part) for part in vid.split("/"))
        if vid in by_id:
            hint = ("give their folders as inputs, or use --video-id path" if mode == "name" else
                    "give them under differently named folders, or rename one")
            raise InputError(f"two videos get the id {vid!r}: {by_id[vid]} and {path} ({hint})")
        by_id[vid] = path
    return dict(sorted(by_id.items()))


def _strip(name: str) -> str:
    # The same rule as caption ids (annotations.record.normalize_id): surrounding spaces and the video extension.
    s = name.strip()
    if s.lower().endswith(VIDEO_EXTENSIONS):
        s = os.path.splitext(s)[0].strip()
    return s


def probe(path: str | Path) -> VideoInfo:
    """Read the headers of ``path``; raise :class:`InputError` with a readable reason when it is not a video."""
    import av

    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", p)
    size = p.stat().st_size
    if size == 0:
        raise InputError("empty file (0 bytes)", p)
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        with open(p, "rb") as f:
            head = f.read(64)
        if b"ftyp" in head or head.startswith(b"\x1a\x45\xdf\xa3"):
            raise InputError(f"truncated or incomplete video (container header present, rest unreadable: "
                             f"{_reason(exc)})", p) from None
        raise InputError(f"not a readable video container: {_reason(exc)}", p) from None
    try:
        if not container.streams.video:
            raise InputError("no video stream", p)
        st = container.streams.video[0]
        tb = st.time_base
        ctx = st.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            raise InputError("video stream has no frame size (corrupt header?)", p)
        start = float(st.start_time * tb) if st.start_time is not None and tb is not None else 0.0
        if st.duration is not None and tb is not None:
            duration = float(st.duration * tb)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        rate = st.average_rate or st.guessed_rate or st.base_rate
        fps = float(rate) if rate else 0.0
        n_frames = int(st.frames or 0)
        if n_frames <= 0 and duration > 0 and fps > 0:
            n_frames = int(round(duration * fps))
        if fps <= 0 and n_frames > 0 and duration > 0:
            fps = n_frames / duration
        vfr = _packet_durations_vary(container, st)
        if duration <= 0:
            raise InputError("video has no duration (truncated or corrupt?)", p)
        return VideoInfo(path=str(p), duration_s=duration, fps=fps, n_frames=n_frames, width=width,
                         height=height, codec=ctx.name, pix_fmt=ctx.format.name if ctx.format else None,
                         vfr=vfr, start_time_s=start, size_bytes=size, rotation=_rotation(container, st))
    finally:
        container.close()


def frame_rotation(frame: Any) -> int:
    """A decoded frame's display rotation in degrees counter-clockwise, one of 0, 90, 180, 270 (odd angles
    round to the nearest quarter turn)."""
    try:
        deg = float(frame.rotation or 0.0)
    except (AttributeError, TypeError, ValueError):
        return 0
    return int(round(deg / 90.0)) % 4 * 90


def _rotation(container: Any, stream: Any) -> int:
    # PyAV reads the display matrix from the decoded frame (FFmpeg attaches the stream's to every frame).
    import av

    try:
        for frame in container.decode(stream):
            return frame_rotation(frame)
    except av.FFmpegError:
        return 0
    finally:
        try:
            container.seek(0)
        except av.FFmpegError:
            pass
    return 0


def _packet_durations_vary(container: Any, stream: Any) -> bool:
    import av

    pts: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(packet.pts)
            if len(pts) >= _VFR_PACKETS:
                break
    except av.FFmpegError:
        return False
    finally:
        try:
            container.seek(0)
        except av.FFmpegError:
            pass
    if len(pts) < 3:
        return False
    pts.sort()  # decode order differs from presentation order with B-frames
    # The last packets read may still be missing frames that come later in decode order (reordering):
    # ignore the tail, or a B-frame gap would look like a longer frame.
    pts = pts[:-16] if len(pts) > 32 else pts
    deltas = {b - a for a, b in zip(pts, pts[1:])}
    deltas.discard(0)
    if len(deltas) <= 1:
        return False
    lo, hi = min(deltas), max(deltas)
    # Rounding of a constant rate to the time base gives deltas that differ by one tick.
    return hi - lo > 1


def _reason(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).strip() or type(exc).__name__
