"""DJI telemetry sidecars (``DJI_0001.SRT`` next to ``DJI_0001.MP4``): a time-aligned flight track per video.

DJI drones write one subtitle per frame (or per second on older models) whose text holds the position, the
altitude and the camera settings. The subtitle container is parsed with the ``srt`` library, block by block so a
damaged block costs only itself; the text of each subtitle is read for the fields of every variant met in public
samples:

* older firmware (Phantom 4, Mavic Pro, Matrice 300): ``GPS(a,b,alt)`` with ``HOME(a,b)``, ``BAROMETER:4.5`` (height
  above the take-off point), ``ISO:100 Shutter:60 EV: Fnum:2.2``. The order of ``a,b`` is not the same on every
  model: Phantom 4 / Mavic Pro samples write longitude first (``GPS(131.1660,-25.2088,14)``, central Australia),
  Matrice 300 writes latitude first with metre suffixes (``GPS(36.6146,-6.1120,0.0M) BAROMETER:0.3M``, Cádiz).
  ``gps_order="auto"`` decides per file: a value beyond ±90 can only be a longitude; otherwise metre suffixes mean
  latitude first and their absence longitude first. Give ``"latlon"`` or ``"lonlat"`` when you know better;
* Mavic Mini: ``F/2.8, SS 206.14, ISO 150, EV 0, GPS (-82.6669, 27.7716, 10), D 2.80m, H 0.00m`` (longitude first);
* newer firmware (Air 2S, Mini 2/3/4, Mavic 3): bracketed fields ``[iso : 100] [shutter : 1/80.0] [fnum : 280]
  [ev : 0] [ct : 5744] [focal_len : 240] [latitude: 41.424724] [longitude: 2.234156] [rel_alt: 1.300 abs_alt:
  132.860]`` (some models write ``[altitude: 117.0]`` instead of ``rel_alt``/``abs_alt``), inside ``<font>`` tags.
  ``fnum`` above 30 is hundredths (280 = f/2.8), ``focal_len`` above 100 tenths of a millimetre (240 = 24 mm), as
  those models write them; ``[latitude: 0.000000]`` means no GPS fix.

Times are the subtitles' start times, seconds from the start of the video. A block that cannot be read is a warning
naming the file and its line; the rest of the track, and the video, are still used.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SIDECAR_SUFFIXES = (".SRT", ".srt")
GPS_ORDERS = ("auto", "latlon", "lonlat")
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class TelemetrySample:
    """One telemetry record: its time in the video and what it says (None where it says nothing)."""

    t: float
    lat: float | None = None
    lon: float | None = None
    rel_alt: float | None = None      # metres above the take-off point (barometric)
    abs_alt: float | None = None      # metres above sea level
    iso: float | None = None
    shutter_s: float | None = None    # exposure time, seconds
    fnumber: float | None = None
    ev: float | None = None
    color_temp_k: float | None = None
    focal_len_mm: float | None = None
    yaw_deg: float | None = None      # gimbal heading, degrees clockwise from north, when the file gives it


@dataclass
class Track:
    """A video's telemetry: samples in time order, and what could not be read."""

    source: str
    samples: list[TelemetrySample]
    warnings: list[str] = field(default_factory=list)
    gps_order: str = "fields"     # how GPS(a,b) arrays were read: latlon, lonlat, or fields (no arrays)

    def __len__(self) -> int:
        return len(self.samples)


def find_sidecar(video: str | Path) -> Path | None:
    """The telemetry sidecar of ``video``: the file next to it with the same name and an .SRT extension."""
    v = Path(video)
    for suffix in SIDECAR_SUFFIXES:
        p = v.with_suffix(suffix)
        if p.is_file():
            return p
    return None


# -------------------------------------------------------------------------------------------------- parsing

_ARRAY = re.compile(r"\b(GPS|HOME)\s*\(([^)]*)\)", re.I)
_PAIR = re.compile(r"\b([A-Za-z][\w.]*)\s*:\s*([-+]?\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?)(M|m)?\b")
_SPACED = re.compile(r"\b(ISO|SS|EV|H|F/)\s*([-+]?\d+(?:\.\d+)?)(m)?\b")
_TAG = re.compile(r"<[^>]*>")


def _fraction(v: str) -> float:
    if "/" in v:
        a, b = v.split("/", 1)
        return float(a) / float(b)
    return float(v)


