"""Run folders: one per (method, resolved recipe, data, weights), seeds that accumulate whichever command ran
them, a status for a failed run, last.pt deleted after a finished seed, warnings and reproducibility fields."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.engine.run import recipe_warnings, resolve_recipe, run_baseline
from dvtr_bench.engine.trainer import TrainConfig
from dvtr_bench.protocol.record import read_record, validate_record
from dvtr_bench.testing.learnable import learnable_dataset, write_learnable_dataset

TINY = dict(backbone="dvtr-tiny", pretrained=None, device="cpu", epochs=1, batch_size=4, workers=0,
            config={"model": {"image_size": 64}})


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return write_learnable_dataset(tmp_path_factory.mktemp("ds") / "learnable", n_train=8, n_val=4, n_test=4,
                                   size=64)


def test_seeds_of_two_commands_accumulate_in_one_record(dataset_dir, tmp_path):
    out = tmp_path / "results"
    first = run_baseline("meanP", dataset_dir, out, seeds=[0], **TINY)
    run_dir = first.parent
    assert run_dir.name.startswith("meanP-dvtr-tiny-") and len(run_dir.name) == len("meanP-dvtr-tiny-") + 8
    assert read_record(first)["seeds"] == [0]
    # last.pt (the resume point) is gone once the seed has finished; the selected weights stay.
    assert not (run_dir / "seed0" / "last.pt").exists() and (run_dir / "seed0" / "best.pt").exists()
    seed0 = read_record(first)["runs"][0]

    second = run_baseline("meanP", dataset_dir, out, seeds=[1], **TINY)
    assert second == first and [p.name for p in out.iterdir()] == [run_dir.name]
    rec = read_record(second)
    assert validate_record(rec) == []
    assert rec["seeds"] == [0, 1] and rec["summary"]["n_seeds"] == 2 and rec["summary"]["std"] is not None
    assert rec["runs"][0] == seed0  # seed 0 reused, not retrained
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["status"] == "finished" and [s["seed"] for s in doc["seeds"]] == [0, 1]
    assert doc["requested_seeds"] == [1]
    assert rec["reproducibility"]["seed_commands"] == {"0": None, "1": None}

    # The leaderboard sees one run with two seeds, not two rows.
    from dvtr_bench.leaderboard.collect import collect

    col = collect([out])
    assert col.n_accepted == 1 and col.groups[0].entries[0].record["seeds"] == [0, 1]


def test_record_carries_reproducibility_fields(dataset_dir, tmp_path):
    import torch

    rec = read_record(run_baseline("meanP", dataset_dir, tmp_path / "r", seeds=[0], command=["dvtr", "x"], **TINY))
    rep = rec["reproducibility"]
    assert set(rep["fingerprints"]) == {"train", "validation", "test"}
    assert rep["fingerprints"]["test"] == rec["dataset"]["fingerprint"]
    assert len({*rep["fingerprints"].values()}) == 3
    assert rep["command"] == ["dvtr", "x"] and rep["seed_commands"] == {"0": ["dvtr", "x"]}
    assert rep["torch_threads"] == torch.get_num_threads()
    assert rep["interop_threads"] == torch.get_num_interop_threads() and rep["world_size"] == 1
    assert rep["deterministic"]["algorithms"] == torch.are_deterministic_algorithms_enabled()
    assert rep["cpu_model"] and isinstance(rep["gpu_models"], list)
    assert rep["run_id"].startswith(rec["reproducibility"]["run_id"][:8])
    assert rec["training"]["batch_size"] == 4


def test_zero_shot_runs_with_other_weights_get_their_own_folders(dataset_dir, tmp_path):
    import open_clip
    import torch

    from dvtr_bench.provenance import file_sha256

    paths = []
    for i in range(2):
        torch.manual_seed(i)
        sd = open_clip.create_model("dvtr-tiny", force_context_length=32, force_image_size=64).state_dict()
        path = tmp_path / f"weights{i}.pt"
        torch.save(sd, path)
        paths.append(path)
    out = tmp_path / "zs"
    common = {**TINY, "pretrained": None}
    recs = [run_baseline("meanP", dataset_dir, out, zero_shot=True, **{**common, "pretrained": str(p)})
            for p in paths]
    assert recs[0].parent != recs[1].parent and all(r.parent.name.startswith("meanP-dvtr-tiny-zeroshot-")
                                                    for r in recs)
    for rec_path, path in zip(recs, paths):
        rec = read_record(rec_path)
        assert rec["backbone"]["weights_sha256"] == file_sha256(path)
    # Options that only change speed, and another path to the same file, do not make another run.
    import shutil

    copy = shutil.copy(paths[0], tmp_path / "elsewhere.pt")
    again = run_baseline("meanP", dataset_dir, out, zero_shot=True, **{**common, "pretrained": str(copy),
                                                                        "workers": 1})
    assert again == recs[0]


def test_a_failed_run_says_so_in_run_json(dataset_dir, tmp_path, monkeypatch):
    import dvtr_bench.engine.evaluate as E

    def boom(*a, **k):
        raise RuntimeError("the evaluation broke")

    monkeypatch.setattr(E, "evaluate", boom)
    with pytest.raises(RuntimeError):
        run_baseline("meanP", dataset_dir, tmp_path / "f", zero_shot=True, **TINY)
    # beside the run folder only the shared feature cache of frozen backbones (a zero-shot run encodes into it)
    [run_dir] = [p for p in (tmp_path / "f").iterdir() if p.name != "feature-cache"]
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["status"] == "failed" and doc["reason"] == "RuntimeError: the evaluation broke"
    assert doc["seeds"] == [] and not (run_dir / "record.json").exists()


def test_keep_last_keeps_the_resume_point(dataset_dir, tmp_path):
    rec = run_baseline("meanP", dataset_dir, tmp_path / "k", seeds=[0], keep_last=True, **TINY)
    assert (rec.parent / "seed0" / "last.pt").exists()


def test_warnings_for_a_pretrained_recipe_on_a_random_backbone_and_a_large_batch():
    ds = learnable_dataset(n_train=6, n_val=2, n_test=2, size=32)
    recipe = resolve_recipe("meanP", backbone="dvtr-tiny", pretrained=None, regime="release")
    warnings = recipe_warnings(recipe, TrainConfig.from_dict(recipe["train"]), ds, zero_shot=False)
    assert any("randomly initialised" in w and "backbone_lr 1e-07" in w for w in warnings), warnings
    assert any("larger than the train split's 6 captioned clips" in w for w in warnings), warnings
    demo = resolve_recipe("meanP", config="demo", batch_size=4)
    assert recipe_warnings(demo, TrainConfig.from_dict(demo["train"]), ds, zero_shot=False) == []
    pretrained = resolve_recipe("meanP", batch_size=4)
    assert recipe_warnings(pretrained, TrainConfig.from_dict(pretrained["train"]), ds, zero_shot=False) == []
    assert "chance" in recipe_warnings(demo, TrainConfig.from_dict(demo["train"]), ds, zero_shot=True)[0]


def test_cli_prints_the_warning_and_accumulates_seeds(dataset_dir, tmp_path):
    base = ["run-baseline", "meanP", "--dataset", str(dataset_dir), "--out", str(tmp_path / "c"),
            "--backbone", "dvtr-tiny", "--pretrained", "none", "--device", "cpu", "--set", "model.image_size=64",
            "--epochs", "1", "--batch-size", "64", "--workers", "0"]
    res = CliRunner().invoke(cli, [*base, "--seeds", "0"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "warning: batch_size 64 is larger than the train split's 8 captioned clips" in text
    assert "warning: the backbone is randomly initialised" in text
    res = CliRunner().invoke(cli, [*base, "--seeds", "1"])
    assert res.exit_code == 0, res.output
    [run_dir] = (tmp_path / "c").iterdir()
    rec = read_record(run_dir / "record.json")
    assert rec["seeds"] == [0, 1] and rec["config"]["recipe"]["model"]["image_size"] == 64
    seed_commands = rec["reproducibility"]["seed_commands"]
    assert seed_commands["0"][-1] == "0" and seed_commands["1"][-1] == "1"  # each seed names its own command


def test_the_recorded_command_line_is_the_one_to_type_again():
    from dvtr_bench.commands.run_baseline import _command_line

    assert _command_line("/venv/bin/dvtr", ["run-baseline", "meanP"]) == ["dvtr", "run-baseline", "meanP"]
    assert _command_line("/src/dvtr_bench/__main__.py", ["run-baseline"]) == ["python", "-m", "dvtr_bench",
                                                                               "run-baseline"]
