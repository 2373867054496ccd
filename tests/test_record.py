"""Score files, dataset fingerprints and result records."""

from __future__ import annotations

import copy
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dvtr_bench.errors import InputError
from dvtr_bench.protocol.metrics import compute_metrics
from dvtr_bench.protocol.record import (build_record, collect_cost, read_record, recompute_metrics,
                                        record_schema, validate_record, write_record)
from dvtr_bench.protocol.scores import load_scores, save_scores

FP = "ab" * 32


def _scores(seed: int, n_clips: int = 12, caps: int = 3, signal: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c2c = np.repeat(np.arange(n_clips), caps)
    s = rng.standard_normal((c2c.size, n_clips)).astype(np.float32)
    s[np.arange(c2c.size), c2c] += signal
    return s, c2c


def _clip_ids(n: int) -> list[str]:
    return [f"flight_000_take_{i:02d}" for i in range(n)]


def _make_record(tmp_path: Path, seeds=(0, 1, 2), **kw) -> tuple[dict, Path]:
    files = {}
    for seed in seeds:
        s, c2c = _scores(seed)
        files[seed] = tmp_path / "run" / f"scores_seed{seed}.npz"
        save_scores(files[seed], s, c2c, _clip_ids(s.shape[1]))
    args = dict(method="meanP", config={"train": {"lr": 1e-4}}, dataset={"name": "synth", "fingerprint": FP},
                backbone={"name": "dvtr-tiny", "pretrained": None}, score_files=files,
                record_path=tmp_path / "run" / "record.json", transductive=False, zero_shot=False,
                checkpoint_selection="validation",
                cost=collect_cost(parameters=1000, gflops_per_clip=None, eval_clips_per_s=50.0,
                                  train_time_s=10.0, peak_memory_mb=200.0),
                created_at="2026-01-01T00:00:00Z")
    args.update(kw)
    rec = build_record(**args)
    path = write_record(rec, tmp_path / "run" / "record.json")
    return rec, path


# ------------------------------------------------------------------------------------------------ scores
def test_save_scores_is_deterministic_and_roundtrips(tmp_path: Path) -> None:
    s, c2c = _scores(0)
    ids = _clip_ids(s.shape[1])
    h1 = save_scores(tmp_path / "a.npz", s, c2c, ids, caption_ids=[f"q{i}" for i in range(len(c2c))])
    time.sleep(1.1)  # zip timestamps have 2 s resolution; the fixed date must make this irrelevant anyway
    h2 = save_scores(tmp_path / "b.npz", s, c2c, ids, caption_ids=[f"q{i}" for i in range(len(c2c))])
    assert h1 == h2
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    for mmap in (False, True):
        sf = load_scores(tmp_path / "a.npz", expected_sha256=h1, mmap=mmap)
        assert sf.sha256 == h1 and sf.scores.dtype == np.float32
        assert np.array_equal(sf.scores, s) and np.array_equal(sf.caption_to_clip, c2c)
        assert sf.clip_ids == ids and sf.caption_ids[3] == "q3" and sf.caption_texts is None
    assert isinstance(load_scores(tmp_path / "a.npz", mmap=True).scores, np.memmap)
    # Plain numpy can read it, without pickle.
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert np.array_equal(z["scores"], s)


def test_scores_change_changes_hash_and_sha_mismatch_is_refused(tmp_path: Path) -> None:
    s, c2c = _scores(0)
    h1 = save_scores(tmp_path / "a.npz", s, c2c, _clip_ids(s.shape[1]))
    s2 = s.copy()
    s2[0, 0] = np.nextafter(s2[0, 0], np.float32(10))
    h2 = save_scores(tmp_path / "a.npz", s2, c2c, _clip_ids(s.shape[1]))
    assert h1 != h2
    with pytest.raises(InputError, match="sha256 mismatch"):
        load_scores(tmp_path / "a.npz", expected_sha256=h1)


def test_save_scores_rejects_bad_input(tmp_path: Path) -> None:
    s, c2c = _scores(0)
    with pytest.raises(ValueError, match=r"scores\[1, 2\]"):
        bad = s.copy()
        bad[1, 2] = np.nan
        save_scores(tmp_path / "x.npz", bad, c2c, _clip_ids(s.shape[1]))
    with pytest.raises(ValueError, match="clip_ids"):
        save_scores(tmp_path / "x.npz", s, c2c, _clip_ids(3))
    with pytest.raises(ValueError, match="unique"):
        save_scores(tmp_path / "x.npz", s, c2c, ["same"] * s.shape[1])
    with pytest.raises(ValueError, match="caption_to_clip"):
        save_scores(tmp_path / "x.npz", s, c2c[:-1], _clip_ids(s.shape[1]))
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(InputError, match="not found"):
        load_scores(tmp_path / "x.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a score file"):
        load_scores(tmp_path / "junk.npz")


# ------------------------------------------------------------------------------------------- fingerprint
def _jpeg(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _dataset(n: int = 4, captions_of=lambda i: [f"a road {i}", "trees"], frame_value=lambda i, k: 10 * i + k):
    import datasets

    from dvtr_bench.dataset.schema import clip_features

    rows = [dict(clip_id=f"c{i}", video_id="flight_000", split="test", start_s=0.0, end_s=1.0, fps=25.0,
                 width=8, height=8, captions=captions_of(i),
                 frames=[{"bytes": _jpeg(frame_value(i, k)), "path": None} for k in range(3)],
                 frame_times_s=[0.1, 0.5, 0.9], segmenter="shots", segmenter_params="{}", label=None,
                 clip_path=None, meta=None, telemetry=None) for i in range(n)]
    return datasets.Dataset.from_list(rows, features=clip_features())


def test_fingerprint_content_sensitive_order_insensitive() -> None:
    from dvtr_bench.protocol.fingerprint import dataset_fingerprint

    ds = _dataset()
    fp = dataset_fingerprint(ds)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert dataset_fingerprint(ds.select([3, 1, 0, 2])) == fp          # row order does not matter
    assert dataset_fingerprint(ds, batch_size=1) == fp
    assert dataset_fingerprint(_dataset(captions_of=lambda i: [f"a road {i}", "tree"])) != fp
    assert dataset_fingerprint(_dataset(frame_value=lambda i, k: 10 * i + k + (i == 2 and k == 1) * 40)) != fp
    assert dataset_fingerprint(_dataset(n=3)) != fp


def test_fingerprint_errors() -> None:
    import datasets

    from dvtr_bench.protocol.fingerprint import dataset_fingerprint

    ds = _dataset()
    with pytest.raises(TypeError, match="DatasetDict"):
        dataset_fingerprint(datasets.DatasetDict({"test": ds}))
    with pytest.raises(InputError, match="duplicate clip_id"):
        dataset_fingerprint(datasets.concatenate_datasets([ds, ds.select([0])]))
    with pytest.raises(InputError, match="lacks columns"):
        dataset_fingerprint(ds.remove_columns(["frames"]))


def test_fingerprint_does_not_decode_frames() -> None:
    import datasets

    from dvtr_bench.dataset.schema import clip_features
    from dvtr_bench.protocol.fingerprint import dataset_fingerprint

    row = dict(clip_id="c0", video_id="v", split="test", start_s=0.0, end_s=1.0, fps=25.0, width=8, height=8,
               captions=["x"], frames=[{"bytes": b"not a jpeg at all", "path": None}], frame_times_s=[0.5],
               segmenter="s", segmenter_params="{}", label=None, clip_path=None, meta=None, telemetry=None)
    ds = datasets.Dataset.from_list([row], features=clip_features())
    assert len(dataset_fingerprint(ds)) == 64


# ---------------------------------------------------------------------------------------------- records
def test_build_record_gets_metrics_from_the_engine(tmp_path: Path) -> None:
    rec, path = _make_record(tmp_path)
    assert validate_record(rec) == []
    assert read_record(path) == rec
    for run in rec["runs"]:
        s, c2c = _scores(run["seed"])
        assert run["metrics"] == compute_metrics(s, c2c)
        assert run["scores"]["path"] == f"scores_seed{run['seed']}.npz"    # relative to the record
    assert rec["summary"]["n_seeds"] == 3
    assert rec["summary"]["mean"]["rsum"] == pytest.approx(np.mean([r["metrics"]["rsum"] for r in rec["runs"]]))
    assert rec["summary"]["std"]["t2v_r1"] == pytest.approx(np.std([r["metrics"]["t2v_r1"] for r in rec["runs"]],
                                                                    ddof=1))
    assert rec["dataset"] == {"name": "synth", "fingerprint": FP, "split": "test", "n_clips": 12,
                              "n_captions": 36, "n_uncaptioned_clips": 0}
    assert rec["cost"]["packages"]["numpy"] == np.__version__
    assert recompute_metrics(rec, path) == []


def test_single_seed_has_null_std(tmp_path: Path) -> None:
    rec, _ = _make_record(tmp_path, seeds=(0,), zero_shot=True, checkpoint_selection="none")
    assert rec["summary"]["std"] is None
    assert rec["summary"]["mean"] == rec["runs"][0]["metrics"]


def test_build_record_refuses_inconsistent_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="zero-shot"):
        _make_record(tmp_path, zero_shot=True)                       # zero-shot with validation selection
    with pytest.raises(InputError, match="reranking"):
        _make_record(tmp_path, reranked=True)
    with pytest.raises(InputError, match="checkpoint_selection"):
        _make_record(tmp_path, checkpoint_selection="test")          # the test split is not selectable
    with pytest.raises(InputError, match="n_clips"):
        _make_record(tmp_path, dataset={"name": "synth", "fingerprint": FP, "n_clips": 99})
    # Seeds scored on different clips cannot share a record.
    s, c2c = _scores(0)
    other = tmp_path / "run" / "other.npz"
    save_scores(other, s, c2c, [f"x{i}" for i in range(s.shape[1])])
    files = {}
    for seed in (0, 1):
        files[seed] = tmp_path / "run" / f"s{seed}.npz"
        save_scores(files[seed], *_scores(seed), _clip_ids(12))
    files[2] = other
    with pytest.raises(InputError, match="different captions or clips"):
        _make_record(tmp_path, score_files=files)


def test_validate_record_reports_every_problem(tmp_path: Path) -> None:
    rec, _ = _make_record(tmp_path)
    assert validate_record({"schema_version": 2}) != []
    bad = copy.deepcopy(rec)
    bad["dataset"]["fingerprint"] = "xyz"
    del bad["cost"]["hardware"]
    bad["surprise"] = 1
    problems = validate_record(bad)
    assert any("dataset.fingerprint" in p for p in problems)
    assert any("hardware" in p for p in problems)
    assert any("surprise" in p for p in problems)

    bad = copy.deepcopy(rec)
    bad["runs"][1]["metrics"]["t2v_r1"] -= 1.0
    problems = validate_record(bad)
    assert any("runs[1].metrics.rsum" in p for p in problems)
    assert any("summary.mean.t2v_r1" in p for p in problems)

    bad = copy.deepcopy(rec)
    bad["config"]["train"]["lr"] = 1.0
    assert any("config_hash" in p for p in validate_record(bad))
    bad = copy.deepcopy(rec)
    bad["seeds"] = [0, 1, 5]
    assert any(p.startswith("seeds") for p in validate_record(bad))
    bad = copy.deepcopy(rec)
    bad["protocol_version"] = "7"
    assert any("not known" in p for p in validate_record(bad))


def test_write_record_refuses_invalid(tmp_path: Path) -> None:
    rec, _ = _make_record(tmp_path)
    rec["method"] = ""
    with pytest.raises(InputError, match="method"):
        write_record(rec, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_read_record_errors(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_record(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        read_record(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"x": NaN}')
    with pytest.raises(InputError, match="NaN"):
        read_record(tmp_path / "c.json")
    with pytest.raises(InputError, match="cannot read"):
        read_record(tmp_path / "missing.json")


def test_recompute_catches_edits_and_missing_files(tmp_path: Path) -> None:
    rec, path = _make_record(tmp_path)
    edited = copy.deepcopy(rec)
    edited["runs"][2]["metrics"]["t2v_medr"] = 1.0 if rec["runs"][2]["metrics"]["t2v_medr"] != 1.0 else 2.0
    problems = recompute_metrics(edited, path)
    assert len(problems) == 1 and "runs[2] (seed 2) t2v_medr" in problems[0]
    # A replaced score file fails its sha256.
    s, c2c = _scores(9)
    save_scores(tmp_path / "run" / "scores_seed1.npz", s, c2c, _clip_ids(12))
    assert any("sha256 mismatch" in p for p in recompute_metrics(rec, path))
    (tmp_path / "run" / "scores_seed0.npz").unlink()
    assert any("not found" in p for p in recompute_metrics(rec, path))


def test_schema_is_valid_json_schema() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(record_schema())
    assert json.loads(json.dumps(record_schema()))["properties"]["schema_version"]["const"] == 1


# --------------------------------------------------------------------------- score files bound to their data
def test_score_file_carries_caption_ids_hash_and_clip_digests(tmp_path: Path) -> None:
    from dvtr_bench.protocol.fingerprint import fingerprint_from_digests, row_digest
    from dvtr_bench.protocol.scores import captions_sha256

    s, c2c = _scores(0, n_clips=3, caps=2)
    ids = ["a", "b", "c"]
    texts = [f"caption {k}" for k in range(6)]
    digests = [row_digest(c, [], []) for c in ids]
    save_scores(tmp_path / "s.npz", s, c2c, ids, caption_texts=texts, clip_digests=digests)
    sf = load_scores(tmp_path / "s.npz", mmap=True)
    assert sf.format_version == 2 and sf.bound
    assert sf.caption_ids == ["a#0", "a#1", "b#0", "b#1", "c#0", "c#1"]       # the engine's ids by default
    assert sf.captions_sha256 == captions_sha256(texts) and sf.clip_digests == digests
    assert sf.fingerprint == fingerprint_from_digests(ids, digests)
    assert fingerprint_from_digests(ids[::-1], digests[::-1]) == sf.fingerprint   # order does not matter
    # Without the texts (e.g. for their license) the hash still binds the captions.
    save_scores(tmp_path / "h.npz", s, c2c, ids, captions_hash=captions_sha256(texts), clip_digests=digests)
    sf = load_scores(tmp_path / "h.npz")
    assert sf.caption_texts is None and sf.captions_sha256 == captions_sha256(texts) and sf.bound
    unbound = load_scores(tmp_path / "u.npz") if save_scores(tmp_path / "u.npz", s, c2c, ids) else None
    assert unbound is not None and not unbound.bound and unbound.fingerprint is None
    with pytest.raises(ValueError, match="captions_hash"):
        save_scores(tmp_path / "x.npz", s, c2c, ids, caption_texts=texts, captions_hash="0" * 64)
    with pytest.raises(ValueError, match="clip_digests"):
        save_scores(tmp_path / "x.npz", s, c2c, ids, clip_digests=["nope"] * 3)


def test_version_1_score_files_are_still_read(tmp_path: Path) -> None:
    """The committed leaderboard holds score files of format 1 (no caption hash, no digests)."""
    root = Path(__file__).resolve().parents[1] / "leaderboard" / "results"
    files = sorted(root.rglob("scores_seed*.npz"))
    assert files
    for f in files:
        sf = load_scores(f, mmap=True)
        if sf.format_version == 1:
            assert not sf.bound and sf.fingerprint is None
            assert sf.caption_texts is not None and len(sf.captions_sha256) == 64


def test_score_files_are_read_without_pickle_and_explained(tmp_path: Path) -> None:
    (tmp_path / "text.npz").write_text("hello, I am not a score file\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "objects.npy").rename(tmp_path / "objects.npz")
    np.savez(tmp_path / "zipped.npz", scores=np.array([{"a": 1}], dtype=object))
    np.savez_compressed(tmp_path / "compressed.npz", scores=np.zeros((2, 2)))
    s, c2c = _scores(0)
    save_scores(tmp_path / "good.npz", s, c2c, _clip_ids(12))
    with zipfile.ZipFile(tmp_path / "extra.npz", "w") as zf:
        zf.writestr("scores.npy", (tmp_path / "good.npz").read_bytes()[:10])
        zf.writestr("evil.py", "print(1)")
    for name in ("text.npz", "objects.npz", "zipped.npz", "compressed.npz", "extra.npz"):
        with pytest.raises(InputError) as info:
            load_scores(tmp_path / name)
        msg = str(info.value).replace(str(tmp_path), "")
        assert "not a score file" in msg and "pickle" not in msg and "unsafe" not in msg, msg


# ------------------------------------------------------------------------------------------ record reader
@pytest.mark.parametrize("text, expect", [
    ('{"a": 1e400}', "not finite"),
    ('{"a": -1e400}', "not finite"),
    ('{"a": NaN}', "NaN"),
    ('{"a": Infinity}', "Infinity"),
    ('{"a": ' + "9" * 400 + "}", "beyond"),
    ('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}", "nested"),
    ('{"a": "' + "[" * 200_000 + '"}', None),          # brackets inside a string are text, not depth
    ("\ufeff{}", "not valid JSON"),
])
def test_read_record_bounds(tmp_path: Path, text: str, expect: str | None) -> None:
    p = tmp_path / "r.json"
    p.write_text(text, encoding="utf-8")
    if expect is None:
        assert isinstance(read_record(p), dict)
        return
    with pytest.raises(InputError, match=expect):
        read_record(p)


def test_read_record_refuses_bytes_and_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dvtr_bench.protocol import record as R

    (tmp_path / "latin1.json").write_bytes(b'{"method": "caf\xe9"}')
    with pytest.raises(InputError, match="UTF-8"):
        read_record(tmp_path / "latin1.json")
    monkeypatch.setattr(R, "MAX_RECORD_BYTES", 100)
    (tmp_path / "big.json").write_text('{"a": "' + "x" * 200 + '"}')
    with pytest.raises(InputError, match="larger than"):
        read_record(tmp_path / "big.json")


def test_validate_record_refuses_values_json_cannot_hold(tmp_path: Path) -> None:
    rec, _ = _make_record(tmp_path)
    for edit, expect in ((lambda r: r["cost"].__setitem__("parameters", 10 ** 400), "beyond"),
                         (lambda r: r["cost"].__setitem__("gflops_per_clip", float("inf")), "finite"),
                         (lambda r: r.__setitem__("notes", "\ud800"), "surrogate"),
                         (lambda r: r["extra"].__setitem__("x", (1, 2)) if "extra" in r else
                          r.__setitem__("extra", {"x": {1, 2}}), "not a JSON value")):
        bad = copy.deepcopy(rec)
        edit(bad)
        problems = validate_record(bad)
        assert any(expect in p for p in problems), problems
    deep: dict = {}
    node = deep
    for _ in range(200_000):
        node["x"] = {}
        node = node["x"]
    bad = copy.deepcopy(rec)
    bad["extra"] = deep
    assert any("nested" in p for p in validate_record(bad))
    bad = copy.deepcopy(rec)
    bad["dataset"]["n_uncaptioned_clips"] = 13
    assert any("n_uncaptioned_clips" in p for p in validate_record(bad))


@pytest.mark.parametrize("path, expect", [
    ("../other/scores_seed0.npz", "outside"),
    ("/abs/scores_seed0.npz", "absolute"),
    ("C:/x.npz", "absolute"),
    ("a\\b.npz", "'/'"),
    ("./scores_seed0.npz", "normalised"),
    ("a//b.npz", "normalised"),
])
def test_validate_record_keeps_score_paths_in_the_folder(tmp_path: Path, path: str, expect: str) -> None:
    rec, _ = _make_record(tmp_path)
    rec["runs"][1]["scores"]["path"] = path
    assert any("runs[1].scores.path" in p and expect in p for p in validate_record(rec)), validate_record(rec)


def test_validate_record_refuses_one_score_file_for_several_seeds(tmp_path: Path) -> None:
    rec, _ = _make_record(tmp_path)
    same_path = copy.deepcopy(rec)
    same_path["runs"][2]["scores"] = dict(rec["runs"][0]["scores"])
    assert any("identical" in p for p in validate_record(same_path))
    same_hash = copy.deepcopy(rec)
    same_hash["runs"][2]["scores"]["sha256"] = rec["runs"][0]["scores"]["sha256"]
    assert any("identical" in p for p in validate_record(same_hash))


def test_build_record_keeps_runs_distinct_at_home_and_bound(tmp_path: Path) -> None:
    from dvtr_bench.protocol.fingerprint import fingerprint_from_digests

    s, c2c = _scores(0)
    f0 = tmp_path / "run" / "scores_seed0.npz"
    save_scores(f0, s, c2c, _clip_ids(12))
    with pytest.raises(InputError, match="identical"):
        _make_record(tmp_path, score_files={0: f0, 1: f0})
    copy_ = tmp_path / "run" / "copy.npz"
    copy_.write_bytes(f0.read_bytes())
    with pytest.raises(InputError, match="identical"):
        _make_record(tmp_path, score_files={0: f0, 1: copy_})
    outside = tmp_path / "elsewhere.npz"
    save_scores(outside, *_scores(1), _clip_ids(12))
    with pytest.raises(InputError, match="outside the record's folder"):
        _make_record(tmp_path, score_files={0: f0, 1: outside})
    link = tmp_path / "run" / "link.npz"
    link.symlink_to(outside)
    with pytest.raises(InputError, match="symbolic link"):
        _make_record(tmp_path, score_files={0: f0, 1: link})
    digests = [f"{i:064x}" for i in range(12)]
    bound = tmp_path / "run" / "bound.npz"
    save_scores(bound, *_scores(2), _clip_ids(12), clip_digests=digests)
    with pytest.raises(InputError, match="fingerprint"):
        _make_record(tmp_path, score_files={0: bound})                  # FP is not this split's
    rec, _ = _make_record(tmp_path, score_files={0: bound}, zero_shot=True, checkpoint_selection="none",
                          dataset={"name": "s", "fingerprint": fingerprint_from_digests(_clip_ids(12), digests)})
    assert rec["runs"][0]["scores"]["path"] == "bound.npz"


def test_score_file_members_are_numpys_bytes_without_its_copy(tmp_path):
    # The score matrix is written as rows passed as buffers: the same bytes as np.lib.format.write_array (so
    # every score file, and its sha256, is unchanged), without numpy's up-to-16 MiB copy of the matrix.
    import tracemalloc

    from dvtr_bench.protocol.scores import _write_npy

    rng = np.random.default_rng(0)
    for a in (rng.standard_normal((200, 2000), dtype=np.float32), rng.standard_normal((3, 7)),
              np.arange(5, dtype=np.int64), np.zeros((0, 4), np.float32), np.array(["a", "bcd"]),
              np.array(3, dtype=np.int64), rng.standard_normal((4, 5)).T, np.ones((2, 3, 4), np.uint8)):
        ref, got = io.BytesIO(), io.BytesIO()
        np.lib.format.write_array(ref, a, allow_pickle=False)
        _write_npy(got, a, block_bytes=1000)
        assert got.getvalue() == ref.getvalue(), (a.shape, a.dtype)
    scores = rng.standard_normal((2000, 2000), dtype=np.float32)
    c2c = np.arange(2000)
    ids = [f"c{i:06d}" for i in range(2000)]
    tracemalloc.start()
    try:
        save_scores(tmp_path / "s.npz", scores, c2c, ids)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # what remains is the finiteness check's boolean chunk (1 byte per score, at most 16 Mi)
    assert peak < scores.nbytes / 2, f"{peak / 2**20:.1f} MiB to write a {scores.nbytes / 2**20:.1f} MiB matrix"
    assert np.array_equal(load_scores(tmp_path / "s.npz").scores, scores)