def _fields(text: str) -> tuple[dict[str, float], list[tuple[str, list[str]]], bool]:
    """Numeric ``key: value`` fields (keys lower-cased), GPS/HOME arrays, and whether metre suffixes appear."""
    text = _TAG.sub(" ", text)
    arrays = [(m.group(1).upper(), [x.strip() for x in m.group(2).split(",")]) for m in _ARRAY.finditer(text)]
    metres = any(x.upper().endswith("M") for _, xs in arrays for x in xs) or bool(
        re.search(r"BAROMETER\s*:\s*[-\d.]+M\b", text))
    out: dict[str, float] = {}
    for m in _PAIR.finditer(_ARRAY.sub(" ", text)):
        try:
            out[m.group(1).lower()] = _fraction(m.group(2))
        except (ValueError, ZeroDivisionError):
            continue
    for m in _SPACED.finditer(text):
        key = {"ISO": "iso", "SS": "ss", "EV": "ev", "H": "h", "F/": "f"}[m.group(1)]
        out.setdefault(key, float(m.group(2)))
    return out, arrays, metres


def _number(x: str) -> float:
    return float(x.strip().rstrip("Mm"))


def _sample(t: float, f: dict[str, float], gps: list[str] | None, order: str) -> TelemetrySample:
    lat = f.get("latitude")
    lon = f.get("longitude", f.get("longtitude"))     # some firmware spells it so
    alt_gps = None
    if gps is not None and len(gps) >= 2:
        a, b = _number(gps[0]), _number(gps[1])
        lat, lon = (a, b) if order == "latlon" else (b, a)
        alt_gps = _number(gps[2]) if len(gps) > 2 and gps[2].strip() else None
    if lat is not None and lon is not None and lat == 0.0 and lon == 0.0:
        lat = lon = None                                  # written before the GPS has a fix
    rel = f.get("rel_alt", f.get("barometer", f.get("h")))
    abs_alt = f.get("abs_alt", f.get("altitude", alt_gps if rel is not None else None))
    if rel is None and "altitude" not in f and alt_gps is not None:
        abs_alt = alt_gps
    shutter = f.get("shutter", f.get("tv"))
    if shutter is not None and shutter > 1.0:
        shutter = 1.0 / shutter                           # "Shutter:60" is 1/60 s
    if shutter is None and f.get("ss"):
        shutter = 1.0 / f["ss"]                           # Mavic Mini's "SS 206.14"
    fnum = f.get("fnum", f.get("f"))
    if fnum is not None and fnum > 30:
        fnum = fnum / 100.0                               # "[fnum : 280]" is f/2.8
    focal = f.get("focal_len")
    if focal is not None and focal > 100:
        focal = focal / 10.0                              # "[focal_len : 240]" is 24 mm
    yaw = f.get("gimbal_yaw", f.get("gb_yaw"))
    return TelemetrySample(t=t, lat=lat, lon=lon, rel_alt=rel, abs_alt=abs_alt, iso=f.get("iso"),
                           shutter_s=shutter, fnumber=fnum, ev=f.get("ev"), color_temp_k=f.get("ct"),
                           focal_len_mm=focal, yaw_deg=yaw)


def _gps_order(arrays: Sequence[list[str]], metres: bool) -> str:
    for xs in arrays:
        try:
            a, b = abs(_number(xs[0])), abs(_number(xs[1]))
        except (ValueError, IndexError):
            continue
        if a > 90.0 >= b:
            return "lonlat"
        if b > 90.0 >= a:
            return "latlon"
    return "latlon" if metres else "lonlat"


