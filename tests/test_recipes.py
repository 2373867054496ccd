"""The recipe registry: folders searched in order, user folders first, and no silent empty default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvtr_bench.errors import ConfigError
from dvtr_bench.models import registry
from dvtr_bench.models.registry import (add_recipe_dir, builtin_recipe_dir, list_recipes, load_recipe,
                                        recipe_dirs)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_USER_DIRS", [])
    monkeypatch.delenv(registry.RECIPE_PATH_ENV, raising=False)


def test_shipped_recipes_are_the_checkouts_baselines_folder():
    assert builtin_recipe_dir() == REPO / "baselines"
    assert set(list_recipes()) == {p.stem for p in (REPO / "baselines").glob("*.json")} - {"demo"}
    assert set(list_recipes(overlays=True)) == {"demo"}


def test_an_unknown_name_is_an_error_never_an_empty_default():
    with pytest.raises(ConfigError, match="unknown method or recipe 'meanq'.*meanP"):
        load_recipe("meanq")
    with pytest.raises(ConfigError, match="unknown overlay 'dmeo'"):
        load_recipe("meanP", overlay="dmeo")
    with pytest.raises(ConfigError, match="an overlay"):
        load_recipe("demo")


def test_names_are_case_insensitive_and_recipes_carry_aliases():
    assert load_recipe("MEANP")["method"] == "meanP"
    assert load_recipe("clip4clip")["train"] == load_recipe("meanP")["train"]
    assert load_recipe("X-Pool")["method"] == "xpool"


def _write(folder: Path, name: str, recipe: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(recipe))
    return path


def test_a_user_folder_adds_and_shadows_recipes(tmp_path):
    shipped = load_recipe("meanP")
    _write(tmp_path / "mine", "meanP-big", {"method": "meanP", "train": {"batch_size": 512}})
    _write(tmp_path / "mine", "meanP", {"method": "meanP", "train": {"epochs": 1}})
    add_recipe_dir(tmp_path / "mine")
    assert recipe_dirs()[0] == (tmp_path / "mine").resolve()
    assert load_recipe("meanP-big")["train"] == {"batch_size": 512}
    assert load_recipe("meanP")["train"] == {"epochs": 1}      # the user's folder comes first
    assert list_recipes()["seqTransf"].parent == builtin_recipe_dir()
    assert shipped["train"]["batch_size"] == 128


def test_the_environment_variable_names_recipe_folders(tmp_path, monkeypatch):
    _write(tmp_path / "env", "xpool-small", {"method": "xpool", "train": {"batch_size": 4}})
    monkeypatch.setenv(registry.RECIPE_PATH_ENV, str(tmp_path / "env"))
    assert load_recipe("xpool-small")["method"] == "xpool"
    monkeypatch.setenv(registry.RECIPE_PATH_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="not a folder"):
        load_recipe("xpool")
    with pytest.raises(ConfigError, match="does not exist"):
        add_recipe_dir(tmp_path / "missing")


def test_a_recipe_must_name_a_registered_method(tmp_path):
    path = _write(tmp_path, "bad", {"method": "no-such-class"})
    with pytest.raises(ConfigError, match="no method class is registered as 'no-such-class'"):
        load_recipe(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_recipe(path)


def test_run_baseline_reads_a_user_recipe_folder(tmp_path):
    from click.testing import CliRunner

    from dvtr_bench.commands.run_baseline import run_baseline

    result = CliRunner().invoke(run_baseline, ["--help"])
    assert result.exit_code == 0 and "--recipes" in result.output
    result = CliRunner().invoke(run_baseline, ["nope", "--dataset", str(tmp_path), "--out", str(tmp_path / "o"),
                                               "--recipes", str(tmp_path)])
    assert result.exit_code == 2 and "unknown method or recipe 'nope'" in result.output
