"""Provenance shared by every artifact: package versions, git commit, hashes of configs and files."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

DEFAULT_PACKAGES = (
    "dvtr-bench", "torch", "torchvision", "open_clip_torch", "numpy", "opencv-python", "av",
    "datasets", "pyarrow", "pandas",
)


def package_versions(packages: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, or None when it is not installed."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the dvtr checkout (or of ``path``), with ``+dirty`` when the tree has changes."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def cpu_model() -> str | None:
    """The CPU's model name ("AMD EPYC 7B13", ...): /proc/cpuinfo on Linux, sysctl on macOS, else the platform's.

    ``platform.processor()`` is empty on most Linux machines and says only "x86_64" elsewhere; two CPUs of one
    architecture can give different float results (vector units, BLAS kernels), so a record names the model.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=5, check=True).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or None


def hardware() -> dict[str, Any]:
    """A short description of the machine: CPU, core count, and GPUs when torch is already loaded.

    torch is looked up among the loaded modules rather than imported: this module sits below every layer,
    protocol and leaderboard included, which must stay usable without torch. Whoever ran a model on a GPU
    has torch loaded by then.
    """
    import os
    import sys

    info: dict[str, Any] = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
                            "cpu_model": cpu_model(), "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        else:
            info["gpus"] = []
    return info


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the form that config hashes are taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(config: Any) -> str:
    """sha256 of the canonical JSON of a config (hex)."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """sha256 of a file's bytes (hex), read in chunks so that large videos do not fill memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """A cheap identity for a large input file: size, mtime and the sha256 of its first and last MiB.

    Hashing hours of footage in full would cost as much as decoding it; this catches replaced or
    truncated files, which is what resuming a build needs to know.
    """
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), 2)
            h.update(f.read(1 << 20))
    return {"size": st.st_size, "mtime": st.st_mtime, "head_tail_sha256": h.hexdigest()}
