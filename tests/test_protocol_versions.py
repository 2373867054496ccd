"""Protocol 2 beside protocol 1: old records stay readable and verifiable, and no table mixes versions."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path


from dvtr_bench.leaderboard.collect import collect
from dvtr_bench.protocol import v1, v2
from dvtr_bench.protocol.metrics import compute_metrics
from dvtr_bench.protocol.record import read_record, recompute_metrics, v2t_convention, validate_record
from dvtr_bench.protocol.scores import load_scores

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboard" / "results" / "demo-synth-seed0"


def _committed_v1_record(tmp_path: Path) -> Path:
    """A protocol 1 record and its score file: a committed demo record while those are protocol 1, else one
    written in protocol 1's format (no v2t_convention, no training section, caption-ranking metrics)."""
    src = COMMITTED / "meanP-dvtr-tiny"
    dst = tmp_path / "v1" / "meanP-dvtr-tiny"
    if (src / "record.json").is_file() and read_record(src / "record.json")["protocol_version"] == v1.VERSION:
        shutil.copytree(src, dst)
        return dst / "record.json"
    import numpy as np

    from dvtr_bench.protocol.record import build_record, collect_cost, summarise_runs, write_record
    from dvtr_bench.protocol.scores import save_scores

    rng = np.random.default_rng(0)
    c2c = np.repeat(np.arange(30), 5)
    scores = rng.standard_normal((c2c.size, 30)).astype(np.float32)
    scores[np.arange(c2c.size), c2c] += 1.0
    save_scores(dst / "scores_seed0.npz", scores, c2c, [f"clip{i:02d}" for i in range(30)])
    rec = build_record(method="meanP", config={}, dataset={"name": "demo", "fingerprint": "cd" * 32},
                       backbone={"name": "dvtr-tiny", "pretrained": None}, score_files={0: dst / "scores_seed0.npz"},
                       record_path=dst / "record.json", transductive=False, zero_shot=False,
                       checkpoint_selection="validation",
                       cost=collect_cost(parameters=1, gflops_per_clip=None, eval_clips_per_s=1.0, train_time_s=1.0,
                                         peak_memory_mb=1.0))
    rec["protocol_version"] = v1.VERSION
    del rec["v2t_convention"], rec["training"]
    rec["runs"][0]["metrics"] = compute_metrics(scores, c2c, v2t="rank_captions")
    rec["summary"] = summarise_runs([rec["runs"][0]["metrics"]])
    return write_record(rec, dst / "record.json")


def test_protocol_2_is_protocol_1_with_clip_ranking() -> None:
    assert v2.VERSION == "2" and v2.V2T_CONVENTION == "rank_clips"
    assert v2.V2T_BY_VERSION == {"1": "rank_captions", "2": "rank_clips"}
    for name in ("NUM_FRAMES", "MAX_TOKENS", "SEEDS", "METRICS", "EVAL_SPLIT", "SELECTION_SPLIT", "TIES"):
        assert getattr(v2, name) == getattr(v1, name)


def test_v1_records_stay_valid_and_verify_with_their_own_convention(tmp_path: Path) -> None:
    path = _committed_v1_record(tmp_path)
    rec = read_record(path)
    assert "v2t_convention" not in rec and "training" not in rec
    assert validate_record(rec) == []
    assert v2t_convention(rec) == "rank_captions"
    assert recompute_metrics(rec, path) == []
    # Recomputed under protocol 2 the same scores give other video->text ranks: the version matters.
    sf = load_scores(path.parent / rec["runs"][0]["scores"]["path"])
    now = compute_metrics(sf.scores, sf.caption_to_clip)
    old = rec["runs"][0]["metrics"]
    assert now["v2t_r1"] == old["v2t_r1"] and now["t2v_r1"] == old["t2v_r1"]
    assert now["v2t_meanr"] < old["v2t_meanr"]


def test_the_convention_is_fixed_by_the_version(tmp_path: Path) -> None:
    path = _committed_v1_record(tmp_path)
    rec = read_record(path)
    bad = copy.deepcopy(rec)
    bad["v2t_convention"] = "rank_clips"          # a v1 record claiming the v2 convention
    assert any(p.startswith("v2t_convention") for p in validate_record(bad))
    bad = copy.deepcopy(rec)
    bad["protocol_version"] = "2"                 # relabelled without convention and training section
    problems = validate_record(bad)
    assert any(p.startswith("v2t_convention") for p in problems)
    assert any(p.startswith("training") for p in problems)


def test_a_table_never_mixes_protocol_versions(tmp_path: Path) -> None:
    old_path = _committed_v1_record(tmp_path)
    # The same scores re-recorded under protocol 2: same data and method, different version.
    from dvtr_bench.protocol.record import build_record, write_record

    old = read_record(old_path)
    new_dir = tmp_path / "v2" / "meanP-dvtr-tiny"
    new_dir.mkdir(parents=True)
    shutil.copy(old_path.parent / old["runs"][0]["scores"]["path"], new_dir / "scores_seed0.npz")
    rec = build_record(method=old["method"], config=old["config"], dataset=old["dataset"], backbone=old["backbone"],
                       score_files={0: new_dir / "scores_seed0.npz"}, record_path=new_dir / "record.json",
                       transductive=False, zero_shot=False, checkpoint_selection="validation", cost=old["cost"],
                       training={"regime": "uniform", "steps_per_epoch": 29})
    write_record(rec, new_dir / "record.json")
    assert rec["protocol_version"] == "2" and rec["v2t_convention"] == "rank_clips"
    assert rec["training"] == {"regime": "uniform", "steps_per_epoch": 29}
    col = collect([tmp_path], verify=True)
    assert col.verify_failures == []
    assert sorted((g.protocol_version, len(g.entries)) for g in col.groups) == [("1", 1), ("2", 1)]
    assert {g.fingerprint for g in col.groups} == {old["dataset"]["fingerprint"]}
    assert all(e.record["protocol_version"] == g.protocol_version for g in col.groups for e in g.entries)
    json.loads((new_dir / "record.json").read_text())
