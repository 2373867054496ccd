"""Collect result records, check them, group the comparable ones and rank them.

Rules (docs/leaderboard.md):

* every record is validated against the record schema and its internal consistency
  (:func:`dvtr_bench.protocol.record.validate_record`); an invalid one is left out with the reason;
* records are grouped by (dataset fingerprint, protocol version); groups are never mixed -- numbers on
  different test data or under different protocols are not comparable;
* inside a group every record must describe the same test split size (n_clips, n_captions); a record that
  does not is left out (an edited record or a fingerprint collision);
* the same run found twice (same method, config hash and score file hashes) is listed once;
* with ``verify=True`` every metric is recomputed from the saved score matrices (sha256 checked); a record
  whose numbers disagree is left out and reported as a verification failure;
* rows are ranked by mean RSum (descending), then mean text->video R@1, then mean video->text R@1.
  Transductive and re-ranked records are ranked with the others but carry visible marks; a re-ranked run
  is always its own record, hence its own row.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from dvtr_bench.errors import InputError
from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.protocol import v1
from dvtr_bench.protocol.record import read_record, recompute_metrics, validate_record

# Keys whose presence makes a JSON file found while scanning a folder a candidate record. Other JSON files
# (configs, logs) sitting next to the records are skipped silently; a file named explicitly is always
# treated as a record.
_RECORD_KEYS = ("schema_version", "protocol_version", "runs", "summary")


@dataclass
class Entry:
    """One accepted record and where it came from."""

    path: Path
    record: dict[str, Any]
    verified: Optional[bool] = None     # None: not verified; True: recomputed and equal

    @property
    def mean(self) -> dict[str, float]:
        return self.record["summary"]["mean"]

    @property
    def std(self) -> Optional[dict[str, float]]:
        return self.record["summary"]["std"]

    @property
    def n_seeds(self) -> int:
        return int(self.record["summary"]["n_seeds"])

    @property
    def transductive(self) -> bool:
        return bool(self.record["transductive"])

    @property
    def reranked(self) -> bool:
        return bool(self.record["reranked"])

    @property
    def zero_shot(self) -> bool:
        return bool(self.record["zero_shot"])

    @property
    def too_few_seeds(self) -> bool:
        """A trained method reported on fewer seeds than protocol v1 asks for."""
        return not self.zero_shot and self.n_seeds < len(v1.SEEDS)

    @property
    def compliant(self) -> bool:
        """Neither transductive nor re-ranked: eligible for "best in column"."""
        return not (self.transductive or self.reranked)

    def identity(self) -> tuple[Any, ...]:
        r = self.record
        return (r["method"], r["config_hash"], r["reranking"],
                tuple(sorted((run["seed"], run["scores"]["sha256"]) for run in r["runs"])))


@dataclass
class Exclusion:
    """A record (or path) left out of every table, and why."""

    path: str
    reason: str
    kind: str = "invalid"     # invalid | unreadable | mismatch | duplicate | verify | missing


@dataclass
class Group:
    """Records on the same test data under the same protocol: the only ones that may be compared."""

    fingerprint: str
    protocol_version: str
    dataset_name: str
    n_clips: int
    n_captions: int
    entries: list[Entry] = field(default_factory=list)
    other_names: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", self.dataset_name).strip("-") or "dataset"
        return f"{name}-protocol-v{self.protocol_version}-{self.fingerprint[:12]}"

    @property
    def title(self) -> str:
        return f"{self.dataset_name} (protocol v{self.protocol_version})"


@dataclass
class Collection:
    """The outcome of :func:`collect`: ranked groups, exclusions and what was skipped."""

    groups: list[Group]
    exclusions: list[Exclusion]
    n_files: int
    skipped: list[str] = field(default_factory=list)   # non-record JSON files met while scanning folders
    verified: bool = False

    @property
    def n_accepted(self) -> int:
        return sum(len(g.entries) for g in self.groups)

    @property
    def verify_failures(self) -> list[Exclusion]:
        return [e for e in self.exclusions if e.kind == "verify"]


def find_record_files(inputs: Sequence[str | Path]) -> tuple[list[Path], list[Path], list[Exclusion]]:
    """Expand inputs (record files or folders, searched recursively for ``*.json``).

    Returns (explicit files, files found in folders, exclusions for inputs that do not exist).
    """
    explicit: list[Path] = []
    scanned: list[Path] = []
    missing: list[Exclusion] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            scanned.extend(sorted(q for q in p.rglob("*.json") if q.is_file() and not q.name.startswith(".")))
        elif p.is_file():
            explicit.append(p)
        else:
            missing.append(Exclusion(str(p), "no such file or folder", kind="missing"))
    return explicit, scanned, missing


def collect(inputs: Sequence[str | Path], verify: bool = False, chunk_size: Optional[int] = None,
            progress: Optional[ProgressFn] = None) -> Collection:
    """Read, check, (optionally) verify, group and rank every record under ``inputs``.

    Args:
        inputs: record files and/or folders (folders are searched recursively for ``*.json``).
        verify: recompute every metric from the saved score files and leave out records that disagree.
        chunk_size: passed to the metrics engine when verifying.
        progress: optional callback; task ``"records"`` counted in files.
    """
    explicit, scanned, exclusions = find_record_files(inputs)
    skipped: list[str] = []
    seen: set[Path] = set()
    candidates: list[tuple[Path, dict[str, Any]]] = []
    files = [(p, True) for p in explicit] + [(p, False) for p in scanned]
    total = len(files)
    for i, (path, named) in enumerate(files):
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        try:
            rec = read_record(path)
        except InputError as exc:
            if named:
                exclusions.append(Exclusion(str(path), exc.reason, kind="unreadable"))
            else:
                skipped.append(str(path))
            continue
        if not named and not any(k in rec for k in _RECORD_KEYS):
            skipped.append(str(path))
            continue
        problems = validate_record(rec)
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            exclusions.append(Exclusion(str(path), "invalid record: " + "; ".join(problems[:3]) + more))
            continue
        candidates.append((path, rec))
        if progress is not None:
            progress(Progress("records", completed=i + 1, total=total))

    entries: list[Entry] = []
    for j, (path, rec) in enumerate(candidates):
        entry = Entry(path=path, record=rec)
        if verify:
            problems = recompute_metrics(rec, path, chunk_size=chunk_size)
            if progress is not None:
                progress(Progress("verify", completed=j + 1, total=len(candidates)))
            if problems:
                more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
                exclusions.append(Exclusion(str(path), "numbers disagree with the score files: "
                                            + "; ".join(problems[:3]) + more, kind="verify"))
                continue
            entry.verified = True
        entries.append(entry)

    groups = _group(entries, exclusions)
    return Collection(groups=groups, exclusions=exclusions, n_files=total, skipped=skipped, verified=verify)


def rank_key(entry: Entry) -> tuple[Any, ...]:
    """Sort key: RSum desc, then t2v R@1 desc, then v2t R@1 desc, then method name and path (stable)."""
    m = entry.mean
    return (-m[v1.RANK_BY], -m["t2v_r1"], -m["v2t_r1"], entry.record["method"], str(entry.path))


def _group(entries: Iterable[Entry], exclusions: list[Exclusion]) -> list[Group]:
    by_key: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        key = (e.record["dataset"]["fingerprint"], e.record["protocol_version"])
        by_key.setdefault(key, []).append(e)

    groups: list[Group] = []
    for (fp, proto), members in by_key.items():
        sizes = Counter((e.record["dataset"]["n_clips"], e.record["dataset"]["n_captions"]) for e in members)
        (n_clips, n_captions), _ = sizes.most_common(1)[0]
        names = Counter(e.record["dataset"]["name"] for e in members)
        name = names.most_common(1)[0][0]
        group = Group(fingerprint=fp, protocol_version=proto, dataset_name=name, n_clips=n_clips,
                      n_captions=n_captions, other_names=sorted(set(names) - {name}))
        seen: dict[tuple[Any, ...], Entry] = {}
        for e in sorted(members, key=lambda e: str(e.path)):
            ds = e.record["dataset"]
            if (ds["n_clips"], ds["n_captions"]) != (n_clips, n_captions):
                exclusions.append(Exclusion(
                    str(e.path), f"dataset {fp[:12]}... has {n_clips} clips / {n_captions} captions in the other "
                    f"records of its group, this record says {ds['n_clips']} / {ds['n_captions']}", kind="mismatch"))
                continue
            ident = e.identity()
            if ident in seen:
                exclusions.append(Exclusion(str(e.path), f"duplicate of {seen[ident].path} (same method, config "
                                            "and score files)", kind="duplicate"))
                continue
            seen[ident] = e
            group.entries.append(e)
        group.entries.sort(key=rank_key)
        groups.append(group)
    # Largest groups first, then by name: a stable, meaningful order for the index.
    groups.sort(key=lambda g: (-len(g.entries), g.dataset_name, g.protocol_version, g.fingerprint))
    return groups


def collection_summary(col: Collection) -> dict[str, Any]:
    """A JSON-serialisable summary (written as summary.json next to the tables)."""
    return {
        "verified": col.verified,
        "n_files": col.n_files,
        "n_accepted": col.n_accepted,
        "groups": [{
            "slug": g.slug, "dataset": g.dataset_name, "fingerprint": g.fingerprint,
            "protocol_version": g.protocol_version, "n_clips": g.n_clips, "n_captions": g.n_captions,
            "rows": [{"rank": i + 1, "method": e.record["method"], "record": str(e.path),
                      "rsum": e.mean["rsum"], "transductive": e.transductive, "reranked": e.reranked,
                      "verified": e.verified} for i, e in enumerate(g.entries)],
        } for g in col.groups],
        "exclusions": [{"path": x.path, "kind": x.kind, "reason": x.reason} for x in col.exclusions],
        "skipped": col.skipped,
    }


def dumps_summary(col: Collection) -> str:
    return json.dumps(collection_summary(col), indent=2, ensure_ascii=False) + "\n"
