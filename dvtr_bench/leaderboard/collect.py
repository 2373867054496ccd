"""Collect result records, check them, group the comparable ones and rank them.

Rules (docs/leaderboard.md):

* nothing is lost: every file that looks like a record (named ``record.json``, or JSON holding a record
  key, or text that names one) is either a row or left out with its reason; JSON files that are clearly
  something else (configs, logs) are listed as skipped; symbolic links found in folders are refused;
* every record is read with bounded size, depth and numbers (:func:`dvtr_bench.protocol.record.read_record`)
  and validated against the record schema and its internal consistency (``validate_record``);
* records are grouped by (dataset fingerprint, protocol version); groups are never mixed -- numbers on
  different test data or under different protocols are not comparable;
* inside a group every record must describe the same test split size (n_clips, n_captions);
* the same run found twice (same method, config hash and score file hashes) is listed once;
* with ``verify=True`` every metric is recomputed from the saved score matrices (sha256 checked), every
  score path must stay inside its record's folder, a score file that names its test split must name the
  claimed one, and the records of a group must score the same captions and clips; with ``references`` (test
  splits read from datasets) each record is checked against the split itself;
* rows are ranked by mean RSum (descending), then mean text->video R@1, then mean video->text R@1.
  Transductive and re-ranked records are ranked with the others but carry visible marks; a re-ranked run
  is always its own record, hence its own row.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from dvtr_bench.errors import InputError
from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.protocol import v1
from dvtr_bench.protocol.binding import TestSplit
from dvtr_bench.protocol.record import read_record, validate_record, verify_record

# Keys whose presence makes a JSON file found while scanning a folder a candidate record. Other JSON files
# (configs, logs) sitting next to the records are skipped and listed; a file named explicitly is always
# treated as a record.
_RECORD_KEYS = ("schema_version", "protocol_version", "runs", "summary")
RECORD_NAME = "record.json"
_LOOKS_LIKE_RECORD = re.compile(rb'"(?:schema_version|protocol_version)"\s*:')

#: Kinds of exclusion. ``verify``, ``binding`` and ``dataset``: the record disagrees with its score files or
#: with the data it claims (exit 1). ``duplicate``: the same run is listed once (exit 3). Every other kind is a
#: rejected file (exit 4).
DISAGREE_KINDS = ("verify", "binding", "dataset")
REJECT_KINDS = ("unreadable", "invalid", "symlink", "unsafe", "mismatch", "missing")


@dataclass
class Entry:
    """One accepted record and where it came from."""

    path: Path
    record: dict[str, Any]
    verified: Optional[bool] = None     # None: not verified; True: recomputed and equal
    bound: Optional[bool] = None        # None: not verified; False: its score files do not name their split
    dataset_checked: bool = False       # checked against a test split read from the dataset itself
    content: Optional[tuple[str, Optional[str]]] = None   # what its score files score (ScoreFile.content_key)

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
    kind: str = "invalid"     # one of DISAGREE_KINDS, REJECT_KINDS or "duplicate"


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
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", self.dataset_name).strip("-")[:80] or "dataset"
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
    dataset_checked: bool = False

    @property
    def n_accepted(self) -> int:
        return sum(len(g.entries) for g in self.groups)

    @property
    def verify_failures(self) -> list[Exclusion]:
        """Records that disagree with their score files or with the data they claim."""
        return [e for e in self.exclusions if e.kind in DISAGREE_KINDS]

    @property
    def rejected(self) -> list[Exclusion]:
        """Files that look like records but could not be used."""
        return [e for e in self.exclusions if e.kind in REJECT_KINDS]

    @property
    def duplicates(self) -> list[Exclusion]:
        return [e for e in self.exclusions if e.kind == "duplicate"]

    @property
    def unbound(self) -> list[Entry]:
        """Verified rows whose score files do not name their test split and were not checked against one."""
        return [e for g in self.groups for e in g.entries if e.bound is False and not e.dataset_checked]


def find_record_files(inputs: Sequence[str | Path]) -> tuple[list[Path], list[Path], list[Exclusion]]:
    """Expand inputs (record files or folders, searched recursively for ``*.json``, symbolic links included).

    Returns (explicit files, files found in folders, exclusions for inputs that do not exist).
    """
    explicit: list[Path] = []
    scanned: list[Path] = []
    missing: list[Exclusion] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            scanned.extend(_scan(p))
        elif p.is_file():
            explicit.append(p)
        else:
            missing.append(Exclusion(str(p), "no such file or folder" + (" (a dangling symbolic link)"
                                                                         if p.is_symlink() else ""), kind="missing"))
    return explicit, scanned, missing


def _scan(folder: Path) -> list[Path]:
    # os.walk does not follow symbolic links to folders; links to files (and dangling ones) are listed
    # here so that the caller can refuse them by name instead of losing them.
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(Path(root) / d for d in dirs if (Path(root) / d).is_symlink())
        found.extend(Path(root) / f for f in files if f.endswith(".json") and not f.startswith("."))
    return sorted(found)


def collect(inputs: Sequence[str | Path], verify: bool = False, chunk_size: Optional[int] = None,
            progress: Optional[ProgressFn] = None, references: Sequence[TestSplit] = ()) -> Collection:
    """Read, check, (optionally) verify, group and rank every record under ``inputs``.

    Args:
        inputs: record files and/or folders (folders are searched recursively for ``*.json``).
        verify: recompute every metric from the saved score files and check what binds each record to its
            data; records that disagree are left out.
        chunk_size: passed to the metrics engine when verifying.
        progress: optional callback; task ``"records"`` counted in files.
        references: test splits read from datasets (``TestSplit.from_dataset``); with ``verify``, every
            record must claim one of them and score exactly its clips and captions.
    """
    explicit, scanned, exclusions = find_record_files(inputs)
    skipped: list[str] = []
    seen: set[Path] = set()
    candidates: list[tuple[Path, dict[str, Any]]] = []
    files = [(p, True) for p in explicit] + [(p, False) for p in scanned]
    total = len(files)
    for i, (path, named) in enumerate(files):
        if progress is not None:
            progress(Progress("records", completed=i + 1, total=total))
        if not named and path.is_symlink():
            target = os.readlink(path)
            if not path.exists():
                exclusions.append(Exclusion(str(path), f"dangling symbolic link to {target}: the record it "
                                            "pointed to is gone", kind="symlink"))
            elif path.is_dir():
                if any(_looks_like_record(q) for q in sorted(path.rglob("*.json"))[:1000]):
                    exclusions.append(Exclusion(str(path), f"symbolic link to the folder {target}, which holds "
                                                "records: folders are not followed through links (name the target "
                                                "to include it)", kind="symlink"))
                else:
                    skipped.append(str(path))
            elif _looks_like_record(path):
                exclusions.append(Exclusion(str(path), f"symbolic link to {target}: records are read from "
                                            "regular files only (name the target to include it)", kind="symlink"))
            else:
                skipped.append(str(path))
            continue
        resolved = path.resolve()
        if resolved in seen:
            continue    # the same file named twice (a folder and a file inside it): one row, not a duplicate
        seen.add(resolved)
        try:
            rec = read_record(path)
        except InputError as exc:
            if named or _looks_like_record(path):
                exclusions.append(Exclusion(str(path), exc.reason, kind="unreadable"))
            else:
                skipped.append(str(path))
            continue
        if not named and path.name != RECORD_NAME and not any(k in rec for k in _RECORD_KEYS):
            skipped.append(str(path))
            continue
        problems = validate_record(rec)
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            exclusions.append(Exclusion(str(path), "invalid record: " + "; ".join(problems[:3]) + more))
            continue
        candidates.append((path, rec))

    refs = {r.fingerprint: r for r in references}
    entries: list[Entry] = []
    for j, (path, rec) in enumerate(candidates):
        entry = Entry(path=path, record=rec)
        if verify:
            fp = rec["dataset"]["fingerprint"]
            ref = refs.get(fp)
            result = verify_record(rec, path, chunk_size=chunk_size, reference=ref)
            if refs and ref is None:
                result.problems.append(("dataset", f"its test split {fp[:16]}… is not the test split of any "
                                                   "--dataset given (" + ", ".join(f[:16] + "…" for f in refs) + ")"))
            if progress is not None:
                progress(Progress("verify", completed=j + 1, total=len(candidates)))
            if result.problems:
                more = f" (+{len(result.problems) - 3} more)" if len(result.problems) > 3 else ""
                kind = result.kind or "verify"
                lead = {"verify": "numbers disagree with the score files: ",
                        "binding": "the score files do not score the data the record claims: ",
                        "dataset": "disagrees with the dataset: ",
                        "unsafe": "unsafe score path: "}[kind]
                exclusions.append(Exclusion(str(path), lead + "; ".join(t for _, t in result.problems[:3]) + more,
                                            kind=kind))
                continue
            entry.verified = True
            entry.bound = result.bound
            entry.dataset_checked = ref is not None
            entry.content = result.score_files[0].content_key() if result.score_files else None
        entries.append(entry)

    groups = _group(entries, exclusions)
    return Collection(groups=groups, exclusions=exclusions, n_files=total, skipped=skipped, verified=verify,
                      dataset_checked=verify and bool(refs))


def _looks_like_record(path: Path) -> bool:
    """A file that should have been a record: named like one, or naming a record key near its start."""
    if path.name == RECORD_NAME:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return _LOOKS_LIKE_RECORD.search(head) is not None


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
        kept: list[Entry] = []
        for e in sorted(members, key=lambda e: str(e.path)):
            ds = e.record["dataset"]
            if (ds["n_clips"], ds["n_captions"]) != (n_clips, n_captions):
                exclusions.append(Exclusion(
                    str(e.path), f"dataset {fp[:12]}... has {n_clips} clips / {n_captions} captions in the other "
                    f"records of its group, this record says {ds['n_clips']} / {ds['n_captions']}", kind="mismatch"))
                continue
            kept.append(e)
        seen: dict[tuple[Any, ...], Entry] = {}
        for e in _same_content(kept, fp, exclusions):
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


def _same_content(members: list[Entry], fp: str, exclusions: list[Exclusion]) -> list[Entry]:
    """Verified records claiming one test split must score the same captions and clips.

    Records checked against the dataset, or whose score files name their split, are believed first: the
    others must agree with their majority; when they have none (no such record, or a tie), with the majority
    of all. With no majority at all, every disagreeing record is left out: nothing here says which of them is
    right, and ``--dataset`` can tell.
    """
    known = [e for e in members if e.content is not None]
    if len({e.content for e in known}) <= 1:
        return members
    ref = _majority([e for e in known if e.dataset_checked or e.bound]) or _majority(known)
    out = []
    for e in members:
        if e.content is None or (ref is not None and _agrees(e.content, ref)):
            out.append(e)
            continue
        others = sum(1 for o in known if o is not e and not _agrees(e.content, o.content))
        exclusions.append(Exclusion(str(e.path), f"the score files do not score the data the record claims: they "
                                    f"score other clips or captions than {others} other record(s) claiming test "
                                    f"split {fp[:16]}… (check against the dataset with --verify --dataset DIR)",
                                    kind="binding"))
    return out


def _majority(entries: list[Entry]) -> Optional[tuple[str, Optional[str]]]:
    counts = Counter(e.content for e in entries).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def _agrees(a: Optional[tuple[str, Optional[str]]], b: Optional[tuple[str, Optional[str]]]) -> bool:
    if a is None or b is None:
        return True
    # Caption hashes are compared only when both files know their texts (version-1 files may not).
    return a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])


def collection_summary(col: Collection) -> dict[str, Any]:
    """A JSON-serialisable summary (written as summary.json next to the tables)."""
    return {
        "verified": col.verified,
        "dataset_checked": col.dataset_checked,
        "n_files": col.n_files,
        "n_accepted": col.n_accepted,
        "groups": [{
            "slug": g.slug, "dataset": g.dataset_name, "fingerprint": g.fingerprint,
            "protocol_version": g.protocol_version, "n_clips": g.n_clips, "n_captions": g.n_captions,
            "rows": [{"rank": i + 1, "method": e.record["method"], "record": str(e.path),
                      "rsum": e.mean["rsum"], "transductive": e.transductive, "reranked": e.reranked,
                      "verified": e.verified, "bound": e.bound, "dataset_checked": e.dataset_checked}
                     for i, e in enumerate(g.entries)],
        } for g in col.groups if g.entries],
        "exclusions": [{"path": x.path, "kind": x.kind, "reason": x.reason} for x in col.exclusions],
        "skipped": col.skipped,
    }


def dumps_summary(col: Collection) -> str:
    return json.dumps(collection_summary(col), indent=2, ensure_ascii=False) + "\n"
