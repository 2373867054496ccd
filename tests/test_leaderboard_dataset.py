"""`dvtr leaderboard --verify --dataset DIR`: records checked against the test split of a built dataset."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.leaderboard import collect
from dvtr_bench.protocol.binding import TestSplit, flatten_captions
from dvtr_bench.protocol.record import build_record, collect_cost, write_record
from dvtr_bench.protocol.scores import load_scores, save_scores


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dvtr_bench.testing.learnable import write_learnable_dataset

    return write_learnable_dataset(tmp_path_factory.mktemp("ds") / "ds", n_train=2, n_val=0, n_test=6, size=32,
                                   n_frames=2, captions_per_clip=3)


@pytest.fixture(scope="module")
def split(dataset_dir: Path) -> TestSplit:
    from dvtr_bench.dataset.hub import load_dataset

    return TestSplit.from_dataset(load_dataset(dataset_dir)["test"])


def _scores(ref: TestSplit, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    ids = ref.caption_order
    c2c = np.array([ref.clip_ids.index(ref.captions[i][0]) for i in ids])
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((len(ids), len(ref.clip_ids))).astype(np.float32)
    s[np.arange(len(ids)), c2c] += 2.0
    return s, c2c, ids, [ref.captions[i][1] for i in ids]


def _record(run: Path, ref: TestSplit, method: str, writer: Any = None, fingerprint: str | None = None,
            texts_of: Any = None) -> Path:
    files = {}
    for seed in (0, 1, 2):
        s, c2c, ids, texts = _scores(ref, seed)
        if texts_of is not None:
            texts = texts_of(texts)
        files[seed] = run / f"scores_seed{seed}.npz"
        (writer or _save_bound)(files[seed], s, c2c, ref, ids, texts)
    rec = build_record(method=method, config={"m": method}, dataset={"name": "learnable",
                                                                      "fingerprint": fingerprint or ref.fingerprint},
                       backbone={"name": "b", "pretrained": None}, score_files=files, record_path=run / "record.json",
                       transductive=False, zero_shot=False, checkpoint_selection="validation",
                       cost=collect_cost(None, None, None, None, None), created_at="2026-01-01T00:00:00Z")
    return write_record(rec, run / "record.json")


def _save_bound(path: Path, s: np.ndarray, c2c: np.ndarray, ref: TestSplit, ids: list[str], texts: list[str]) -> str:
    return save_scores(path, s, c2c, ref.clip_ids, caption_ids=ids, caption_texts=texts,
                       clip_digests=[ref.digests[c] for c in ref.clip_ids])


def _save_v1(path: Path, s: np.ndarray, c2c: np.ndarray, ref: TestSplit, ids: list[str], texts: list[str]) -> str:
    """A score file as dvtr 0.2 wrote it (format 1: no caption hash, no clip digests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"format_version": np.array(1, dtype=np.int64), "scores": s, "caption_to_clip": c2c.astype(np.int64),
              "clip_ids": np.array(ref.clip_ids), "caption_ids": np.array(ids), "caption_texts": np.array(texts)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    return load_scores(path).sha256


def test_reference_rows_follow_the_engine(dataset_dir: Path, split: TestSplit) -> None:
    from dvtr_bench.dataset.hub import load_dataset
    from dvtr_bench.engine.data import Captions

    test = load_dataset(dataset_dir)["test"]
    caps = Captions.from_split(test)
    ids, texts, owner = flatten_captions(test["clip_id"], test["captions"])
    assert (ids, texts, owner) == (caps.caption_ids(), caps.texts, caps.caption_to_clip.tolist())
    assert split.caption_order == ids
    # Blank captions are not rows, as the engine never scores them.
    assert flatten_captions(["a", "b"], [["x", " ", ""], None]) == (["a#0"], ["x"], [0])


def test_dataset_check_catches_what_the_score_files_cannot(dataset_dir: Path, split: TestSplit,
                                                           tmp_path: Path) -> None:
    # Same clips, digests and fingerprint, but other caption texts: alone, nothing but the dataset can tell.
    other_texts = _record(tmp_path / "r" / "texts", split, "texts", texts_of=lambda t: [x + "!" for x in t])
    col = collect([tmp_path / "r"], verify=True)
    assert [e.record["method"] for g in col.groups for e in g.entries] == ["texts"]
    assert [x.kind for x in collect([tmp_path / "r"], verify=True, references=[split]).exclusions] == ["dataset"]
    # Among other records of its group, it is the odd one out.
    honest = _record(tmp_path / "r" / "honest", split, "honest")
    old = _record(tmp_path / "r" / "old", split, "old-format", writer=_save_v1)
    col = collect([tmp_path / "r"], verify=True)
    assert sorted(e.record["method"] for g in col.groups for e in g.entries) == ["honest", "old-format"]
    assert [(x.kind, Path(x.path)) for x in col.exclusions] == [("binding", other_texts)]
    assert [e.record["method"] for e in col.unbound] == ["old-format"]

    col = collect([tmp_path / "r"], verify=True, references=[split])
    accepted = {e.record["method"]: e for g in col.groups for e in g.entries}
    assert set(accepted) == {"honest", "old-format"}
    assert accepted["old-format"].dataset_checked and col.unbound == []
    (bad,) = col.exclusions
    assert bad.kind == "dataset" and Path(bad.path) == other_texts and "caption text" in bad.reason
    assert honest.is_file() and old.is_file()


def test_dataset_check_rejects_other_fingerprints_and_other_clips(split: TestSplit, tmp_path: Path) -> None:
    elsewhere = "9" * 64

    def other_clips(path: Path, s: np.ndarray, c2c: np.ndarray, ref: TestSplit, ids: list[str],
                    texts: list[str]) -> str:
        clip_ids = [c + "-x" for c in ref.clip_ids]
        return save_scores(path, s, c2c, clip_ids, caption_texts=texts)

    _record(tmp_path / "r" / "elsewhere", split, "elsewhere", writer=other_clips, fingerprint=elsewhere)
    _record(tmp_path / "r" / "claims", split, "claims", writer=other_clips)
    col = collect([tmp_path / "r"], verify=True, references=[split])
    assert col.n_accepted == 0
    why = {Path(x.path).parent.name: x for x in col.exclusions}
    assert why["elsewhere"].kind == "dataset" and "not the test split of any --dataset" in why["elsewhere"].reason
    assert why["claims"].kind == "dataset" and "not in the dataset's test split" in why["claims"].reason


def test_cli_dataset_option(dataset_dir: Path, split: TestSplit, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _record(tmp_path / "r" / "honest", split, "honest")
    runner = CliRunner()
    r = runner.invoke(cli, ["leaderboard", "r", "--out", "t", "--verify", "--dataset", str(dataset_dir),
                            "--format", "md"])
    assert r.exit_code == 0, r.output
    assert "verified against their score files and the dataset" in " ".join(r.output.split())
    assert "unbound" not in r.output                # checked against the dataset: bound by it
    assert json.loads(Path("t/summary.json").read_text())["groups"][0]["rows"][0]["dataset_checked"] is True
    r = runner.invoke(cli, ["leaderboard", "r", "--out", "t", "--dataset", str(dataset_dir)])
    assert r.exit_code == 2 and "--verify" in r.output
    r = runner.invoke(cli, ["leaderboard", "r", "--out", "t", "--verify", "--dataset", "r"])
    assert r.exit_code == 2 and "not a dvtr dataset" in r.output
    _record(tmp_path / "u" / "old", split, "old-format", writer=_save_v1)
    r = runner.invoke(cli, ["leaderboard", "u", "--out", "tu", "--verify", "--format", "md"])
    assert r.exit_code == 0 and "✓ unbound" in r.output and "1 row(s) are unbound" in " ".join(r.output.split())
    shutil.copytree(tmp_path / "r" / "honest", tmp_path / "r" / "texts")
    rec = json.loads(Path("r/texts/record.json").read_text())
    for run in rec["runs"]:
        p = Path("r/texts") / run["scores"]["path"]
        sf = load_scores(p)
        run["scores"]["sha256"] = save_scores(p, sf.scores, sf.caption_to_clip, sf.clip_ids,
                                              caption_ids=sf.caption_ids,
                                              caption_texts=[t.upper() for t in sf.caption_texts],
                                              clip_digests=sf.clip_digests)
    rec["method"] = "texts"
    Path("r/texts/record.json").write_text(json.dumps(rec))
    r = runner.invoke(cli, ["leaderboard", "r", "--out", "t", "--verify", "--dataset", str(dataset_dir),
                            "--format", "md"])
    assert r.exit_code == 1, r.output
    assert "caption text" in r.output