def read_srt(path: str | Path, gps_order: str = "auto") -> Track:
    """The telemetry track of a DJI ``.SRT`` sidecar (see the module docstring for the variants read).

    Never raises for a damaged file: every block that cannot be read becomes a warning ``"<file>: line N:
    <why>"`` in ``track.warnings``, and the others are kept. An unreadable file (not UTF-8 text) gives an empty
    track with one warning.
    """
    import srt

    if gps_order not in GPS_ORDERS:
        raise ValueError(f"gps_order must be one of {', '.join(GPS_ORDERS)}, got {gps_order!r}")
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return Track(str(p), [], [f"{p}: cannot read the telemetry sidecar: {exc}"])
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    warnings: list[str] = []
    parsed: list[tuple[float, str, int]] = []
    line = 1
    # Block by block: srt.parse stops at the first unreadable block, and a damaged block must cost only itself.
    for block in re.split(r"\n[ \t]*\n", text):
        start_line = line
        line += block.count("\n") + 2
        if not block.strip():
            continue
        try:
            subs = list(srt.parse(block + "\n\n"))
        except (srt.SRTParseError, ValueError) as exc:
            shown = block.strip().splitlines()[0][:60]
            warnings.append(f"{p}: line {start_line}: not a subtitle block ({type(exc).__name__}; it starts "
                            f"{shown!r}); skipped")
            continue
        for sub in subs:
            parsed.append((sub.start.total_seconds(), sub.content, start_line))
    arrays_all = []
    fields = []
    for t, content, ln in parsed:
        f, arrays, metres = _fields(content)
        fields.append((t, f, dict(arrays).get("GPS"), ln, metres))
        arrays_all += [xs for name, xs in arrays]
    if gps_order != "auto":
        order = gps_order
    elif arrays_all:
        order = _gps_order(arrays_all, any(x[4] for x in fields))
    else:
        order = "fields"     # positions come as named latitude/longitude fields: no order to decide
    samples: list[TelemetrySample] = []
    for t, f, gps, ln, _ in fields:
        try:
            s = _sample(t, f, gps, order)
        except ValueError as exc:
            warnings.append(f"{p}: line {ln}: unreadable GPS values {gps!r} ({exc}); skipped")
            continue
        if s.lat is not None and not (-90 <= s.lat <= 90 and -180 <= s.lon <= 180):  # type: ignore[operator]
            warnings.append(f"{p}: line {ln}: position {s.lat}, {s.lon} is not on Earth; skipped")
            continue
        if samples and t < samples[-1].t:
            warnings.append(f"{p}: line {ln}: time {t:.3f} s goes back (after {samples[-1].t:.3f} s); skipped")
            continue
        samples.append(s)
    warnings.sort(key=lambda w: int(m.group(1)) if (m := re.search(r": line (\d+):", w)) else 0)
    if parsed and not any(s.lat is not None or s.rel_alt is not None or s.iso is not None for s in samples):
        warnings.append(f"{p}: no telemetry field found in {len(parsed)} subtitles (not a DJI telemetry file?)")
    return Track(str(p), samples, warnings, order)


# -------------------------------------------------------------------------------------------------- derived

