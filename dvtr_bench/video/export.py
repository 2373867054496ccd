"""Optional clip export: each clip re-encoded once as H.264 with a short keyframe interval.

A short GOP keeps random access cheap for whoever trains on the clips later (seeking costs about one GOP of
decoding). All clips of a video are written during one extra sequential decode of the source, so the cost is
one decode plus the encodes, whatever the number of clips; a build reports it separately from the frame pass.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from dvtr_bench.video.decode import Scaler, iter_frames, scaled_size


def export_clips(path: str | Path, clips: Sequence[tuple[str, float, float]], out_dir: str | Path,
                 fps: float, short_side: int = 360, gop_s: float = 0.5, crf: int = 23,
                 preset: str = "veryfast", rotation: int = 0) -> dict[str, str]:
    """Write ``out_dir/<clip_id>.mp4`` for each ``(clip_id, start_s, end_s)``; return clip_id -> file path.

    ``rotation`` (the source's display rotation, degrees counter-clockwise) is written into each clip's display
    matrix, so players show it upright as they show the source.

    Files are written under a temporary name and renamed when complete, so an interrupted export never
    leaves a truncated clip under its final name.
    """
    import av

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
    gop = max(1, int(round(gop_s * float(rate))))
    pending = sorted(clips, key=lambda c: (c[1], c[0]))
    open_: dict[str, dict[str, Any]] = {}
    done: dict[str, str] = {}
    nxt = 0

    def close(cid: str) -> None:
        st = open_.pop(cid)
        for packet in st["stream"].encode():
            st["container"].mux(packet)
        st["container"].close()
        final = out / f"{cid}.mp4"
        os.replace(st["tmp"], final)
        done[cid] = str(final)

    try:
        for df in iter_frames(path):
            while nxt < len(pending) and pending[nxt][1] <= df.t + 1e-6:
                cid, s, e = pending[nxt]
                nxt += 1
                if df.t >= e:
                    continue
                w, h = scaled_size(df.frame.width, df.frame.height, short_side)
                tmp = out / f".{cid}.mp4.part"
                container = av.open(str(tmp), "w", format="mp4")
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "crf": str(crf),
                                  "preset": preset}
                if rotation and hasattr(stream, "set_display_rotation"):
                    stream.set_display_rotation(rotation)
                open_[cid] = {"container": container, "stream": stream, "end": e, "n": 0, "tmp": tmp,
                              "size": (w, h), "scaler": Scaler()}
            for cid in [c for c, st in open_.items() if df.t >= st["end"] - 1e-6]:
                close(cid)
            for st in open_.values():
                w, h = st["size"]
                small = st["scaler"](df.frame, w, h)
                small.pts = st["n"]
                small.time_base = 1 / rate
                st["n"] += 1
                for packet in st["stream"].encode(small):
                    st["container"].mux(packet)
        for cid in list(open_):
            close(cid)
    finally:
        for st in open_.values():
            try:
                st["container"].close()
            except Exception:  # noqa: BLE001 - best effort cleanup of a failed export
                pass
            Path(st["tmp"]).unlink(missing_ok=True)
    return done
