"""Strict run configuration: every key of a recipe, overlay or ``--set`` is known, typed, and recorded as used."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.engine.run import resolve_recipe
from dvtr_bench.engine.trainer import TrainConfig
from dvtr_bench.errors import ConfigError


def _overlay(tmp_path, doc, name="overlay.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("doc, message", [
    ({"train": {"epoch": 1, "learning_rate": 0.5, "batch_sze": 4}}, "unknown key train.epoch (did you mean train.epochs?)"),
    ({"train": {"learning_rate": 0.5}}, "unknown key train.learning_rate (did you mean train.lr?)"),
    ({"trian": {"lr": 0.5}}, "unknown key trian (did you mean train?)"),
    ({"model": {"backbon": "ViT-B-16"}}, "unknown key model.backbon (did you mean model.backbone?)"),
    ({"per_method": {"xpol": {"train": {"lr": 0.1}}}}, "unknown key per_method.xpol (did you mean per_method.xpool?)"),
    ({"per_method": {"xpool": {"model": {"options": {"dropot": 0.1}}}}},
     "unknown key per_method.xpool.model.options.dropot (did you mean per_method.xpool.model.options.dropout?)"),
    ({"per_method": {"meanP": {"train": {"lrr": 0.1}}}}, "unknown key per_method.meanP.train.lrr (did you mean"),
])
def test_an_unknown_overlay_key_is_a_config_error_naming_the_file(tmp_path, doc, message):
    path = _overlay(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        resolve_recipe("xpool", config=path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_an_unknown_key_in_a_recipe_or_its_options_is_refused(tmp_path):
    recipe = json.loads((resolve_recipe.__globals__["Path"](__file__).parents[1] / "baselines" / "xpool.json")
                        .read_text())
    bad = {**recipe, "model": {**recipe["model"], "options": {"heads": 1, "dropuot": 0.3}}}
    with pytest.raises(ConfigError, match=r"model\.options\.dropuot \(did you mean model\.options\.dropout\?\)"):
        resolve_recipe(str(_overlay(tmp_path, bad, "myxpool.json")))
    with pytest.raises(ConfigError, match=r"unknown key protocl \(did you mean protocol\?\)"):
        resolve_recipe({**recipe, "protocl": {}})


def test_sets_apply_in_order_after_the_overlays_and_are_typed(tmp_path):
    first = _overlay(tmp_path, {"train": {"lr": 0.01, "epochs": 2}}, "a.json")
    second = _overlay(tmp_path, {"train": {"lr": 0.02}}, "b.json")
    r = resolve_recipe("xpool", config=["demo", first, second],
                       sets=["train.epochs=3", "model.options.dropout=0.1", "train.augment=none"])
    assert r["train"]["lr"] == 0.02 and r["train"]["epochs"] == 3 and r["train"]["augment"] == "none"
    assert r["model"]["options"]["dropout"] == 0.1 and r["model"]["backbone"] == "dvtr-tiny"
    assert r["overlay"] == "demo+a+b+--set train.epochs=3+--set model.options.dropout=0.1+--set train.augment=none"
    for text, message in [("train.epochs=abc", "--set train.epochs=abc: epochs must be an integer"),
                          ("train.amp=1", "amp must be true or false or null"),
                          ("train.lr=1e-5x", "lr must be a number"),
                          ("train.learning_rate=1e-5", "did you mean train.lr?"),
                          ("optim.lr=1", "unknown key optim"),
                          ("lr", "write SECTION.KEY=VALUE")]:
        with pytest.raises(ConfigError, match=message.replace("?", r"\?").replace("+", r"\+")):
            resolve_recipe("xpool", sets=[text])


def test_the_resolved_train_section_is_what_the_trainer_uses():
    # Aliases and coef_lr are resolved, defaults filled in: the recorded recipe can be rerun as it reads.
    r = resolve_recipe({"method": "meanP", "train": {"warmup_proportion": 0.2, "lr": 1e-4, "coef_lr": 1e-3}},
                       regime="release")
    cfg = TrainConfig.from_dict(r["train"])
    assert r["train"] == cfg.to_dict()
    assert r["train"]["warmup"] == 0.2 and r["train"]["backbone_lr"] == pytest.approx(1e-7)
    assert "warmup_proportion" not in r["train"] and "coef_lr" not in r["train"]


def test_cli_overlay_typo_exits_2_before_anything_runs(tmp_path):
    path = _overlay(tmp_path, {"train": {"epoch": 1, "learning_rate": 0.5, "batch_sze": 4}})
    res = CliRunner().invoke(cli, ["run-baseline", "meanP", "--dataset", str(tmp_path / "nowhere"),
                                   "--out", str(tmp_path / "o"), "--config", str(path)])
    assert res.exit_code == 2, res.output
    assert "did you mean train.epochs?" in " ".join(res.output.split())
    assert not (tmp_path / "o").exists()
    res = CliRunner().invoke(cli, ["run-baseline", "meanP", "--dataset", str(tmp_path / "nowhere"),
                                   "--out", str(tmp_path / "o"), "--set", "train.batch_sze=4"])
    assert res.exit_code == 2 and "did you mean train.batch_size?" in " ".join(res.output.split())


def test_a_recipe_may_mark_itself_a_reconstruction_but_only_with_a_boolean(tmp_path):
    from dvtr_bench.models.registry import load_recipe

    assert load_recipe("mcsan")["reconstruction"] is True
    bad = json.loads(json.dumps(load_recipe("mcsan")))
    bad["reconstruction"] = "yes"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="reconstruction must be true or false"):
        load_recipe(str(path))
