"""`dvtr index` and `dvtr search`: an index ranks clips as its method does, re-ranks when the method's score is not a
dot product, indexes raw footage through the build pipeline, and refuses bad input with exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.errors import InputError
from dvtr_bench.search import index as I
from dvtr_bench.search.build import build_index
from dvtr_bench.search.frames import telemetry_of, thumbnail_strip
from dvtr_bench.search.model import load_run, load_zero_shot
from dvtr_bench.search.query import Searcher

QUERY = "a red square moving left over grey ground"


def invoke(*args: str):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    res.text = " ".join(res.output.split())    # rich wraps long lines at the terminal width
    return res


def exhaustive_ranking(model, dataset_dir: Path, split: str, query: str) -> tuple[list[str], np.ndarray]:
    """Every clip of ``split`` scored by the method itself (what the evaluation runner does), best first."""
    from dvtr_bench.engine.data import Captions, FrameSource
    from dvtr_bench.engine.evaluate import encode_clips
    from dvtr_bench.dataset.hub import open_dataset

    m = model.method
    ds = open_dataset(dataset_dir)[split]
    src = FrameSource(ds, m.frame_spec)
    video = encode_clips(m, src, range(len(ds)), torch.device("cpu"), 8)
    with torch.no_grad():
        s = m.score(m.encode_text(m.tokenize([query])), video)[0].numpy()
    order = np.lexsort((np.arange(len(s)), -s))
    ids = Captions.from_split(ds).clip_ids
    return [ids[i] for i in order], s[order]


@pytest.fixture(scope="module")
def meanp_index(tiny_runs, tmp_path_factory):
    ds, runs = tiny_runs
    out = tmp_path_factory.mktemp("idx") / "meanp"
    res = invoke("index", ds, "--run", runs["meanP"], "--out", out, "--device", "cpu")
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out, res.text


def test_index_of_a_dataset_holds_every_clip_and_the_model_identity(tiny_runs, meanp_index):
    ds, runs = tiny_runs
    out, output = meanp_index
    man = json.loads((out / I.MANIFEST).read_text())
    assert man["n_clips"] == 36 and man["source"]["splits"] == ["train", "validation", "test"]
    assert man["model"]["kind"] == "run" and man["model"]["method"] == "meanP" and man["model"]["seed"] == 0
    assert man["model"]["checkpoint"].endswith("seed0/best.pt") and len(man["model"]["weights_sha256"]) == 64
    assert man["scoring"]["dot_product"] is True and man["embedding_keys"] == []   # nothing to re-rank with
    vec = np.load(out / I.VECTORS)
    assert vec.shape == (36, man["dim"]) and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    with I.VectorIndex(out) as index:
        thumb = index.thumb(0)
        assert thumb[:2] == b"\xff\xd8" and index.rows[0]["thumb_frames"] == 6   # a JPEG strip per clip
        assert [r["split"] for r in index.rows].count("test") == 12
    for text in ("36 clips", "exact inner product", "ranks clips exactly as meanP does", "clips/s", "dvtr search"):
        assert text in output


def test_exact_search_ranks_clips_as_the_method_does(tiny_runs, meanp_index):
    ds, runs = tiny_runs
    model = load_run(runs["meanP"])
    ids, scores = exhaustive_ranking(model, ds, "test", QUERY)
    s = Searcher(meanp_index[0], model=model)
    # restricted to the test split's clips, the index order is the method's own order
    res = s.search(QUERY, k=36)
    test_hits = [h for h in res.hits if h.clip_id in set(ids)]
    assert [h.clip_id for h in test_hits] == ids
    np.testing.assert_allclose([h.score for h in test_hits], scores, rtol=0, atol=1e-5)
    assert res.reranked is False and res.encode_text_ms > 0 and res.search_ms >= 0
    assert [h.rank for h in res.hits] == list(range(1, 37))
    s.close()


def test_pairwise_method_is_reranked_by_its_own_score(tiny_runs, tmp_path):
    ds, runs = tiny_runs
    model = load_run(runs["xpool"])
    assert model.identity["dot_product"] is False
    res = build_index(ds, tmp_path / "x", model, splits=["test"])
    assert res.manifest["scoring"]["rerank"] is True and set(res.manifest["embedding_keys"]) == {"frames", "frame_mask"}
    assert "not a dot product" in res.manifest["scoring"]["note"]
    s = Searcher(tmp_path / "x", model=model)
    ids, scores = exhaustive_ranking(model, ds, "test", QUERY)
    # with every clip a candidate, re-ranking is the method's exhaustive ranking
    full = s.search(QUERY, k=12, candidates=12)
    assert [h.clip_id for h in full.hits] == ids
    np.testing.assert_allclose([h.score for h in full.hits], scores, rtol=0, atol=1e-5)
    short = s.search(QUERY, k=3, candidates=5)
    assert short.reranked and short.candidates == 5 and len(short.hits) == 3
    assert "the top 5 candidates" in short.scoring and "re-ranked with xpool's own score" in short.scoring
    assert [h.score for h in short.hits] == sorted((h.score for h in short.hits), reverse=True)
    s.close()


def test_approximate_indexes_find_what_exact_search_finds(tiny_runs, meanp_index, tmp_path):
    ds, runs = tiny_runs
    model = load_run(runs["meanP"])
    exact = Searcher(meanp_index[0], model=model).search(QUERY, k=5)
    res = invoke("index", ds, "--run", runs["meanP"], "--approximate", "--out", tmp_path / "ivf")
    assert res.exit_code == 0, res.output
    assert "faiss IVF" in res.text
    build_index(ds, tmp_path / "hnsw", model, kind="hnsw", hnsw_m=8, ef_construction=40, ef_search=64)
    for kind in ("ivf", "hnsw"):
        assert (tmp_path / kind / I.FAISS).is_file()
        approx = Searcher(tmp_path / kind, model=model).search(QUERY, k=5)
        assert approx.index["kind"] == kind
        # 36 clips: the IVF index has one list (every list is scanned) and the graph reaches every node
        assert [h.clip_id for h in approx.hits] == [h.clip_id for h in exact.hits]
    man = json.loads((tmp_path / "ivf" / I.MANIFEST).read_text())["search"]
    assert man == {"kind": "ivf", "metric": "inner_product", "nlist": 1, "nprobe": 1}


def test_ivf_defaults_scale_with_the_archive():
    assert I.default_nlist(36) == 1 and I.default_nlist(10_000) == 256 and I.default_nlist(100_000) == 1265
    assert I.default_nprobe(1) == 1 and I.default_nprobe(32) == 32 and I.default_nprobe(1265) == 80
    x = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = I.make_faiss(x, "ivf")
    assert index.nlist == I.default_nlist(2000) == 51 and index.ntotal == 2000


def test_search_cli_prints_the_hits_latency_and_writes_json_and_html(meanp_index, tmp_path):
    out = meanp_index[0]
    page, answer = tmp_path / "hits.html", tmp_path / "hits.json"
    res = invoke("search", out, QUERY, "-k", "4", "--html", page, "--json", answer)
    assert res.exit_code == 0, res.output + repr(res.exception)
    for text in ("top 4 of 36 clips", "query latency", "text encoding", "index 36 clips", "exact"):
        assert text in res.text
    doc = json.loads(answer.read_text())
    assert doc["query"] == QUERY and len(doc["hits"]) == 4 and doc["index"]["n_clips"] == 36
    assert {"encode_text_ms", "search_ms", "total_ms"} <= set(doc) and doc["model"]["method"] == "meanP"
    html = page.read_text()
    assert html.count('class="hit"') == 4 and "data:image/jpeg;base64," in html and "<script" not in html
    only_json = invoke("search", out, QUERY, "-k", "2", "--json", "-")
    assert only_json.exit_code == 0 and len(json.loads(only_json.stdout)["hits"]) == 2


def test_zero_shot_backbone_index(tiny_runs, tmp_path):
    ds, _ = tiny_runs
    res = invoke("index", ds, "--backbone", "dvtr-tiny", "--pretrained", "none", "--split", "test", "--out",
                 tmp_path / "zs", "--device", "cpu")
    assert res.exit_code == 0, res.output + repr(res.exception)
    man = json.loads((tmp_path / "zs" / I.MANIFEST).read_text())
    assert man["model"]["kind"] == "zero-shot" and man["model"]["pretrained"] is None and man["n_clips"] == 12
    # random weights drawn from the recorded seed: the search reloads exactly the same model
    hit = invoke("search", tmp_path / "zs", "boats", "-k", "1")
    assert hit.exit_code == 0, hit.output


@pytest.mark.slow
def test_raw_footage_is_cut_by_the_build_pipeline_and_resumes(footage, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(footage / "videos", videos)
    (videos / "flight_broken.mp4").write_bytes(b"")          # a flight that cannot be read
    out = tmp_path / "flights"
    args = ["index", videos, "--backbone", "dvtr-tiny", "--pretrained", "none", "--out", out,
            "--segmenter", "windows", "--segmenter-param", "length=2", "--workers", "1", "--device", "cpu"]
    first = invoke(*args)
    # the readable flights are indexed; the broken one is named with its reason, and the exit code says partial
    assert first.exit_code == 3, first.output + repr(first.exception)
    assert "flight_broken" in first.text and "empty file" in first.text
    (videos / "flight_broken.mp4").unlink()
    first = invoke(*args)
    assert first.exit_code == 0, first.output + repr(first.exception)
    man = json.loads((out / I.MANIFEST).read_text())
    assert man["source"]["kind"] == "footage" and man["source"]["videos"] == 3 and man["n_clips"] > 3
    assert (out / I.CLIPS / "build" / "manifest.parquet").is_file()   # the cut clips are a dataset of their own
    with I.VectorIndex(out) as index:
        row = index.rows[0]
        assert Path(row["source"]).name.startswith("flight_") and Path(row["source"]).is_file()
        assert row["end_s"] - row["start_s"] == pytest.approx(2.0, abs=0.2)
    assert "video(s) of raw footage" in first.text
    again = invoke(*args)
    assert again.exit_code == 0
    build = json.loads((out / I.CLIPS / "build" / "build.json").read_text())
    assert build["run"]["resumed_videos"] == 3     # nothing decoded twice
    hits = invoke("search", out, "a river", "-k", "3", "--json", "-")
    assert hits.exit_code == 0 and all(h["source"].endswith(".mp4") for h in json.loads(hits.stdout)["hits"])


def test_telemetry_is_read_from_clip_metadata():
    assert telemetry_of(None) is None and telemetry_of("not json") is None and telemetry_of({"scene": 1}) is None
    assert telemetry_of({"lat": 43.6, "lon": 1.44}) == {"lat": 43.6, "lon": 1.44}
    assert telemetry_of(json.dumps({"gps": {"latitude": 43.6, "longitude": 1.44, "alt": 120}})) == \
        {"lat": 43.6, "lon": 1.44, "alt_m": 120.0}
    track = {"telemetry": [{"t": t, "lat": 43.0 + t / 100, "lon": 1.0, "alt_m": 80} for t in range(0, 20)]}
    p = telemetry_of(track, 4.0, 8.0)
    assert p["t"] == 6 and p["lat"] == pytest.approx(43.06) and p["samples_in_clip"] == 4
    assert telemetry_of({"lat": 91, "lon": 0}) is None    # not a position


def test_hits_carry_gps_when_the_dataset_has_telemetry(tmp_path):
    from dvtr_bench.dataset.hub import card_yaml, write_atomic, write_shards
    from dvtr_bench.testing.learnable import learnable_rows

    rows = learnable_rows(6, "test")
    for k, r in enumerate(rows):
        r["meta"] = json.dumps({"telemetry": [{"t": r["start_s"], "lat": 48.85 + k / 1000, "lon": 2.35, "alt": 90}]})
    ds = tmp_path / "gps"
    write_shards({"test": rows}, ds, max_shard_bytes=1 << 26)
    write_atomic(ds / "README.md", card_yaml(["test"], 6, "cc-by-4.0", "gps fixture"))
    model = load_zero_shot("dvtr-tiny", None, image_size=64)
    build_index(ds, tmp_path / "idx", model)
    res = Searcher(tmp_path / "idx", model=model).search("a square", k=6)
    assert all(h.telemetry and h.telemetry["lon"] == 2.35 and h.telemetry["alt_m"] == 90 for h in res.hits)
    printed = invoke("search", tmp_path / "idx", "a square", "-k", "2")
    assert printed.exit_code == 0 and "GPS" in printed.text and "48.85" in printed.text


def test_thumbnail_strip_has_n_frames_of_the_target_size():
    from io import BytesIO

    from PIL import Image

    frames = [np.full((90, 200, 3), 20 * k, np.uint8) for k in range(12)]
    im = Image.open(BytesIO(thumbnail_strip(frames, n=6, size=(64, 36))))
    assert im.size == (6 * 64, 36)
    short = Image.open(BytesIO(thumbnail_strip(frames[:2], n=6, size=(64, 36))))
    assert short.size == (6 * 64, 36)         # a short clip repeats its last frame: layout stays fixed
    with pytest.raises(ValueError):
        thumbnail_strip([])


# ------------------------------------------------------------------------------------------ bad input, exit 2

def test_index_built_with_another_model_than_the_query(tiny_runs, meanp_index):
    _, runs = tiny_runs
    res = invoke("search", meanp_index[0], QUERY, "--run", runs["xpool"])
    assert res.exit_code == 2
    assert "another model than the query's" in res.text and str(meanp_index[0] / I.MANIFEST) in res.text
    assert "Traceback" not in res.text


def test_a_run_retrained_in_place_is_another_model(tiny_runs, tmp_path):
    ds, runs = tiny_runs
    run = tmp_path / "run"
    shutil.copytree(runs["meanP"], run)
    assert invoke("index", ds, "--run", run, "--split", "test", "--out", tmp_path / "idx").exit_code == 0
    ckpt = torch.load(run / "seed0" / "best.pt", weights_only=True)
    ckpt["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, run / "seed0" / "best.pt")
    res = invoke("search", tmp_path / "idx", QUERY)
    assert res.exit_code == 2 and "another model than the query's" in res.text


def test_missing_checkpoint(tiny_runs, tmp_path):
    ds, runs = tiny_runs
    run = tmp_path / "run"
    shutil.copytree(runs["meanP"], run)
    assert invoke("index", ds, "--run", run, "--split", "test", "--out", tmp_path / "idx").exit_code == 0
    (run / "seed0" / "best.pt").unlink()
    for res in (invoke("index", ds, "--run", run, "--out", tmp_path / "idx2"), invoke("search", tmp_path / "idx", "x")):
        assert res.exit_code == 2, res.output
        assert "checkpoint not found" in res.text and "best.pt" in res.text
    missing = invoke("index", ds, "--run", tmp_path / "nowhere" / "best.pt", "--out", tmp_path / "idx3")
    assert missing.exit_code == 2 and "checkpoint not found" in missing.text
    wrong_seed = invoke("index", ds, "--run", runs["meanP"], "--seed", "7", "--out", tmp_path / "idx4")
    assert wrong_seed.exit_code == 2 and "no seed 7" in wrong_seed.text


def test_empty_query(meanp_index):
    for q in ("", "   "):
        res = invoke("search", meanp_index[0], q)
        assert res.exit_code == 2 and "the query is empty" in res.text
    s = Searcher(meanp_index[0])
    with pytest.raises(InputError, match="empty"):
        s.search(" \n")


def test_dataset_without_frames(tmp_path, tiny_runs):
    import datasets

    from dvtr_bench.dataset.hub import card_yaml, write_atomic

    _, runs = tiny_runs
    ds = tmp_path / "noframes"
    (ds / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({"clip_id": ["a", "b"], "video_id": ["v", "v"], "captions": [["x"], ["y"]]}) \
        .to_parquet(str(ds / "data" / "test-00000-of-00001.parquet"))
    write_atomic(ds / "README.md", card_yaml(["test"], 2, "other", "no frames"))
    res = invoke("index", ds, "--run", runs["meanP"], "--out", tmp_path / "idx")
    assert res.exit_code == 2 and "no stored frames" in res.text and str(ds) in res.text


def test_other_bad_sources_and_indexes(tmp_path, tiny_runs):
    ds, runs = tiny_runs
    (tmp_path / "empty").mkdir()
    for args, text in [
        (("index", tmp_path / "empty", "--run", runs["meanP"], "--out", tmp_path / "i"), "nor a folder with video"),
        (("index", tmp_path / "nope", "--run", runs["meanP"], "--out", tmp_path / "i"), "no such file or folder"),
        (("index", ds, "--run", runs["meanP"], "--backbone", "dvtr-tiny", "--out", tmp_path / "i"), "not both"),
        (("index", ds, "--out", tmp_path / "i"), "not neither"),
        (("index", ds, "--run", tmp_path, "--out", tmp_path / "i"), "no run.json"),
        (("search", tmp_path / "empty", "boats"), "not an index folder"),
        (("search", tmp_path / "nope", "boats"), "no such index folder"),
    ]:
        res = invoke(*args)
        assert res.exit_code == 2, (args, res.output)
        assert text in res.text, (args, res.output)
        assert "Traceback" not in res.text


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_corrupt_clip_is_one_error_line_naming_it(tmp_path, workers):
    from dvtr_bench.dataset.hub import card_yaml, write_atomic, write_shards
    from dvtr_bench.testing.learnable import learnable_rows

    rows = learnable_rows(6, "test")
    rows[4]["frames"][3] = {"bytes": b"\xff\xd8 not a jpeg", "path": None}
    ds = tmp_path / "bad"
    write_shards({"test": rows}, ds, max_shard_bytes=1 << 26)
    write_atomic(ds / "README.md", card_yaml(["test"], 6, "cc-by-4.0", "corrupt fixture"))
    res = invoke("index", ds, "--backbone", "dvtr-tiny", "--pretrained", "none", "--out", tmp_path / "idx",
                 "--loader-workers", workers,
                 "--batch-size", "2")
    assert res.exit_code == 2, res.output
    assert "record 4" in res.text and "cannot decode" in res.text
    assert "Traceback" not in res.output and "worker process" not in res.output
