"""Result records: one JSON file per (method configuration, dataset, protocol) evaluation.

The format is ``result_record.schema.json`` next to this module (JSON Schema 2020-12, ``schema_version``
1); docs/protocol.md describes every field. New records are written under the current protocol
(:mod:`dvtr_bench.protocol.v2`); protocol 1 records are still read, validated and recomputed with protocol 1's
video->text convention. A record's metrics come only from the metrics engine:
:func:`build_record` loads the saved score matrices, checks their sha256 and runs
:func:`dvtr_bench.protocol.metrics.evaluate` on them; there is no way to pass numbers in. The leaderboard
(``dvtr leaderboard --verify``) recomputes them the same way.

Typical use by the trainer, after saving one score file per seed with
:func:`dvtr_bench.protocol.scores.save_scores`::

    rec = build_record(
        method="meanP", config=recipe, record_path=out / "record.json",
        dataset={"name": "dvtr-synth", "fingerprint": dataset_fingerprint(ds["test"])},
        backbone={"name": "ViT-B-32", "pretrained": "openai"},
        score_files={0: out / "scores_seed0.npz", 1: out / "scores_seed1.npz", 2: out / "scores_seed2.npz"},
        transductive=False, zero_shot=False, checkpoint_selection="validation",
        cost=collect_cost(parameters=151_000_000, gflops_per_clip=53.0, eval_clips_per_s=120.0,
                          train_time_s=3600.0, peak_memory_mb=9000.0),
    )
    write_record(rec, out / "record.json")
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from dvtr_bench.errors import InputError
from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.protocol import v1, v2
from dvtr_bench.protocol.metrics import METRIC_KEYS, RECALL_KEYS, evaluate
from dvtr_bench.protocol.scores import ScoreFile, load_scores
from dvtr_bench.provenance import config_hash, git_commit, hardware, package_versions

if TYPE_CHECKING:
    from dvtr_bench.protocol.binding import TestSplit

SCHEMA_VERSION = 1
KNOWN_PROTOCOLS = (v1.VERSION, v2.VERSION)
REGIMES = ("release", "uniform")
CHECKPOINT_SELECTIONS = ("validation", "last_epoch", "none")
# Recomputed values must match stored ones to this relative tolerance (JSON round-trips floats exactly;
# the slack only absorbs a different summation order of the mean over seeds).
REL_TOL = 1e-9
ABS_TOL = 1e-9
# Bounds on what a record file may hold. A record is a few kB; these stop a hostile or broken file from
# exhausting memory or the parser's stack, and keep every number representable (JSON readers in other
# languages hold numbers as IEEE doubles: integers beyond 2**53 would silently change there).
MAX_RECORD_BYTES = 8 << 20
MAX_DEPTH = 64
MAX_INT = 2 ** 53


@lru_cache(maxsize=1)
def record_schema() -> dict[str, Any]:
    """The JSON schema of a result record (a dict)."""
    text = resources.files("dvtr_bench.protocol").joinpath("result_record.schema.json").read_text("utf-8")
    return json.loads(text)


def collect_cost(parameters: Optional[int], gflops_per_clip: Optional[float], eval_clips_per_s: Optional[float],
                 train_time_s: Optional[float], peak_memory_mb: Optional[float],
                 trainable_parameters: Optional[int] = None) -> dict[str, Any]:
    """The ``cost`` section: the given figures plus this machine's hardware, package versions and git commit.

    ``gflops_per_clip`` (video encoder, one clip of 12 frames) may be None when unknown; ``train_time_s`` is 0
    for zero-shot runs and the mean over seeds otherwise.
    """
    cost: dict[str, Any] = {
        "parameters": None if parameters is None else int(parameters),
        "gflops_per_clip": _opt_float(gflops_per_clip),
        "eval_clips_per_s": _opt_float(eval_clips_per_s),
        "train_time_s": _opt_float(train_time_s),
        "peak_memory_mb": _opt_float(peak_memory_mb),
        "hardware": hardware(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
    if trainable_parameters is not None:
        cost["trainable_parameters"] = int(trainable_parameters)
    return cost


def summarise_runs(per_seed: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """``{"n_seeds", "mean", "std"}`` over per-seed metric dicts; std is the sample std (ddof=1), None for one seed."""
    n = len(per_seed)
    if n == 0:
        raise ValueError("no runs to summarise")
    mean = {k: float(np.mean([m[k] for m in per_seed])) for k in METRIC_KEYS}
    std = None if n == 1 else {k: float(np.std([m[k] for m in per_seed], ddof=1)) for k in METRIC_KEYS}
    return {"n_seeds": n, "mean": mean, "std": std}


def build_record(*, method: str, config: Mapping[str, Any], dataset: Mapping[str, Any],
                 backbone: Mapping[str, Any], score_files: Mapping[int, str | os.PathLike[str]],
                 record_path: str | os.PathLike[str], transductive: bool, zero_shot: bool,
                 checkpoint_selection: str, cost: Mapping[str, Any], reranked: bool = False,
                 reranking: Optional[str] = None, run_info: Optional[Mapping[int, Mapping[str, Any]]] = None,
                 notes: Optional[str] = None, extra: Optional[Mapping[str, Any]] = None,
                 created_at: Optional[str] = None, chunk_size: Optional[int] = None,
                 progress: Optional[ProgressFn] = None,
                 training: Optional[Mapping[str, Any]] = None,
                 reproducibility: Optional[Mapping[str, Any]] = None,
                 evaluated: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """Assemble a result record whose metrics are computed here, from the saved score files.

    Args:
        method: method name as registered (``"meanP"``, ``"MSAM"``, ...).
        config: the full recipe of the run; its hash is stored as ``config_hash``.
        dataset: ``{"name", "fingerprint"}`` (+ optional ``"revision"``); ``split`` is always ``"test"`` and
            ``n_clips`` / ``n_captions`` come from the score files (given values must agree).
        backbone: ``{"name", "pretrained"}`` (+ optional ``"weights_sha256"``, and ``"frozen"``: the backbone's
            weights did not train on this dataset).
        score_files: seed -> score file (:func:`dvtr_bench.protocol.scores.save_scores`). Zero-shot runs use a
            single entry (seed 0 by convention). All files must describe the same captions and clips.
        record_path: where the record will be written; score paths are stored relative to its folder.
        transductive: the method's scores depend on other test items (``RetrievalMethod.transductive``).
        zero_shot: no training on the dataset; then ``checkpoint_selection`` must be ``"none"``.
        checkpoint_selection: ``"validation"`` (best epoch on the validation split), ``"last_epoch"`` or
            ``"none"``. Selecting on the test split is not representable, on purpose.
        cost: the ``cost`` section, usually from :func:`collect_cost`; missing ``hardware`` / ``packages`` /
            ``git_commit`` are filled from this machine.
        reranked / reranking: test-time re-ranking applied to the saved scores (e.g. ``"dual_softmax"``);
            such a record is always shown as its own, flagged leaderboard row.
        run_info: optional seed -> ``{"checkpoint": str, "best_epoch": int}``.
        notes / extra: free text / free-form dict.
        created_at: ISO 8601 UTC time; now by default.
        chunk_size / progress: passed to the metrics engine (progress task ``"metrics"``).
        training: ``{"regime": "release" | "uniform" | None, "steps_per_epoch": int | [int, ...] | None}``
            (+ optional ``"total_steps"``, ``"batch_size"``): how the method was trained. None (zero-shot, or
            scores from elsewhere) records both as null.
        reproducibility: optional ``{"command", "fingerprints": {split: sha256}, "run_id", "cpu_model",
            "gpu_models", "device", "world_size", "torch_threads", "interop_threads", "deterministic"}``.
        evaluated: a saved model's identity (``dvtr evaluate``): ``{"run", "checkpoints": [{"seed", "path",
            "sha256", "epoch"}, ...]}`` (+ ``run_name``, ``run_config_hash``, ``trained_on``); its seeds must be
            the score files' seeds.

    Returns:
        The record dict, already validated.

    Raises:
        InputError: a score file is missing, unreadable or inconsistent with the others, or the assembled
            record is invalid (the message lists every problem).
    """
    if not score_files:
        raise InputError("build_record needs at least one score file")
    record_dir = Path(record_path).resolve().parent
    runs: list[dict[str, Any]] = []
    first = None
    n_uncaptioned = 0
    seeds = sorted(int(s) for s in score_files)
    claimed = str(dataset.get("fingerprint", ""))
    by_sha: dict[str, int] = {}
    for i, seed in enumerate(seeds):
        path = Path(score_files[seed])
        rel = _relpath(path, record_dir)
        problem = score_path_problem(rel)
        if problem is not None:
            raise InputError(f"score file of seed {seed}: {problem}; keep the score files in the record's "
                             f"folder {record_dir}", file=path)
        resolve_score_path(record_path, rel)
        sf = load_scores(path, mmap=True)
        if sf.sha256 in by_sha:
            raise InputError(f"seeds {by_sha[sf.sha256]} and {seed} have identical score files: every seed must "
                             "be its own run", file=path)
        by_sha[sf.sha256] = seed
        if sf.fingerprint is not None and sf.fingerprint != claimed:
            raise InputError(f"the score file of seed {seed} scores test split {sf.fingerprint[:16]}…, not the "
                             f"claimed dataset fingerprint {claimed[:16]}…", file=path)
        if first is None:
            first = sf
        else:
            if sf.scores.shape != first.scores.shape:
                raise InputError(f"score matrix of seed {seed} has shape {sf.scores.shape}, seed {seeds[0]} "
                                 f"has {first.scores.shape}", file=path)
            if sf.content_key() != first.content_key():
                raise InputError(f"seed {seed} was scored on different captions or clips than seed {seeds[0]}",
                                 file=path)

        def _relay(ev: Progress, _i: int = i, _seed: int = seed) -> None:
            if progress is not None and ev.completed is not None and ev.total:
                progress(Progress("metrics", completed=_i * ev.total + ev.completed, total=len(seeds) * ev.total,
                                  info={"seed": _seed}))

        try:
            result = evaluate(sf.scores, sf.caption_to_clip, chunk_size=chunk_size, progress=_relay,
                              v2t=v2.V2T_CONVENTION)
        except ValueError as exc:
            raise InputError(str(exc), file=path) from exc
        n_uncaptioned = result.n_uncaptioned_clips
        run: dict[str, Any] = {
            "seed": seed,
            "metrics": result.metrics,
            "scores": {"path": rel, "sha256": sf.sha256},
        }
        info = (run_info or {}).get(seed, {})
        for key in ("checkpoint", "best_epoch"):
            if key in info:
                run[key] = info[key]
        runs.append(run)
    assert first is not None

    ds: dict[str, Any] = {
        "name": str(dataset.get("name", "")),
        "fingerprint": str(dataset.get("fingerprint", "")),
        "split": "test",
        "n_clips": first.n_clips,
        "n_captions": first.n_captions,
        "n_uncaptioned_clips": n_uncaptioned,
    }
    for key, actual in (("n_clips", first.n_clips), ("n_captions", first.n_captions)):
        if key in dataset and int(dataset[key]) != actual:
            raise InputError(f"dataset says {key}={dataset[key]} but the score files have {actual}")
    if dataset.get("split", "test") != "test":
        raise InputError(f"results are reported on the test split, got split={dataset.get('split')!r}")
    if dataset.get("revision") is not None:
        ds["revision"] = str(dataset["revision"])

    bb: dict[str, Any] = {"name": str(backbone.get("name", "")), "pretrained": backbone.get("pretrained")}
    if backbone.get("weights_sha256") is not None:
        bb["weights_sha256"] = backbone["weights_sha256"]
    if backbone.get("frozen") is not None:
        bb["frozen"] = bool(backbone["frozen"])

    cost_out = dict(cost)
    cost_out.setdefault("hardware", hardware())
    cost_out.setdefault("packages", package_versions())
    cost_out.setdefault("git_commit", git_commit())

    from dvtr_bench._version import __version__

    config_dict = json.loads(json.dumps(config, default=str))
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "protocol_version": v2.VERSION,
        "v2t_convention": v2.V2T_CONVENTION,
        "dataset": ds,
        "method": method,
        "config": config_dict,
        "config_hash": config_hash(config_dict),
        "backbone": bb,
        "seeds": seeds,
        "zero_shot": bool(zero_shot),
        "checkpoint_selection": checkpoint_selection,
        "transductive": bool(transductive),
        "reranked": bool(reranked),
        "reranking": reranking,
        "runs": runs,
        "summary": summarise_runs([r["metrics"] for r in runs]),
        "cost": cost_out,
        "dvtr_version": __version__,
        "created_at": created_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "training": _training_section(training),
    }
    if evaluated is not None:
        rec["evaluated"] = json.loads(json.dumps(evaluated, default=str))
    if notes is not None:
        rec["notes"] = notes
    if reproducibility is not None:
        rec["reproducibility"] = json.loads(json.dumps(dict(reproducibility), default=str))
    if extra is not None:
        rec["extra"] = json.loads(json.dumps(extra, default=str))
    problems = validate_record(rec)
    if problems:
        raise InputError("invalid result record: " + "; ".join(problems), file=record_path)
    return rec


def validate_record(rec: Any) -> list[str]:
    """Every problem of a record as a readable sentence; an empty list means valid.

    Checks the JSON schema first, then what a schema cannot say: seeds match the runs, the summary is the
    mean/std of the runs, RSum and mR add up, recalls grow with K, config_hash is the hash of config, the
    flags are consistent, and the protocol version is known.
    """
    from jsonschema import Draft202012Validator

    # Bounded depth, finite numbers, representable integers and encodable text first: the schema validator
    # and everything after it may then recurse, hash and compute without a crash.
    problems = json_value_problems(rec)
    if problems:
        return problems
    validator = Draft202012Validator(record_schema())
    problems = [f"{_where(e.absolute_path)}: {e.message}"
                for e in sorted(validator.iter_errors(rec), key=lambda e: [str(p) for p in e.absolute_path])]
    if problems or not isinstance(rec, dict):
        return problems

    if rec["protocol_version"] not in KNOWN_PROTOCOLS:
        problems.append(f"protocol_version: {rec['protocol_version']!r} is not known to this dvtr "
                        f"(known: {', '.join(KNOWN_PROTOCOLS)})")
    else:
        # The convention is fixed by the version: a table grouped by version then never mixes conventions.
        want = v2.V2T_BY_VERSION[rec["protocol_version"]]
        got = rec.get("v2t_convention", v2.V2T_BY_VERSION[v1.VERSION])
        if got != want:
            problems.append(f"v2t_convention: protocol {rec['protocol_version']} ranks video->text by {want!r}, "
                            f"the record says {got!r}")
        if rec["protocol_version"] != v1.VERSION and "training" not in rec:
            problems.append(f"training: required from protocol {v2.VERSION} on (regime and steps per epoch)")
    training = rec.get("training")
    if isinstance(training, dict) and rec["zero_shot"] and training.get("regime") is not None:
        problems.append("training.regime: must be null for a zero-shot record (nothing was trained)")
    run_seeds = [r["seed"] for r in rec["runs"]]
    if sorted(run_seeds) != sorted(rec["seeds"]) or len(set(run_seeds)) != len(run_seeds):
        problems.append(f"seeds: {rec['seeds']} do not match the runs' seeds {run_seeds}")
    if rec["summary"]["n_seeds"] != len(rec["runs"]):
        problems.append(f"summary.n_seeds: {rec['summary']['n_seeds']} but there are {len(rec['runs'])} runs")
    for i, run in enumerate(rec["runs"]):
        problems.extend(_metric_consistency(run["metrics"], f"runs[{i}].metrics"))
    expected = summarise_runs([r["metrics"] for r in rec["runs"]])
    for part in ("mean", "std"):
        got, want = rec["summary"][part], expected[part]
        if (got is None) != (want is None):
            problems.append(f"summary.{part}: should be {'null' if want is None else 'set'} for "
                            f"{len(rec['runs'])} run(s)")
            continue
        if want is None:
            continue
        for k in METRIC_KEYS:
            if not _close(got[k], want[k]):
                problems.append(f"summary.{part}.{k}: {got[k]!r} is not the {part} over the runs ({want[k]!r})")
    if config_hash(rec["config"]) != rec["config_hash"]:
        problems.append("config_hash: does not match the hash of config")
    if rec["reranked"] != (rec["reranking"] is not None):
        problems.append("reranking: must name the re-ranking exactly when reranked is true")
    ds = rec["dataset"]
    if ds.get("n_uncaptioned_clips") is not None and ds["n_uncaptioned_clips"] > ds["n_clips"]:
        problems.append(f"dataset.n_uncaptioned_clips: {ds['n_uncaptioned_clips']} is more than n_clips "
                        f"({ds['n_clips']})")
    seen_paths: dict[str, int] = {}
    seen_sha: dict[str, int] = {}
    for i, run in enumerate(rec["runs"]):
        p = run["scores"]["path"]
        problem = score_path_problem(p)
        if problem is not None:
            problems.append(f"runs[{i}].scores.path: {problem}")
        norm = PurePosixPath(p).as_posix()
        if norm in seen_paths:
            problems.append(f"runs[{i}].scores: the same score file as runs[{seen_paths[norm]}] ({p!r}): identical "
                            "score files for two seeds; every seed must be its own run")
        elif run["scores"]["sha256"] in seen_sha:
            problems.append(f"runs[{i}].scores: identical score file (same sha256) as runs[{seen_sha[run['scores']['sha256']]}]: "
                            "every seed must be its own run")
        seen_paths.setdefault(norm, i)
        seen_sha.setdefault(run["scores"]["sha256"], i)
    if rec["zero_shot"] != (rec["checkpoint_selection"] == "none"):
        problems.append("checkpoint_selection: must be 'none' exactly for zero-shot records "
                        f"(zero_shot={rec['zero_shot']}, checkpoint_selection={rec['checkpoint_selection']!r})")
    if "evaluated" in rec and rec["zero_shot"]:
        problems.append("evaluated: a record of a saved, trained model cannot be zero-shot")
    ev = rec.get("evaluated")
    if isinstance(ev, dict) and sorted(c["seed"] for c in ev["checkpoints"]) != sorted(rec["seeds"]):
        problems.append("evaluated.checkpoints: one checkpoint per seed of the record")
    return problems


def write_record(rec: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Validate and write a record as indented JSON (atomically); returns the path.

    Raises:
        InputError: the record is invalid (nothing is written).
    """
    path = Path(path)
    problems = validate_record(rec)
    if problems:
        raise InputError("invalid result record: " + "; ".join(problems), file=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(rec, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a record file (no validation: call :func:`validate_record`).

    Whatever the file holds, the only exception is :class:`InputError`: the file is read up to
    ``MAX_RECORD_BYTES``, must be UTF-8 JSON nested at most ``MAX_DEPTH`` deep, and every number must be
    finite (``NaN``, ``Infinity`` and ``1e400`` are refused) and every integer within ±2**53.

    Raises:
        InputError: unreadable, too large or not UTF-8; invalid or too deeply nested JSON; a number out of
            range; or a JSON value that is not an object.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read record: {exc.strerror or exc}", file=path) from exc
    if len(data) > MAX_RECORD_BYTES:
        raise InputError(f"record is larger than {MAX_RECORD_BYTES >> 20} MiB: not a result record", file=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid JSON: not UTF-8 text (byte {exc.start})", file=path) from exc
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise InputError(f"not valid JSON for a record: nested {depth} levels deep (at most {MAX_DEPTH})", file=path)
    try:
        rec = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not valid JSON: {exc}", file=path) from exc
    if not isinstance(rec, dict):
        raise InputError(f"a record must be a JSON object, got {type(rec).__name__}", file=path)
    return rec


def json_value_problems(value: Any, max_depth: int = MAX_DEPTH) -> list[str]:
    """Why ``value`` is not a plain, bounded JSON value (empty when it is): nesting deeper than ``max_depth``,
    non-finite floats, integers beyond ±2**53, strings that are not valid Unicode, non-string keys or
    objects of other types. Walks without recursion, so any depth is safe to check."""
    problems: list[str] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack and len(problems) < 5:
        v, where = stack.pop()
        if len(where) > max_depth:
            problems.append(f"{_where(where[:3])}…: nested more than {max_depth} levels deep")
            continue
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                problems.append(f"{_where(where)}: integer {_short_int(v)} is beyond ±2**53")
        elif isinstance(v, float):
            if not math.isfinite(v):
                problems.append(f"{_where(where)}: {v!r} is not a finite number")
        elif isinstance(v, str):
            if _SURROGATE.search(v):
                problems.append(f"{_where(where)}: text holds a lone surrogate (not valid Unicode)")
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str) or _SURROGATE.search(k):
                    problems.append(f"{_where(where)}: key {k!r} is not valid text")
                    continue
                stack.append((item, where + (k,)))
        elif isinstance(v, list):
            stack.extend((item, where + (i,)) for i, item in enumerate(v))
        else:
            problems.append(f"{_where(where)}: {type(v).__name__} is not a JSON value")
    return problems


def score_path_problem(path: str) -> Optional[str]:
    """Why a run's score path is not a plain relative path inside the record's folder (None when it is)."""
    if "\\" in path or "\x00" in path:
        return f"{path!r} must use '/' and no control characters"
    p = PurePosixPath(path)
    if p.is_absolute() or re.match(r"^[A-Za-z]:", path):
        return f"{path!r} is absolute: score paths are relative to the record's folder"
    if any(part == ".." for part in p.parts):
        return f"{path!r} points outside the record's folder ('..' is not allowed)"
    if path != p.as_posix() or not p.parts:
        return f"{path!r} is not a normalised relative path"
    return None


def resolve_score_path(record_path: str | os.PathLike[str], path: str) -> Path:
    """The file a run's score path names, inside the record's folder, refusing escapes and symbolic links.

    Raises:
        InputError: the path is absolute, leaves the folder, or passes through a symbolic link.
    """
    problem = score_path_problem(path)
    if problem is not None:
        raise InputError(problem, file=record_path)
    folder = Path(record_path).resolve().parent
    p = folder
    for part in PurePosixPath(path).parts:
        p = p / part
        if p.is_symlink():
            raise InputError(f"{path!r}: {p.relative_to(folder).as_posix()} is a symbolic link; score files are "
                             "read only from inside the record's folder", file=record_path)
    return p


def score_path(rec: Mapping[str, Any], run: Mapping[str, Any], record_path: str | os.PathLike[str]) -> Path:
    """Path of a run's score file (stored relative to the record's folder); see :func:`resolve_score_path`."""
    return resolve_score_path(record_path, run["scores"]["path"])


@dataclass
class Verification:
    """The outcome of :func:`verify_record`.

    ``problems`` are ``(kind, sentence)`` pairs: ``"verify"`` (a number, hash, shape or file that disagrees
    with the record), ``"unsafe"`` (a score path that leaves the record's folder), ``"binding"`` (the score
    files score other data than the record claims) and ``"dataset"`` (they disagree with the reference split).
    """

    problems: list[tuple[str, str]] = field(default_factory=list)
    score_files: list[ScoreFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bound(self) -> bool:
        """Every score file names the test split it scores (clip digests and caption hash)."""
        return bool(self.score_files) and all(sf.bound for sf in self.score_files)

    @property
    def kind(self) -> Optional[str]:
        """The most serious kind of problem (a wrong number first), None when verified."""
        kinds = [k for k, _ in self.problems]
        for k in ("verify", "binding", "dataset", "unsafe"):
            if k in kinds:
                return k
        return None


def verify_record(rec: Mapping[str, Any], record_path: str | os.PathLike[str], chunk_size: Optional[int] = None,
                  reference: "Optional[TestSplit]" = None) -> Verification:
    """Recompute every metric of a valid record from its score files and check what binds it to its data.

    Each score file must lie inside the record's folder (no ``..``, no symbolic link), have the recorded
    sha256 and shape, and score the test split the record claims: when it carries clip digests, the
    fingerprint recomputed from them must be the record's. All runs must score the same captions and clips.
    Each per-seed metric must equal the engine's value, ``n_uncaptioned_clips`` the engine's count, and the
    summary the mean/std of the recomputed runs. With ``reference`` (the test split read from the dataset
    itself), the record's fingerprint must be the split's and every score file must score exactly its
    clips and captions (:func:`dvtr_bench.protocol.binding.check_against_split`).
    """
    out = Verification()
    problems = out.problems
    recomputed: list[dict[str, float]] = []
    ds = rec["dataset"]
    if reference is not None and reference.fingerprint != ds["fingerprint"]:
        problems.append(("dataset", f"the record claims test split {ds['fingerprint'][:16]}…, the dataset's test "
                                    f"split is {reference.fingerprint[:16]}…"))
    first: Optional[ScoreFile] = None
    for i, run in enumerate(rec["runs"]):
        where = f"runs[{i}] (seed {run['seed']})"
        rel = run["scores"]["path"]
        try:
            path = resolve_score_path(record_path, rel)
        except InputError as exc:
            problems.append(("unsafe", f"{where}: {exc.reason}"))
            continue
        try:
            sf = load_scores(path, expected_sha256=run["scores"]["sha256"], mmap=True)
        except InputError as exc:
            problems.append(("verify", f"{where}: {exc.reason} ({rel})"))
            continue
        out.score_files.append(sf)
        if (sf.n_captions, sf.n_clips) != (ds["n_captions"], ds["n_clips"]):
            problems.append(("verify", f"{where}: score matrix is {sf.n_captions}x{sf.n_clips}, record says "
                                       f"{ds['n_captions']}x{ds['n_clips']}"))
            continue
        if sf.fingerprint is not None and sf.fingerprint != ds["fingerprint"]:
            wrong = [p for p in problems if p[0] == "binding" and sf.fingerprint[:16] in p[1]]
            if not wrong:      # one sentence per wrong split, not one per seed
                problems.append(("binding", f"{where}: its score file scores test split {sf.fingerprint[:16]}…, "
                                            f"but the record claims dataset fingerprint {ds['fingerprint'][:16]}…"))
        if first is None:
            first = sf
        elif sf.content_key() != first.content_key():
            problems.append(("binding", f"{where}: scores other captions or clips than runs[0]"))
        if reference is not None:
            from dvtr_bench.protocol.binding import check_against_split

            problems.extend(("dataset", f"{where}: {p}") for p in check_against_split(sf, reference))
        try:
            result = evaluate(sf.scores, sf.caption_to_clip, chunk_size=chunk_size, v2t=v2t_convention(rec))
        except ValueError as exc:
            problems.append(("verify", f"{where}: {exc}"))
            continue
        metrics = result.metrics
        recomputed.append(metrics)
        for k in METRIC_KEYS:
            if not _close(run["metrics"][k], metrics[k]):
                problems.append(("verify", f"{where} {k}: recorded {run['metrics'][k]!r}, recomputed {metrics[k]!r}"))
        if ds.get("n_uncaptioned_clips") is not None and ds["n_uncaptioned_clips"] != result.n_uncaptioned_clips:
            problems.append(("verify", f"{where}: dataset.n_uncaptioned_clips is {ds['n_uncaptioned_clips']}, "
                                       f"the score file has {result.n_uncaptioned_clips} clip(s) without a caption"))
    if not problems:
        expected = summarise_runs(recomputed)
        for part in ("mean", "std"):
            got, want = rec["summary"][part], expected[part]
            if want is None or got is None:
                if want is not got:
                    problems.append(("verify", f"summary.{part}: recorded {got!r}, recomputed {want!r}"))
                continue
            for k in METRIC_KEYS:
                if not _close(got[k], want[k]):
                    problems.append(("verify", f"summary.{part}.{k}: recorded {got[k]!r}, recomputed {want[k]!r}"))
    return out


def recompute_metrics(rec: Mapping[str, Any], record_path: str | os.PathLike[str],
                      chunk_size: Optional[int] = None) -> list[str]:
    """Every problem :func:`verify_record` finds, as sentences (empty = verified)."""
    return [text for _, text in verify_record(rec, record_path, chunk_size=chunk_size).problems]


def v2t_convention(rec: Mapping[str, Any]) -> str:
    """The video->text convention a record's metrics were computed with (fixed by its protocol version)."""
    return v2.V2T_BY_VERSION.get(str(rec.get("protocol_version")), v2.V2T_CONVENTION)


def _training_section(training: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"regime": None, "steps_per_epoch": None}
    if training:
        out.update(json.loads(json.dumps(dict(training), default=str)))
    return out


def _metric_consistency(m: Mapping[str, float], where: str) -> list[str]:
    out = []
    rsum = sum(m[k] for k in RECALL_KEYS)
    if not _close(m["rsum"], rsum):
        out.append(f"{where}.rsum: {m['rsum']!r} is not the sum of the six recalls ({rsum!r})")
    if not _close(m["mr"], rsum / len(RECALL_KEYS)):
        out.append(f"{where}.mr: {m['mr']!r} is not the mean of the six recalls ({rsum / len(RECALL_KEYS)!r})")
    for d in ("t2v", "v2t"):
        if not m[f"{d}_r1"] <= m[f"{d}_r5"] <= m[f"{d}_r10"]:
            out.append(f"{where}: {d} recalls must not decrease with K")
    # With one relevant clip per caption, AP = 1/rank >= [rank == 1], so t2v mAP can never be below R@1.
    if m["t2v_map"] + 1e-9 < m["t2v_r1"]:
        out.append(f"{where}.t2v_map: {m['t2v_map']!r} is below t2v_r1 ({m['t2v_r1']!r}), which is impossible")
    return out


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    except (TypeError, ValueError):
        return False


def _where(path: Sequence[Any]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[") or "record"


def _relpath(path: Path, start: Path) -> str:
    # The folder is resolved, the file name is not: a score file that is a symbolic link must be seen as one.
    real = Path(os.path.abspath(path)).parent.resolve() / Path(path).name
    try:
        return Path(os.path.relpath(real, start)).as_posix()
    except ValueError:  # different drives on Windows
        return real.as_posix()


def _opt_float(x: Optional[float]) -> Optional[float]:
    return None if x is None else float(x)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a record (numbers must be finite)")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number {text[:30]} is not finite as a 64-bit float")
    return x


def _bounded_int(text: str) -> int:
    # Python refuses to parse integers of more than 4300 digits with its own ValueError; this is far below.
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_INT:
        raise ValueError(f"integer {text[:20]}{'…' if len(text) > 20 else ''} is beyond ±2**53")
    return int(text)


def _short_int(v: int) -> str:
    digits = len(str(abs(v))) if abs(v) < 10 ** 4000 else 4000
    return f"with {digits}+ digits" if digits > 20 else str(v)


_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON string literal, matched possessively so that no input makes the match backtrack.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.S)


def _nesting_depth(text: str) -> int:
    """Deepest nesting of [ and { outside string literals, without recursion (the parser would recurse)."""
    stripped = _JSON_STRING.sub("", text).encode("utf-8", "surrogatepass")
    b = np.frombuffer(stripped, dtype=np.uint8)
    step = np.zeros(b.shape, dtype=np.int32)
    step[(b == ord("[")) | (b == ord("{"))] = 1
    step[(b == ord("]")) | (b == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))
