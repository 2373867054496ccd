"""The layers point down (docs/architecture.md): every import in the package, at module level or inside a function,
is checked against the allowed arrows, and the torch-free layers are checked for torch imports.

The walk reads the source (``ast``), so an import hidden in a function body, an ``importlib.import_module("...")``
or ``__import__("...")`` with a literal name counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dvtr_bench"

FOUNDATION = {"errors", "progress", "provenance", "_version"}
# layer -> the layers it may import (besides itself and the foundation)
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "leaderboard": {"protocol"},
    "annotations": {"protocol"},
    "video": {"protocol"},
    "synth": {"protocol", "annotations", "video"},
    "dataset": {"protocol", "annotations", "video"},
    "text": {"protocol"},
    "models": {"protocol", "text"},
    "engine": {"protocol", "text", "models", "dataset", "annotations", "video"},
    "search": {"protocol", "text", "models", "dataset", "annotations", "video", "engine"},
    "testing": {"protocol", "text", "annotations", "video", "synth", "dataset", "models", "engine", "leaderboard",
                "search"},
    "commands": {"protocol", "text", "annotations", "video", "synth", "dataset", "models", "engine", "leaderboard",
                 "search", "root"},
    "cli": {"commands"},
    "__main__": {"cli"},
    # The package root is the public facade (``dvtr_bench.load_dataset``); nothing inside the package imports it.
    "root": {"dataset"},
}
TORCH_FREE = FOUNDATION | {"protocol", "text", "leaderboard", "annotations", "video", "synth", "dataset"}
TORCH_MODULES = {"torch", "torchvision", "open_clip"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every module name imported by a file, with its line: import statements anywhere in the file, and
    ``importlib.import_module`` / ``__import__`` calls with a literal name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            # ``from dvtr_bench import engine`` imports the subpackage, not just the root
            if name == "dvtr_bench":
                found += [(f"dvtr_bench.{a.name}", node.lineno) for a in node.names if a.name != "__version__"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.args[0].value, node.lineno))
    return found


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def violations(files: list[Path]) -> list[str]:
    bad = []
    for path in files:
        src_mod = module_name(path)
        src = layer_of(src_mod)
        for name, line in imports_of(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
            top = name.split(".")[0]
            if top in TORCH_MODULES and src in TORCH_FREE:
                bad.append(f"{where}: the {src} layer must not import torch")
            if top != "dvtr_bench":
                continue
            dst = layer_of(name)
            if name == "dvtr_bench" and src != "root":
                bad.append(f"{where}: only the facade imports the package root; import the module you need")
                continue
            if dst == src or dst in FOUNDATION:
                continue
            if src in FOUNDATION:
                bad.append(f"{where}: foundation modules import no other dvtr module")
            elif dst not in ALLOWED.get(src, set()):
                bad.append(f"{where}: {src} may not import {dst} (allowed: {sorted(ALLOWED.get(src, ()))})")
    return bad


def test_every_layer_is_known():
    layers = {layer_of(module_name(p)) for p in package_files()}
    assert layers <= set(ALLOWED) | FOUNDATION, f"add the new layer to docs/architecture.md and ALLOWED: " \
                                                f"{sorted(layers - set(ALLOWED) - FOUNDATION)}"


def test_imports_point_down():
    assert violations(package_files()) == []


def test_protocol_has_no_torch_import():
    protocol = [p for p in package_files() if layer_of(module_name(p)) == "protocol"]
    assert protocol
    for path in protocol:
        assert not any(name.split(".")[0] in TORCH_MODULES for name, _ in imports_of(path)), path


@pytest.mark.parametrize("source, expected", [
    ("def f():\n    from dvtr_bench.engine import trainer\n", "protocol may not import engine"),
    ("import torch\n", "must not import torch"),
    ("import importlib\nimportlib.import_module('dvtr_bench.models.registry')\n", "protocol may not import models"),
    ("from dvtr_bench import engine\n", "protocol may not import engine"),
])
def test_a_back_edge_is_caught(tmp_path, monkeypatch, source, expected):
    # a fake protocol module inside a copy of the package's layout
    fake = tmp_path / "dvtr_bench" / "protocol" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "dvtr_bench")
    found = violations([fake])
    assert any(expected in v for v in found), found


def test_layers_are_documented():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for layer in set(ALLOWED) - {"root", "__main__", "cli"}:
        assert f"`{layer}/`" in doc, layer
