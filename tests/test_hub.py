"""Hub: the pre-flight check before a build, one line when pushing fails, the card's dataset_info and licence."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.dataset.hub import MIN_DATASETS_VERSION, preflight, push_to_hub
from dvtr_bench.errors import ConfigError, DvtrError


class ConnectError(OSError):
    """What huggingface_hub's HTTP client raises without network (its class has this name)."""


class _Api:
    def __init__(self, whoami=None, fail=None):
        self._whoami, self._fail = whoami, fail

    def whoami(self):
        if self._fail is not None:
            raise self._fail
        return self._whoami

    def create_repo(self, **kw):
        if self._fail is not None:
            raise self._fail

    def upload_folder(self, **kw):
        raise ConnectError("[Errno -3] Temporary failure in name resolution")


def test_push_to_hub_is_checked_before_the_build(footage, tmp_path):
    out = tmp_path / "ds"
    res = CliRunner().invoke(cli, ["build-dataset", str(footage / "videos"), "--out", str(out), "-j", "1",
                                   "--push-to-hub", "me/drone-vtr"])       # tests run with HF_HUB_OFFLINE=1
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(errors) == 1 and "HF_HUB_OFFLINE is set" in errors[0] and "Traceback" not in res.output
    assert not (out / "build").exists()                                    # nothing was built


def test_preflight_names_what_to_fix(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ConfigError, match="not a Hub repo name"):
        preflight("me/bad name!", api=_Api())
    with pytest.raises(ConfigError, match="owner/name"):
        preflight("drone-vtr", api=_Api())
    with pytest.raises(ConfigError, match="cannot reach the Hub.*ConnectError"):
        preflight("me/drone-vtr", api=_Api(fail=ConnectError("name resolution")))
    with pytest.raises(ConfigError, match="not to 'someone'"):
        preflight("someone/drone-vtr", api=_Api({"name": "me", "orgs": [{"name": "lab"}]}))
    assert preflight("lab/drone-vtr", api=_Api({"name": "me", "orgs": [{"name": "lab"}]})) == "me"


def test_a_failed_push_is_one_line(tmp_path, footage):
    from dvtr_bench.dataset import BuildConfig, build

    build([footage / "videos" / "flight_000.mp4"], footage / "annotations.jsonl", tmp_path / "ds",
          BuildConfig(splits={"train": 1.0}), workers=1)
    with pytest.raises(DvtrError) as exc:
        push_to_hub(tmp_path / "ds", "me/drone-vtr", api=_Api({"name": "me"}))
    msg = str(exc.value)
    assert "\n" not in msg and "ConnectError" in msg and "push it again later" in msg


def test_card_has_dataset_info_licence_and_minimum_datasets_version(tmp_path, footage):
    import datasets

    from dvtr_bench.dataset import BuildConfig, build

    out = tmp_path / "ds"
    res = build([footage / "videos"], footage / "annotations.jsonl", out,
                BuildConfig(license_name="Drone footage licence 1.0", license_link="LICENSE.md"), workers=1)
    card = (out / "README.md").read_text()
    head = yaml.safe_load(card.split("---")[1])
    assert head["license"] == "other" and head["license_name"] == "Drone footage licence 1.0"
    assert head["license_link"] == "LICENSE.md"
    info = head["dataset_info"]
    assert [f["name"] for f in info["features"]][:3] == ["clip_id", "video_id", "split"]
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {s: c["clips"] for s, c in res.per_split.items()}
    assert info["download_size"] == sum(f.stat().st_size for f in (out / "data").glob("*.parquet"))
    assert f"`datasets` >= {MIN_DATASETS_VERSION}" in card and "dvtr_bench.load_dataset" in card
    # the Hub's own reader agrees with the card
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {s: len(ds[s]) for s in ds} == {s["name"]: s["num_examples"] for s in info["splits"]}


def test_shard_schema_and_dataset_info_match_what_datasets_makes(tmp_path, footage):
    """Both are written without importing datasets (its import is most of a short build's start-up): they
    must be exactly what datasets itself makes of the features."""
    import pyarrow.parquet as pq
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from huggingface_hub import DatasetCardData

    from dvtr_bench.dataset import BuildConfig, build
    from dvtr_bench.dataset.hub import dataset_info_yaml
    from dvtr_bench.dataset.schema import clip_arrow_schema, clip_features

    assert clip_arrow_schema().equals(clip_features().arrow_schema, check_metadata=True)
    out = tmp_path / "ds"
    build([footage / "videos"], footage / "annotations.jsonl", out, BuildConfig(), workers=1)
    shards = {s: sorted((out / "data").glob(f"{s}-*.parquet")) for s in ("train", "validation", "test")}
    info = DatasetInfo(features=clip_features())
    splits = SplitDict()
    for s, files in shards.items():
        mds = [pq.ParquetFile(f).metadata for f in files]
        splits.add(SplitInfo(name=s, num_examples=sum(m.num_rows for m in mds),
                             num_bytes=sum(m.row_group(i).total_byte_size for m in mds for i in range(m.num_row_groups))))
    info.splits = splits
    info.download_size = sum(f.stat().st_size for fs in shards.values() for f in fs)
    info.dataset_size = sum(sp.num_bytes for sp in splits.values())
    card = DatasetCardData()
    DatasetInfosDict({"default": info}).to_dataset_card_data(card)
    assert dataset_info_yaml(shards) == card.to_yaml().rstrip("\n")


def test_readme_says_which_loader_to_use_after_a_rebuild():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "after a **rebuild in the same folder** use `dvtr_bench.load_dataset`" in " ".join(readme.split())
    assert "`datasets` >= 4.0.0" in readme
