"""Hugging Face Hub layout: Parquet shards with embedded frames, the dataset card, loading and pushing.

Shards are written with pyarrow directly, with the ``datasets`` features in the schema metadata, and with the
JPEG bytes inside the ``frames`` structs: ``Dataset.to_parquet`` would store only file paths for Image features,
and the dataset would break as soon as it moved. All shards of a build are written into a temporary folder
next to ``data/`` and swapped in by renames, so a reader never sees a partial shard under ``data/``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

from dvtr_bench.dataset.outdir import swap_in
from dvtr_bench.dataset.schema import CLIP_COLUMNS, SPLITS, clip_arrow_schema
from dvtr_bench.errors import ConfigError, DvtrError, InputError

SHARD_PATTERN = "{split}-{i:05d}-of-{n:05d}.parquet"
ROW_GROUP_ROWS = 64


def row_bytes(row: dict[str, Any]) -> int:
    """Approximate stored size of a row: its frames plus a little for the rest."""
    return sum(len(f["bytes"] or b"") for f in row["frames"]) + sum(len(c) for c in row["captions"]) + 512


def plan_shards(rows: Sequence[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """Consecutive groups of rows whose size stays under ``max_bytes`` (a row larger than that is alone)."""
    shards: list[list[dict[str, Any]]] = []
    cur: list[dict[str, Any]] = []
    size = 0
    for r in rows:
        b = row_bytes(r)
        if cur and size + b > max_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append(r)
        size += b
    if cur:
        shards.append(cur)
    return shards


def write_shards(rows_by_split: dict[str, list[dict[str, Any]]], out_dir: str | Path,
                 max_shard_bytes: int) -> dict[str, list[str]]:
    """Write ``data/{split}-{i:05d}-of-{n:05d}.parquet`` atomically (whole folder swap); return the file names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    schema = clip_arrow_schema()
    tmp = out / f".data.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    written: dict[str, list[str]] = {}
    try:
        for split in SPLITS:
            rows = rows_by_split.get(split) or []
            if not rows:
                continue
            shards = plan_shards(rows, max_shard_bytes)
            names = []
            for i, shard in enumerate(shards):
                name = SHARD_PATTERN.format(split=split, i=i, n=len(shards))
                table = pa.Table.from_pylist([{c: r.get(c) for c in CLIP_COLUMNS} for r in shard], schema=schema)
                pq.write_table(table, tmp / name, row_group_size=ROW_GROUP_ROWS, compression="zstd",
                               write_statistics=["clip_id", "video_id", "split", "start_s", "end_s"])
                names.append(name)
            written[split] = names
        swap_in(tmp, out / "data")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write a file under a temporary name, then rename it into place."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "n>10M"


# The oldest ``datasets`` that reads what dvtr writes: the features use the List type introduced in 4.0.0
# (datasets 3.6.0 stops with "Feature type 'List' not found"). Stated in every card.
MIN_DATASETS_VERSION = "4.0.0"


def dataset_info_yaml(shards: dict[str, list[Path]]) -> str:
    """The ``dataset_info`` block ``Dataset.push_to_hub`` writes into a card (features, per split the rows and
    uncompressed bytes, download and dataset size), from the shards; written without importing ``datasets``
    (tests/test_hub.py checks it against ``datasets``' own writer)."""
    import pyarrow.parquet as pq

    from dvtr_bench.dataset.schema import dataset_info_features_yaml

    lines = ["dataset_info:", *dataset_info_features_yaml(), "  splits:"]
    download = total = 0
    for split, files in shards.items():
        rows = nbytes = 0
        for f in files:
            md = pq.ParquetFile(f).metadata
            rows += md.num_rows
            nbytes += sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
            download += Path(f).stat().st_size
        total += nbytes
        lines += [f"  - name: {split}", f"    num_bytes: {nbytes}", f"    num_examples: {rows}"]
    lines += [f"  download_size: {download}", f"  dataset_size: {total}"]
    return "\n".join(lines)


def card_yaml(splits: Iterable[str], n_rows: int, license: str, pretty_name: str, *,
              license_name: str | None = None, license_link: str | None = None,
              dataset_info: str | None = None) -> str:
    """The YAML header of README.md: one ``default`` config whose splits point at the shards.

    ``license_name``/``license_link`` name a licence the Hub has no identifier for (``license: other``);
    ``dataset_info`` is the block from :func:`dataset_info_yaml`.
    """
    lines = ["---", f"license: {license}"]
    if license_name:
        lines.append(f"license_name: {_yaml_str(license_name)}")
    if license_link:
        lines.append(f"license_link: {_yaml_str(license_link)}")
    lines += [f"pretty_name: {_yaml_str(pretty_name)}", "task_categories:",
             "- text-to-video", "- video-text-to-text", "language:", "- en", "tags:", "- drone", "- aerial",
             "- video-text-retrieval", "- dvtr", "size_categories:", f"- {size_category(n_rows)}", "configs:",
             "- config_name: default", "  default: true", "  data_files:"]
    for s in splits:
        lines += [f"  - split: {s}", f"    path: data/{s}-*.parquet"]
    if dataset_info:
        lines += dataset_info.splitlines()
    lines.append("---")
    return "\n".join(lines) + "\n"


def _yaml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_dataset_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "data").is_dir() and (p / "README.md").is_file()


