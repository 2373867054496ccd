"""A method that lives outside the package: found through its recipe's module, or an installed entry point, and run
by `dvtr run-baseline` like a built-in one (docs/add-a-method.md walks through this example)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dvtr_bench.errors import ConfigError
from dvtr_bench.models import create_method, registry
from dvtr_bench.models.registry import add_recipe_dir, list_methods, load_recipe

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.fixture
def clean_registry(monkeypatch):
    # Registration happens on a module's first import, so the registry is filled before it is copied: the
    # copy takes the plugin's classes and the original is put back afterwards, still holding the built-ins.
    list_methods()
    monkeypatch.setattr(registry, "_USER_DIRS", [])
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    monkeypatch.delenv(registry.RECIPE_PATH_ENV, raising=False)
    registry._import_builtin_methods.cache_clear()
    yield
    registry._import_builtin_methods.cache_clear()
    sys.modules.pop("dvtr_maxp", None)


def test_a_recipe_names_the_module_of_its_method(clean_registry, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    with pytest.raises(ConfigError, match="unknown method or recipe 'maxP'"):
        load_recipe("maxP")
    add_recipe_dir(EXAMPLES / "recipes")
    assert load_recipe("maxP")["method"] == "maxP"
    assert "maxP" in list_methods()
    torch.manual_seed(0)
    m = create_method("maxP", backbone="dvtr-tiny", pretrained=None, image_size=64)
    frames, mask = torch.randn(2, 12, 3, 64, 64), torch.ones(2, 12, dtype=torch.bool)
    mask[1, 5:] = False
    video = m.encode_video(frames, mask)
    frames[1, 5:] = 1e3                       # what lies in padded slots cannot reach the embedding
    assert torch.allclose(video["video"], m.encode_video(frames, mask)["video"])


def test_a_module_that_cannot_be_imported_is_a_clear_error(clean_registry, tmp_path):
    (tmp_path / "broken.json").write_text(json.dumps({"method": "maxP", "module": "no_such_lab.methods"}))
    add_recipe_dir(tmp_path)
    with pytest.raises(ConfigError, match="names the module 'no_such_lab.methods', which cannot be imported"):
        load_recipe("broken")


def _fake_distribution(site: Path) -> None:
    """An installed plugin package as pip would leave it: the code, and a dist-info with its entry points."""
    dist = site / "dvtr_maxp_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dvtr-maxp-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[dvtr.methods]\nmaxP = dvtr_maxp\n\n"
                                           "[dvtr.recipes]\nmaxp-recipes = dvtr_maxp_recipes\n")
    (site / "dvtr_maxp").mkdir()
    (site / "dvtr_maxp" / "__init__.py").write_text((EXAMPLES / "dvtr_maxp" / "__init__.py").read_text())
    (site / "dvtr_maxp_recipes").mkdir()
    (site / "dvtr_maxp_recipes" / "__init__.py").write_text("")
    recipe = json.loads((EXAMPLES / "recipes" / "maxP.json").read_text())
    del recipe["module"]                      # the entry point imports it
    (site / "dvtr_maxp_recipes" / "maxP.json").write_text(json.dumps(recipe))


def test_an_installed_package_declares_methods_and_recipes_by_entry_points(clean_registry, tmp_path, monkeypatch):
    _fake_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "maxP" in list_methods()
    assert load_recipe("maxP")["train"]["batch_size"] == 128
    assert registry.list_recipes()["maxP"].parent == tmp_path / "dvtr_maxp_recipes"


@pytest.mark.slow
def test_run_baseline_trains_the_plugin_method(tmp_path):
    from dvtr_bench.testing.learnable import write_learnable_dataset

    ds = write_learnable_dataset(tmp_path / "ds", n_train=8, n_val=4, n_test=4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "dvtr_bench", "run-baseline", "maxP", "--recipes",
                          str(EXAMPLES / "recipes"), "--dataset", str(ds), "--out", str(tmp_path / "runs"),
                          "--config", "demo", "--epochs", "1", "--seeds", "0", "--batch-size", "4",
                          "--workers", "0", "--device", "cpu"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    (record,) = (tmp_path / "runs").rglob("record.json")
    rec = json.loads(record.read_text())
    assert rec["method"] == "maxP"
