"""The package works as a plain wheel, the way a user installs it from a package index.

The wheel is built from the checkout and installed (not editable) into a fresh virtual environment; every command
then runs from a folder outside the checkout, so nothing can be read from the source tree by accident. The fresh
environment sees the test environment's third-party packages through a ``.pth`` line (installing torch again
would cost gigabytes), but dvtr itself only from the wheel: the test checks where it was imported from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # A copy of the checkout (tracked files and new ones git does not ignore): setuptools writes build/ and
    # *.egg-info next to setup.py, and must not pick up a stale build/ folder.
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout
    src = build / "src"
    for rel in filter(None, files.decode().split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes((REPO / rel).read_bytes())
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
          str(src)], cwd=build, env=env)
    (whl,) = dist.glob("dvtr_bench-*.whl")
    return whl


def test_wheel_holds_every_subpackage_and_recipe(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in sorted(REPO.joinpath("dvtr_bench").rglob("*.py")):
        rel = init.relative_to(REPO).as_posix()
        if "__pycache__" not in rel:
            assert rel in names, f"{rel} is missing from the wheel"
    for d in sorted(REPO.joinpath("dvtr_bench").rglob("*")):
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")):
            assert (d / "__init__.py").is_file(), f"{d} has modules but no __init__.py: a wheel would drop it"
    for recipe in sorted(REPO.joinpath("baselines").glob("*.json")):
        assert f"dvtr_bench/baselines/{recipe.name}" in names, f"recipe {recipe.name} is missing from the wheel"
    assert "dvtr_bench/protocol/result_record.schema.json" in names
    assert any(n.endswith("/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names), \
        "the licence file is missing from the wheel"


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("venv")
    env_dir = root / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=root, env=dict(os.environ))
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_DATASETS_CACHE=str(root / "hf-cache"), RAY_AUTH_MODE="disabled",
               PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
         cwd=root, env=env)
    # third-party packages from the test environment, after the fresh site-packages in sys.path
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir, env


def test_every_module_imports_from_the_wheel(venv: tuple[Path, dict[str, str]], tmp_path: Path):
    env_dir, env = venv
    code = (
        "import importlib, json, pkgutil, dvtr_bench\n"
        "mods = [m.name for m in pkgutil.walk_packages(dvtr_bench.__path__, 'dvtr_bench.')\n"
        "        if m.name != 'dvtr_bench.__main__']\n"
        "for m in mods: importlib.import_module(m)\n"
        "from dvtr_bench.models.registry import builtin_recipe_dir, list_recipes, load_recipe\n"
        "print(json.dumps({'file': dvtr_bench.__file__, 'n': len(mods), 'recipes': str(builtin_recipe_dir()),\n"
        "                  'names': sorted(list_recipes()), 'train': load_recipe('meanP')['train']}))\n"
    )
    out = json.loads(_run([str(env_dir / "bin" / "python"), "-c", code], cwd=tmp_path, env=env).stdout)
    assert Path(out["file"]).is_relative_to(env_dir), out["file"]
    assert Path(out["recipes"]).is_relative_to(env_dir), out["recipes"]
    assert out["n"] > 50
    assert {"meanP", "seqTransf", "xpool", "msam"} <= set(out["names"])
    assert out["train"]["batch_size"] == 128, "the shipped recipe must come back whole"


def test_tiny_chain_from_the_wheel(venv: tuple[Path, dict[str, str]], tmp_path: Path):
    env_dir, env = venv
    dvtr = str(env_dir / "bin" / "dvtr")
    assert "build-dataset" in _run([dvtr, "--help"], cwd=tmp_path, env=env).stdout
    _run([dvtr, "synth", "--out", "footage", "--flights", "3", "--seed", "3", "--resolution", "192x108",
          "--takes", "4", "--min-take", "2", "--max-take", "4"], cwd=tmp_path, env=env)
    _run([dvtr, "build-dataset", "footage/videos", "--annotations", "footage/annotations.jsonl", "--out", "ds",
          "--splits", "train=0.34,validation=0.33,test=0.33", "--frame-size", "64"], cwd=tmp_path, env=env)
    _run([dvtr, "run-baseline", "meanP", "--dataset", "ds", "--out", "results", "--config", "demo", "--epochs", "1",
          "--seeds", "0", "--batch-size", "8", "--workers", "0", "--device", "cpu"], cwd=tmp_path, env=env)
    out = _run([dvtr, "leaderboard", "results", "--out", "tables", "--verify"], cwd=tmp_path, env=env)
    records = list((tmp_path / "results").rglob("record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["dvtr_version"] == _run([dvtr, "--version"], cwd=tmp_path, env=env).stdout.split()[-1]
    assert (tmp_path / "tables" / "index.md").is_file(), out.stdout