def load_dataset(path_or_repo_id: str | os.PathLike, split: str | None = None, revision: str | None = None,
                 **kwargs: Any) -> Any:
    """Load a dvtr dataset from a local folder in Hub layout or from a Hub dataset repo id.

    A repo id is fetched with ``huggingface_hub.snapshot_download`` (pinned by ``revision`` when given) and then
    loaded from the local snapshot, so the same code path serves both cases and a cached snapshot works offline.
    Returns a ``DatasetDict``, or a ``Dataset`` when ``split`` is given. Frames decode to PIL images.
    """
    import datasets

    p = Path(path_or_repo_id)
    if p.exists():
        if not is_dataset_dir(p):
            raise InputError("not a dvtr dataset folder (expected README.md and data/)", p)
        local = p
    else:
        local = Path(_snapshot(str(path_or_repo_id), revision))
    kwargs.setdefault("cache_dir", _cache_dir_for(local))
    ds = datasets.load_dataset(str(local), split=split, **kwargs)
    return ds


def _cache_dir_for(local: Path) -> str:
    """A datasets cache folder keyed on the identity of this folder's files.

    ``datasets`` keys its cache of a local folder on the folder's name and its data file names (offline, it
    even reuses the newest cached build of that name), so a rebuilt dataset, or another dataset in a folder of
    the same name, would come back with stale rows. Keying on the path, sizes and mtimes of the shards and
    the card gives every distinct build its own cache, and a repeated load of an unchanged one stays cached.
    """
    import hashlib

    import datasets

    h = hashlib.sha256(str(local.resolve()).encode("utf-8"))
    for f in [local / "README.md", *sorted((local / "data").glob("*.parquet"))]:
        st = f.stat()
        h.update(f"\0{f.name}:{st.st_size}:{st.st_mtime_ns}".encode("utf-8"))
    return str(Path(datasets.config.HF_DATASETS_CACHE) / "dvtr" / h.hexdigest()[:20])


def _snapshot(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import snapshot_download

    if repo_id.count("/") != 1 or repo_id.startswith(("/", ".")):
        raise InputError("no such folder, and not a Hub repo id of the form 'owner/name'", repo_id)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        return snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision,
                                 allow_patterns=["README.md", "data/*", "build/*"])
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises many types; all mean "could not fetch"
        hint = (" HF_HUB_OFFLINE is set and the dataset is not in the local Hub cache; download it once "
                "with network access, or pass a local folder." if offline else
                " Check the repo id, your network, and `huggingface-cli login` for private datasets.")
        raise InputError(f"cannot fetch dataset repo from the Hub ({type(exc).__name__}: {exc}).{hint}",
                         repo_id) from None


def preflight(repo_id: str, token: str | None = None, api: Any = None) -> str:
    """Check, before a build, that ``repo_id`` can be pushed to: a valid repo name, Hub access (network, not
    ``HF_HUB_OFFLINE``), a token, and a namespace the token may write to. Returns the user name; raises
    :class:`ConfigError` with one line saying what to fix."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ConfigError(f"--push-to-hub {repo_id!r} is not a Hub repo name: {str(exc).splitlines()[0]}") from None
    if repo_id.count("/") != 1:
        raise ConfigError(f"--push-to-hub {repo_id!r}: give the repo as owner/name")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConfigError("--push-to-hub: HF_HUB_OFFLINE is set, so nothing can be pushed; unset it or drop "
                          "--push-to-hub (the dataset folder can be pushed later with huggingface-cli upload)")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    try:
        me = api.whoami()
    except Exception as exc:  # noqa: BLE001 - network errors, 401s, ...: all mean "cannot push from here"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("log in with `huggingface-cli login` or set HF_TOKEN" if "401" in reason or "token" in reason.lower()
                else "check the network and your Hub token (`huggingface-cli whoami`)")
        raise ConfigError(f"--push-to-hub: cannot reach the Hub as a user ({type(exc).__name__}: {reason}); "
                          f"{hint}") from None
    names = {me.get("name")} | {o.get("name") for o in me.get("orgs", []) if isinstance(o, dict)}
    owner = repo_id.split("/")[0]
    if owner not in names:
        raise ConfigError(f"--push-to-hub {repo_id!r}: the token is {me.get('name')!r}'s, which may write to "
                          f"{', '.join(sorted(n for n in names if n))}, not to {owner!r}")
    return str(me.get("name"))


def push_to_hub(dataset_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None,
                revision: str | None = None, commit_message: str | None = None, api: Any = None) -> str:
    """Upload a built dataset folder (card, shards, build/ records, exported clips) to a Hub dataset repo.

    ``api`` is a ``huggingface_hub.HfApi`` (or anything with ``create_repo`` and ``upload_folder``). Returns the
    commit URL (or whatever ``upload_folder`` returns).
    """
    d = Path(dataset_dir)
    if not is_dataset_dir(d):
        raise InputError("not a dvtr dataset folder (expected README.md and data/)", d)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    try:
        api.create_repo(repo_id=repo_id, repo_type="dataset", private=private, exist_ok=True)
        res = api.upload_folder(folder_path=str(d), repo_id=repo_id, repo_type="dataset", revision=revision,
                                commit_message=commit_message or "Upload dvtr dataset",
                                allow_patterns=["README.md", "data/*.parquet", "build/manifest.parquet",
                                                "build/build.json", "clips/**"],
                                delete_patterns=["data/*.parquet"])
    except Exception as exc:  # noqa: BLE001 - one line instead of a 31-frame traceback from httpx
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DvtrError(f"pushing {d} to the Hub repo {repo_id} failed ({type(exc).__name__}: {reason}); the "
                        "dataset folder is complete: push it again later") from None
    return str(getattr(res, "commit_url", res))


def open_dataset(path_or_repo_id: str | os.PathLike) -> Any:
    """:func:`load_dataset` for the commands: a folder that cannot be loaded is an :class:`InputError` naming it."""
    try:
        return load_dataset(str(path_or_repo_id))
    except InputError:
        raise
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(f"cannot load the dataset: {exc}", file=str(path_or_repo_id)) from exc
