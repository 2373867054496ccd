"""`dvtr leaderboard`: collect result records, check comparability, rank, and render tables and plots.

Library entry point: :func:`build_leaderboard`. It never prints; the CLI (dvtr_bench/commands/leaderboard.py)
shows the outcome.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from dvtr_bench.leaderboard.collect import (DISAGREE_KINDS, REJECT_KINDS, Collection, Entry, Exclusion, Group,
                                            collect, collection_summary, rank_key)
from dvtr_bench.leaderboard.render import FORMATS, to_markdown, write_group
from dvtr_bench.progress import ProgressFn
from dvtr_bench.protocol.binding import TestSplit

DEFAULT_RESULTS = Path("leaderboard") / "results"

__all__ = ["DEFAULT_RESULTS", "DISAGREE_KINDS", "FORMATS", "REJECT_KINDS", "Collection", "Entry", "Exclusion", "Group",
           "LeaderboardResult", "TestSplit", "build_leaderboard", "collect", "collection_summary", "rank_key",
           "render_index", "unbound_note"]


@dataclass
class LeaderboardResult:
    """What :func:`build_leaderboard` found and wrote."""

    collection: Collection
    out_dir: Path
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)   # group slug -> format -> path
    index: Optional[Path] = None
    summary: Optional[Path] = None


def build_leaderboard(inputs: Sequence[str | Path], out_dir: str | Path, verify: bool = False,
                      formats: Sequence[str] = FORMATS, chunk_size: Optional[int] = None,
                      progress: Optional[ProgressFn] = None, references: Sequence[TestSplit] = ()
                      ) -> LeaderboardResult:
    """Collect records under ``inputs`` and write, per comparable group, every format in ``formats``.

    Layout of ``out_dir``: ``index.md`` (every group + what was left out, for a README), ``index.html``
    (links and what was left out), ``summary.json`` (machine-readable outcome) and
    ``<group slug>/leaderboard.<ext>`` for each format. Groups with no accepted record are not written.
    ``references``: test splits read from datasets, checked with ``verify``. See
    :func:`dvtr_bench.leaderboard.collect.collect` for the checks.
    """
    col = collect(inputs, verify=verify, chunk_size=chunk_size, progress=progress, references=references)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = LeaderboardResult(collection=col, out_dir=out)
    from dvtr_bench._version import __version__

    for g in col.groups:
        if g.entries:
            res.outputs[g.slug] = write_group(g, out, tuple(formats), generated_by=f"dvtr {__version__}")
    res.index = out / "index.md"
    res.index.write_text(render_index(col), encoding="utf-8")
    (out / "index.html").write_text(_index_html(col, res.outputs), encoding="utf-8")
    res.summary = out / "summary.json"
    summary = collection_summary(col)
    # What made the files: the plots (and the page that inlines one) are byte-identical only under the same
    # matplotlib, which tests/test_leaderboard_committed.py checks before comparing them.
    summary["generated_with"] = {"dvtr": __version__, "matplotlib": _matplotlib_version()}
    res.summary.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return res


def _matplotlib_version() -> str:
    import matplotlib

    return str(matplotlib.__version__)


def render_index(col: Collection) -> str:
    """Markdown of every group (largest first), then every file that was left out or skipped, and why."""
    parts = ["# dvtr leaderboard", ""]
    if col.verified:
        parts += ["Every row was verified: its metrics were recomputed from the saved score matrices"
                  + (", and checked against the dataset's test split." if col.dataset_checked else "."), ""]
    if col.unbound:
        parts += [unbound_note(col), ""]
    for g in col.groups:
        if g.entries:
            parts.append(to_markdown(g, heading_level=2))
    if col.exclusions:
        parts += ["## Left out", "", "| Record | Kind | Why |", "|:--|:--|:--|"]
        parts += [f"| `{_md_cell(x.path)}` | {x.kind} | {_md_cell(x.reason)} |" for x in col.exclusions]
        parts.append("")
    if col.skipped:
        parts += ["## Skipped (not result records)", ""]
        parts += [f"- `{_md_cell(p)}`" for p in col.skipped]
        parts.append("")
    return "\n".join(parts)


def unbound_note(col: Collection) -> str:
    """One sentence on the verified rows whose score files do not name the test split they score."""
    n = len(col.unbound)
    return (f"{n} row(s) are unbound: their score files (format version 1) do not carry the clip digests, so "
            "the test split they claim was checked only against the other records of their group, not against "
            "the scores themselves (check them with `--verify --dataset DIR`, or re-run them).")


def _md_cell(s: str) -> str:
    return " ".join(s.split()).replace("|", "\\|").replace("`", "'")


def _index_html(col: Collection, outputs: dict[str, dict[str, Path]]) -> str:
    items = []
    for g in col.groups:
        if g.slug in outputs:
            items.append(f'<li><a href="{html.escape(g.slug)}/leaderboard.html">{html.escape(g.title)}</a> '
                         f"– {len(g.entries)} rows, fingerprint <code>{html.escape(g.fingerprint[:16])}</code></li>")
    left = "".join(f"<li><code>{html.escape(x.path)}</code> ({html.escape(x.kind)}): {html.escape(x.reason)}</li>"
                   for x in col.exclusions)
    note = f"<p>{html.escape(unbound_note(col))}</p>" if col.unbound else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dvtr leaderboard</title>"
            "</head><body style=\"font-family:system-ui,sans-serif;margin:2rem\"><h1>dvtr leaderboard</h1>"
            f"{note}<ul>{''.join(items)}</ul>" + (f"<h2>Left out</h2><ul>{left}</ul>" if left else "")
            + "</body></html>\n")
