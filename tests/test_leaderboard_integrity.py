"""`dvtr leaderboard` integrity: nothing is lost, rows are bound to their data, score paths stay home.

Each test is one finding of issue 10, reproduced the way a user (or someone gaming the board) would.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from dvtr_bench.cli import cli
from dvtr_bench.errors import InputError
from dvtr_bench.leaderboard import collect
from dvtr_bench.leaderboard.example import make_example_records
from dvtr_bench.protocol.record import build_record, collect_cost, write_record
from dvtr_bench.protocol.scores import load_scores, save_scores

EXIT_VERIFY, EXIT_DUPLICATES, EXIT_REJECTED = 1, 3, 4


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("good")
    make_example_records(d, n_clips=40)
    return d


@pytest.fixture()
def good(good_dir: Path, tmp_path: Path) -> Path:
    """A private copy of six honest, verified records that a test may edit."""
    d = tmp_path / "records"
    shutil.copytree(good_dir, d)
    return d


def _cli(*args: str) -> Result:
    r = CliRunner().invoke(cli, ["leaderboard", *args])
    # Never a traceback: click turns exit codes into SystemExit, anything else is a crash.
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r


def _rec(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _put(path: Path, rec: dict[str, Any] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rec if isinstance(rec, str) else json.dumps(rec, indent=2))
    return path


def _copy_run(good: Path, src: str, dst: str) -> Path:
    shutil.copytree(good / src, good / dst)
    return good / dst / "record.json"


def _excluded(col: Any) -> dict[str, Any]:
    return {Path(x.path).parent.name: x for x in col.exclusions}


def _methods(col: Any) -> list[str]:
    return [e.record["method"] for g in col.groups for e in g.entries]


# ------------------------------------------------------------------------------------ nothing is lost
def test_truncated_and_nan_records_are_rejected_not_skipped(good: Path, tmp_path: Path) -> None:
    text = (good / "01-meanP" / "record.json").read_text()
    _put(good / "60-truncated" / "record.json", text[: len(text) // 2])
    _put(good / "61-nan" / "record.json", text.replace('"t2v_r1": ', '"t2v_r1": NaN, "x": ', 1))
    col = collect([good], verify=True)
    ex = _excluded(col)
    assert ex["60-truncated"].kind == "unreadable" and "not valid JSON" in ex["60-truncated"].reason
    assert ex["61-nan"].kind == "unreadable" and "NaN" in ex["61-nan"].reason
    r = _cli(str(good), "--out", str(tmp_path / "t"), "--verify", "--format", "md")
    assert r.exit_code == EXIT_REJECTED, r.output
    assert "60-truncated" in r.output and "61-nan" in r.output and "rejected" in r.output
    index = (tmp_path / "t" / "index.md").read_text()
    assert "60-truncated" in index and "61-nan" in index


def test_dangling_symlink_record_is_listed(good: Path, tmp_path: Path) -> None:
    (good / "62-gone").mkdir()
    os.symlink(good / "62-gone" / "nowhere.json", good / "62-gone" / "record.json")
    col = collect([good])
    ex = _excluded(col)
    assert ex["62-gone"].kind == "symlink" and "dangling" in ex["62-gone"].reason
    assert _cli(str(good), "--out", str(tmp_path / "t"), "--format", "md").exit_code == EXIT_REJECTED


def test_symlinked_record_in_a_folder_is_not_silently_merged(good: Path) -> None:
    (good / "63-link").mkdir()
    os.symlink(good / "01-meanP" / "record.json", good / "63-link" / "record.json")
    ex = _excluded(collect([good]))
    assert ex["63-link"].kind == "symlink" and "symbolic link" in ex["63-link"].reason


@pytest.mark.parametrize("edit, expect", [
    (lambda r: r["cost"].__setitem__("parameters", 10 ** 400), "integer"),
    (lambda r: r["cost"].__setitem__("gflops_per_clip", "1e400"), "finite"),
    (lambda r: r.__setitem__("extra", "DEEP"), "nested"),
])
def test_hostile_numbers_and_depths_are_rejected_without_a_crash(good: Path, tmp_path: Path, edit: Any,
                                                                 expect: str) -> None:
    path = _copy_run(good, "01-meanP", "64-hostile")
    rec = _rec(path)
    rec["method"] = "hostile"
    edit(rec)
    text = json.dumps(rec, indent=2)
    # json.dumps cannot write these, so put them in the text the way a hand edit would.
    text = text.replace('"1e400"', "1e400").replace('"DEEP"', "[" * 200_000 + "]" * 200_000)
    _put(path, text)
    col = collect([good], verify=True)
    ex = _excluded(col)
    assert ex["64-hostile"].kind in ("unreadable", "invalid") and expect in ex["64-hostile"].reason
    assert "hostile" not in _methods(col)
    r = _cli(str(good), "--out", str(tmp_path / "t"), "--verify")
    assert r.exit_code == EXIT_REJECTED, r.output
    assert "inf" not in (tmp_path / "t" / "index.md").read_text().replace("info", "")


def test_rejections_have_their_own_exit_code(good: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "t")
    assert _cli(str(good), "--out", out, "--verify", "--format", "md").exit_code == 0
    shutil.copytree(good / "01-meanP", good / "65-dup")                           # the same run twice
    assert _cli(str(good), "--out", out, "--verify", "--format", "md").exit_code == EXIT_DUPLICATES
    rec = _rec(good / "02-seqTransf" / "record.json")
    del rec["cost"]
    _put(good / "66-invalid" / "record.json", rec)
    assert _cli(str(good), "--out", out, "--verify", "--format", "md").exit_code == EXIT_REJECTED
    edited = _copy_run(good, "03-X-Pool", "67-edited")
    rec = _rec(edited)
    rec["method"] = "edited"
    for run in rec["runs"]:
        run["metrics"]["t2v_r1"] += 1.0
        run["metrics"]["rsum"] += 1.0
        run["metrics"]["mr"] = run["metrics"]["rsum"] / 6
    for k in ("t2v_r1", "rsum", "mr"):
        rec["summary"]["mean"][k] = float(np.mean([r["metrics"][k] for r in rec["runs"]]))
    _put(edited, rec)
    # A record that disagrees with its scores outranks the other outcomes: it is what --verify is for.
    assert _cli(str(good), "--out", out, "--verify", "--format", "md").exit_code == EXIT_VERIFY


# ---------------------------------------------------------------------------- a row is bound to its data
def _cheat_scores(n_captions: int, n_clips: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    c2c = np.arange(n_captions) % n_clips
    s = rng.standard_normal((n_captions, n_clips)).astype(np.float32)
    s[np.arange(n_captions), c2c] += 6.0                 # near-perfect: it would rank first
    return s, c2c


def test_record_scored_on_other_clips_cannot_claim_a_groups_fingerprint(good: Path) -> None:
    honest = _rec(good / "01-meanP" / "record.json")
    n_caps, n_clips = honest["dataset"]["n_captions"], honest["dataset"]["n_clips"]
    run = good / "70-cheat"
    files = {}
    for seed in (0, 1, 2):
        s, c2c = _cheat_scores(n_caps, n_clips, seed)
        files[seed] = run / f"scores_seed{seed}.npz"
        save_scores(files[seed], s, c2c, [f"other_clip_{i}" for i in range(n_clips)])
    rec = build_record(method="cheat", config={}, dataset=honest["dataset"], backbone=honest["backbone"],
                       score_files=files, record_path=run / "record.json", transductive=False,
                       zero_shot=False, checkpoint_selection="validation",
                       cost=collect_cost(None, None, None, None, None))
    write_record(rec, run / "record.json")
    col = collect([good], verify=True)
    assert "cheat" not in _methods(col)
    ex = _excluded(col)["70-cheat"]
    assert ex.kind == "binding" and "clips" in ex.reason


def test_edited_fingerprint_is_rejected_not_regrouped(good: Path) -> None:
    path = _copy_run(good, "01-meanP", "71-moved")
    rec = _rec(path)
    rec["method"] = "moved"
    rec["dataset"]["fingerprint"] = "0" * 64
    _put(path, rec)
    col = collect([good], verify=True)
    assert [g.fingerprint for g in col.groups if g.fingerprint == "0" * 64] == []
    ex = _excluded(col)["71-moved"]
    assert ex.kind == "binding" and "fingerprint" in ex.reason


def test_bound_score_file_carries_ids_and_caption_hash(tmp_path: Path) -> None:
    from dvtr_bench.protocol.fingerprint import fingerprint_from_digests

    s, c2c = _cheat_scores(6, 3, 0)
    digests = [f"{i:064x}" for i in range(3)]
    save_scores(tmp_path / "s.npz", s, c2c, ["a", "b", "c"], caption_texts=[f"t{i}" for i in range(6)],
                clip_digests=digests)
    sf = load_scores(tmp_path / "s.npz")
    assert sf.bound and sf.fingerprint == fingerprint_from_digests(["a", "b", "c"], digests)
    assert sf.caption_ids == ["a#0", "b#0", "c#0", "a#1", "b#1", "c#1"]
    assert len(sf.captions_sha256) == 64
    with pytest.raises(InputError, match="fingerprint"):
        build_record(method="m", config={}, dataset={"name": "d", "fingerprint": "1" * 64},
                     backbone={"name": "b", "pretrained": None}, score_files={0: tmp_path / "s.npz"},
                     record_path=tmp_path / "record.json", transductive=False, zero_shot=True,
                     checkpoint_selection="none", cost=collect_cost(None, None, None, None, None))


def test_uncaptioned_clip_count_is_verified(good: Path) -> None:
    path = _copy_run(good, "01-meanP", "72-uncaptioned")
    rec = _rec(path)
    rec["method"] = "uncaptioned"
    rec["dataset"]["n_uncaptioned_clips"] = 3
    _put(path, rec)
    ex = _excluded(collect([good], verify=True))["72-uncaptioned"]
    assert ex.kind == "verify" and "n_uncaptioned_clips" in ex.reason


def test_one_score_file_cannot_stand_for_several_seeds(good: Path) -> None:
    run = good / "01-meanP"
    with pytest.raises(InputError, match="identical"):
        build_record(method="meanP", config={}, dataset=_rec(run / "record.json")["dataset"],
                     backbone={"name": "b", "pretrained": None},
                     score_files={s: run / "scores_seed0.npz" for s in (0, 1, 2)},
                     record_path=run / "record2.json", transductive=False, zero_shot=False,
                     checkpoint_selection="validation", cost=collect_cost(None, None, None, None, None))
    # The same file copied under three names, and a record edited to list it three times.
    path = _copy_run(good, "01-meanP", "73-one-file")
    for s in (1, 2):
        shutil.copy(path.parent / "scores_seed0.npz", path.parent / f"scores_seed{s}.npz")
    rec = _rec(path)
    rec["method"] = "one-file"
    for run_ in rec["runs"]:
        run_["metrics"] = dict(rec["runs"][0]["metrics"])
        run_["scores"]["sha256"] = rec["runs"][0]["scores"]["sha256"]
    rec["summary"]["mean"] = dict(rec["runs"][0]["metrics"])
    rec["summary"]["std"] = {k: 0.0 for k in rec["summary"]["mean"]}
    _put(path, rec)
    col = collect([good], verify=True)
    assert "one-file" not in _methods(col)
    ex = _excluded(col)["73-one-file"]
    assert ex.kind == "invalid" and "identical" in ex.reason


# -------------------------------------------------------------------------------------- paths stay home
@pytest.mark.parametrize("how, expect", [
    ("dotdot", "outside"),
    ("absolute", "relative"),
    ("symlink_file", "symbolic link"),
    ("symlink_dir", "symbolic link"),
])
def test_score_paths_stay_in_the_record_folder(good: Path, how: str, expect: str) -> None:
    src = good / "02-seqTransf" / "scores_seed0.npz"          # a valid file with the recorded sha256
    path = _copy_run(good, "02-seqTransf", f"74-{how}")
    rec = _rec(path)
    rec["method"] = f"borrow-{how}"
    run_dir = path.parent
    if how == "dotdot":
        rec["runs"][0]["scores"]["path"] = "../02-seqTransf/scores_seed0.npz"
        (run_dir / "scores_seed0.npz").unlink()
    elif how == "absolute":
        rec["runs"][0]["scores"]["path"] = str(src.resolve())
        (run_dir / "scores_seed0.npz").unlink()
    elif how == "symlink_file":
        (run_dir / "scores_seed0.npz").unlink()
        os.symlink(src.resolve(), run_dir / "scores_seed0.npz")
    else:
        os.symlink((good / "02-seqTransf").resolve(), run_dir / "borrowed")
        rec["runs"][0]["scores"]["path"] = "borrowed/scores_seed0.npz"
    _put(path, rec)
    col = collect([good], verify=True)
    assert f"borrow-{how}" not in _methods(col)
    ex = _excluded(col)[f"74-{how}"]
    assert ex.kind in ("invalid", "unsafe") and expect in ex.reason


def test_non_npz_score_file_gets_a_plain_error(tmp_path: Path) -> None:
    (tmp_path / "text.npz").write_text("hello, I am not a score file\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "objects.npy").rename(tmp_path / "objects.npz")
    # A real zip archive holding an object array, as np.savez writes one.
    np.savez(tmp_path / "zipped.npz", scores=np.array([{"a": 1}], dtype=object))
    for name in ("text.npz", "objects.npz", "zipped.npz"):
        with pytest.raises(InputError) as info:
            load_scores(tmp_path / name)
        msg = str(info.value)
        assert "not a score file" in msg and "pickle" not in msg and "unsafe" not in msg


def test_record_pointing_at_a_non_npz_file_is_explained(good: Path) -> None:
    path = _copy_run(good, "02-seqTransf", "75-json")
    rec = _rec(path)
    rec["method"] = "json-scores"
    import hashlib

    rec["runs"][0]["scores"] = {"path": "run.txt",
                                "sha256": hashlib.sha256(b"not scores\n").hexdigest()}
    (path.parent / "run.txt").write_bytes(b"not scores\n")
    _put(path, rec)
    ex = _excluded(collect([good], verify=True))["75-json"]
    assert "not a score file" in ex.reason and "pickle" not in ex.reason