def haversine_m(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _series(samples: Sequence[TelemetrySample], name: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(s.t, getattr(s, name)) for s in samples if getattr(s, name) is not None]
    if not pts:
        return np.empty(0), np.empty(0)
    a = np.asarray(pts, np.float64)
    return a[:, 0], a[:, 1]


# A position or height change faster than this between two records is not flight (no camera drone flies
# 40 m/s, or climbs 15 m/s): a GPS glitch, or two takes of different places cut together. Such a step is left
# out of distances and speeds, and never blends two places into one.
MAX_SPEED_MPS = 40.0
MAX_CLIMB_MPS = 15.0
# Ground speed is measured over at least this long: DJI positions have 4-6 decimals (about 10 cm to 10 m), so
# speeds between consecutive records would be noise.
SPEED_WINDOW_S = 1.0


def _local_xy(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """East and north metres from (lat0, lon0), equirectangular (metres of error over a flight's extent)."""
    k = math.pi / 180.0 * EARTH_RADIUS_M
    return (lon - lon0) * k * math.cos(math.radians(lat0)), (lat - lat0) * k


def _continuous(t: np.ndarray, *series: np.ndarray, limits: Sequence[float]) -> list[np.ndarray]:
    """The series with every implausible step (see MAX_SPEED_MPS) taken out: what follows a jump is shifted back
    by the jump, so one place's motion is measured on its own."""
    out = [np.array(x, np.float64) for x in series]
    if t.size < 2:
        return out
    dt = np.maximum(np.diff(t), 1e-6)
    steps = [np.diff(x) for x in out]
    if len(out) == 3:    # x, y, z: horizontal speed against the first limit, vertical against the second
        jump = (np.hypot(steps[0], steps[1]) / dt > limits[0]) | (np.abs(steps[2]) / dt > limits[1])
    else:
        jump = np.abs(steps[0]) / dt > limits[0]
    for x, st in zip(out, steps):
        x[1:] -= np.cumsum(np.where(jump, st, 0.0))
    return out


def _window(track: Track, start_s: float, end_s: float) -> list[TelemetrySample]:
    """The samples of [start_s, end_s), plus the one just outside either end when reaching it is flight, not a
    jump (so values at the clip's start and end can be interpolated rather than taken from the nearest record)."""
    ss = track.samples
    idx = [i for i, s in enumerate(ss) if start_s - 1e-6 <= s.t < end_s - 1e-6]
    if not idx:
        return []

    def plausible(a: TelemetrySample, b: TelemetrySample) -> bool:
        dt = max(1e-6, abs(b.t - a.t))
        if dt > 2.0:
            return False
        if a.lat is not None and b.lat is not None and float(
                haversine_m(a.lat, a.lon, b.lat, b.lon)) / dt > MAX_SPEED_MPS:
            return False
        return not (a.rel_alt is not None and b.rel_alt is not None and abs(b.rel_alt - a.rel_alt) / dt > MAX_CLIMB_MPS)

    out = [ss[i] for i in idx]
    if idx[0] > 0 and ss[idx[0]].t > start_s + 1e-6 and plausible(ss[idx[0] - 1], ss[idx[0]]):
        out.insert(0, ss[idx[0] - 1])
    if idx[-1] + 1 < len(ss) and plausible(ss[idx[-1]], ss[idx[-1] + 1]):
        out.append(ss[idx[-1] + 1])
    return out


def clip_telemetry(track: Track | None, start_s: float, end_s: float) -> dict[str, Any] | None:
    """The clip's telemetry summary (the ``telemetry`` column of a clip row), or None without samples in it.

    Position and altitudes are interpolated at the clip's start and end; distance, ground speed (mean and the
    fastest ``SPEED_WINDOW_S`` stretch), track heading (bearing from the first to the last position, None under
    1 m of travel) and climb rate come from the track, leaving out implausible steps (``MAX_SPEED_MPS``);
    camera settings are the medians over the clip.
    """
    if track is None or not track.samples:
        return None
    win = _window(track, start_s, end_s)
    if not win:
        return None
    inside = [s for s in win if start_s - 1e-6 <= s.t < end_s - 1e-6]
    dur = max(1e-6, end_s - start_s)

    def at(name: str, t: float) -> float | None:
        ts, vs = _series(win, name)
        return None if ts.size == 0 else float(np.interp(t, ts, vs))

    out: dict[str, Any] = {
        "start_lat": at("lat", start_s), "start_lon": at("lon", start_s),
        "end_lat": at("lat", end_s), "end_lon": at("lon", end_s),
        "start_rel_alt_m": at("rel_alt", start_s), "end_rel_alt_m": at("rel_alt", end_s),
        "start_abs_alt_m": at("abs_alt", start_s), "end_abs_alt_m": at("abs_alt", end_s),
        "distance_m": None, "ground_speed_mps": None, "max_ground_speed_mps": None, "heading_deg": None,
        "climb_rate_mps": None, "n_samples": len(inside), "source": Path(track.source).name,
    }
    tl, lat = _series(win, "lat")
    _, lon = _series(win, "lon")
    if tl.size >= 1:
        x, y = _local_xy(lat, lon, float(lat[0]), float(lon[0]))
        x, y, _ = _continuous(tl, x, y, np.zeros_like(x), limits=(MAX_SPEED_MPS, MAX_CLIMB_MPS))
        step = np.arange(start_s, end_s + 1e-9, SPEED_WINDOW_S)
        if step[-1] < end_s - 1e-6:
            step = np.append(step, end_s)
        if step.size < 2:
            step = np.array([start_s, end_s])
        xs, ys = np.interp(step, tl, x), np.interp(step, tl, y)
        hops = np.hypot(np.diff(xs), np.diff(ys))
        out["distance_m"] = round(float(hops.sum()), 3)
        out["ground_speed_mps"] = round(float(hops.sum()) / dur, 3)
        out["max_ground_speed_mps"] = round(float(np.max(hops / np.maximum(np.diff(step), 1e-6))), 3)
        dx, dy = float(xs[-1] - xs[0]), float(ys[-1] - ys[0])
        if math.hypot(dx, dy) >= 1.0:
            out["heading_deg"] = round((math.degrees(math.atan2(dx, dy)) + 360.0) % 360.0, 2)
    ta, alt = _series(win, "rel_alt")
    if ta.size >= 1:
        (alt_c,) = _continuous(ta, alt, limits=(MAX_CLIMB_MPS,))
        a0, a1 = float(np.interp(start_s, ta, alt_c)), float(np.interp(end_s, ta, alt_c))
        out["climb_rate_mps"] = round((a1 - a0) / dur, 3)
    for name in ("iso", "shutter_s", "fnumber", "ev", "color_temp_k", "focal_len_mm"):
        vals = [getattr(s, name) for s in inside if getattr(s, name) is not None]
        out[name] = float(np.median(vals)) if vals else None
    for k in ("start_lat", "start_lon", "end_lat", "end_lon"):
        if out[k] is not None:
            out[k] = round(out[k], 7)
    for k in ("start_rel_alt_m", "end_rel_alt_m", "start_abs_alt_m", "end_abs_alt_m"):
        if out[k] is not None:
            out[k] = round(out[k], 3)
    return out


TELEMETRY_FIELDS: dict[str, str] = {
    "start_lat": "float64", "start_lon": "float64", "end_lat": "float64", "end_lon": "float64",
    "start_rel_alt_m": "float64", "end_rel_alt_m": "float64", "start_abs_alt_m": "float64",
    "end_abs_alt_m": "float64", "distance_m": "float64", "ground_speed_mps": "float64",
    "max_ground_speed_mps": "float64", "heading_deg": "float64", "climb_rate_mps": "float64",
    "iso": "float64", "shutter_s": "float64", "fnumber": "float64", "ev": "float64", "color_temp_k": "float64",
    "focal_len_mm": "float64", "n_samples": "int32", "source": "string",
}


def motion_series(track: Track, step_s: float = 0.5) -> dict[str, np.ndarray]:
    """The track resampled every ``step_s`` seconds: time, ground speed (m/s), climb rate (m/s) and turn rate
    (degrees per second of the gimbal heading when the file gives one, else of the track's heading, 0 where the
    drone barely moves), each smoothed over about two seconds, implausible steps (``MAX_SPEED_MPS``) left out.
    What the ``telemetry`` segmenter classifies."""
    ss = track.samples
    tl, lat = _series(ss, "lat")
    _, lon = _series(ss, "lon")
    ta, alt = _series(ss, "rel_alt")
    ty, yaw = _series(ss, "yaw_deg")
    ends = [x for x in (tl, ta, ty) if x.size]
    t0 = min([x[0] for x in ends] or [0.0])
    t1 = max([x[-1] for x in ends] or [0.0])
    t = np.arange(t0, t1 + 1e-9, step_s)
    zeros = np.zeros(t.size)
    if t.size < 2:
        return {"t": t, "speed": zeros, "climb": zeros, "turn": zeros}
    k = max(1, int(round(1.0 / step_s)))
    kernel = np.ones(2 * k + 1) / (2 * k + 1)

    def smooth(x: np.ndarray) -> np.ndarray:
        return np.convolve(np.pad(x, k, mode="edge"), kernel, mode="valid")

    def rate(x: np.ndarray) -> np.ndarray:
        d = np.diff(x) / step_s
        return np.append(d, d[-1])

    speed, turn, climb = zeros.copy(), zeros.copy(), zeros.copy()
    if tl.size >= 2:
        x, y = _local_xy(lat, lon, float(lat[0]), float(lon[0]))
        x, y, _ = _continuous(tl, x, y, np.zeros_like(x), limits=(MAX_SPEED_MPS, MAX_CLIMB_MPS))
        xs, ys = smooth(np.interp(t, tl, x)), smooth(np.interp(t, tl, y))
        vx, vy = rate(xs), rate(ys)
        speed = np.hypot(vx, vy)
        head = np.degrees(np.unwrap(np.arctan2(vx, vy)))
        turn = np.abs(rate(head))
        turn[speed < 0.5] = 0.0                            # a hovering drone's track heading is GPS noise
        turn = smooth(turn)
    if ty.size >= 2:
        # the gimbal heading, when given, says how the picture turns, even at a hover
        (yu,) = _continuous(ty, np.degrees(np.unwrap(np.radians(yaw))), limits=(90.0,))
        turn = np.abs(rate(smooth(np.interp(t, ty, yu))))
    if ta.size >= 2:
        (alt_c,) = _continuous(ta, alt, limits=(MAX_CLIMB_MPS,))
        climb = rate(smooth(np.interp(t, ta, alt_c)))
    return {"t": t, "speed": speed, "climb": climb, "turn": turn}
