"""``dvtr annotations validate|stats|convert``: check, summarise and convert caption annotation files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from dvtr_bench.annotations import (FORMATS, WRITE_FORMATS, Problem, audit_records, read_annotations,
                                    sniff_format, validate, video_id_from_path, write_annotations)
from dvtr_bench.annotations.formats import output_format
from dvtr_bench.annotations.validate import WARNING
from dvtr_bench.commands._ui import console, err_console, exit_with, run_cli
from dvtr_bench.errors import InputError

_FORMAT_HELP = "annotation format (default: guessed from the extension and content)"


@click.group("annotations")
def annotations() -> None:
    """Validate, summarise and convert caption annotation files.

    \b
    Formats: jsonl (canonical, see annotations/schema.json), json (array of records), csv/tsv,
    parquet, msrvtt (MSR-VTT-style JSON), clip4clip (raw-captions.pkl + *_list.txt; read with a
    restricted unpickler that never runs code). Examples of each are in the repository's annotations/.
    """


def _read_opts(f: Any) -> Any:
    f = click.option("--caption-sep", default="|", show_default=True,
                     help="separator of the captions column in CSV/Parquet")(f)
    f = click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help=_FORMAT_HELP)(f)
    return f


def _reader_kw(fmt: str, caption_sep: str) -> dict[str, Any]:
    return {"caption_sep": caption_sep} if fmt in ("csv", "parquet") else {}


def video_durations(folder: str | Path) -> tuple[dict[str, float | None], list[Problem]]:
    """Durations of the footage under ``folder`` keyed by video id (file stem); unreadable files map to None."""
    from dvtr_bench.video.probe import list_videos, probe

    durations: dict[str, float | None] = {}
    problems: list[Problem] = []
    for path in list_videos([folder]):
        vid = video_id_from_path(path)
        if vid in durations:
            problems.append(Problem(str(path), None, f"another file in {folder} also has the video id {vid!r}",
                                    "duplicate_video", vid, None, WARNING))
            continue
        try:
            durations[vid] = probe(path).duration_s
        except InputError as exc:
            durations[vid] = None
            problems.append(Problem(str(path), None, f"cannot read the video, its times are not checked: "
                                    f"{exc.reason}", "unreadable_video", vid, None, WARNING))
    return durations, problems


@annotations.command("validate")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--videos", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="folder of the footage: report unknown videos and times beyond each video's duration")
@_read_opts
@click.option("--tolerance", type=float, default=1e-3, show_default=True,
              help="seconds an end time may exceed the video's duration (float slack)")
@click.option("--strict", is_flag=True, help="fail on warnings too (e.g. a caption repeated within a record)")
@click.option("--json", "as_json", is_flag=True, help="print the problems as JSON lines")
def validate_cmd(file: Path, videos: Path | None, fmt: str | None, caption_sep: str, tolerance: float,
                 strict: bool, as_json: bool) -> None:
    """Check FILE and list every problem with its file and record; exit 2 if there is any."""
    def run() -> tuple[list[Any], list[Problem], dict[str, float | None] | None]:
        f = fmt or sniff_format(file)
        problems: list[Problem] = []
        records = read_annotations(file, f, problems=problems, **_reader_kw(f, caption_sep))
        durations = None
        if videos is not None:
            durations, video_problems = video_durations(videos)
            problems += video_problems
        problems += validate(records, durations, file=file, tolerance_s=tolerance)
        return records, problems, durations

    records, problems, durations = run_cli(run)
    failing = [p for p in problems if strict or p.severity != WARNING]
    if as_json:
        for p in problems:
            click.echo(json.dumps(p.to_dict(), ensure_ascii=False))
    else:
        for p in problems:
            colour = "yellow" if p.severity == WARNING else "red"
            console.print(f"[{colour}]{escape(str(p))}[/{colour}]", soft_wrap=True)
        n_caps = sum(len(r.captions) for r in records)
        checked = f", checked against {len(durations)} videos in {videos}" if durations is not None else ""
        verdict = "[red]FAILED[/red]" if failing else "[green]OK[/green]"
        n_err = sum(p.severity != WARNING for p in problems)
        console.print(f"{verdict} {escape(str(file))}: {len(records)} records, {n_caps} captions{escape(checked)}; "
                      f"{n_err} error(s), {len(problems) - n_err} warning(s)", soft_wrap=True)
    if failing:
        exit_with(2)


@annotations.command("stats")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@_read_opts
@click.option("--json", "as_json", is_flag=True, help="print the statistics as JSON")
def stats_cmd(file: Path, fmt: str | None, caption_sep: str, as_json: bool) -> None:
    """Summarise FILE: records, videos, captions, caption lengths, duplicates."""
    def run() -> Any:
        f = fmt or sniff_format(file)
        return f, read_annotations(file, f, **_reader_kw(f, caption_sep))

    f, records = run_cli(run)
    audit = audit_records(records)
    clip_ids = [r.clip_id for r in records if r.clip_id]
    dup_clip_ids = len(clip_ids) - len(set(clip_ids))
    facts = {
        "file": str(file), "format": f, "records": len(records), "videos": len({r.video_id for r in records}),
        "records with clip_id": len(clip_ids), "records with times": sum(r.has_span for r in records),
        "whole-video records": sum(r.start_s is None and r.end_s is None and not r.clip_id for r in records),
        "captions": sum(len(r.captions) for r in records),
        "labels": len({r.label for r in records if r.label}),
        "duplicate clip ids": dup_clip_ids,
        "ambiguous captions": len(audit.ambiguous_captions),
        "videos in several splits": len(audit.videos_in_several_splits),
    }
    if as_json:
        click.echo(json.dumps({"summary": facts, "audit": audit.to_dict()}, ensure_ascii=False, indent=1))
        return

    t = Table(title=f"{file.name} ({f})", show_header=False)
    t.add_column("", style="bold")
    t.add_column("", justify="right")
    for k, v in facts.items():
        if k in ("file", "format"):
            continue
        bad = k in ("duplicate clip ids", "ambiguous captions", "videos in several splits") and v
        t.add_row(k, f"[red]{v}[/red]" if bad else str(v))
    console.print(t)
    if audit.per_split:
        s = Table(title="splits")
        for col in ("split", "records", "captions", "videos"):
            s.add_column(col, justify="left" if col == "split" else "right")
        for name, c in audit.per_split.items():
            s.add_row(name, str(c["clips"]), str(c["captions"]), str(c.get("videos", "")))
        console.print(s)
    for title, dist in (("caption length (words)", audit.caption_words), ("captions per record", audit.captions_per_clip)):
        if dist.n == 0:
            continue
        console.print(f"[bold]{title}[/bold]: min {dist.min}, median {dist.median:g}, mean {dist.mean:g}, "
                      f"max {dist.max}", soft_wrap=True)
        d = Table()
        for b in dist.histogram:
            d.add_column(b, justify="right")
        d.add_row(*(str(v) for v in dist.histogram.values()))
        console.print(d)
    if audit.ambiguous_captions:
        a = Table(title="identical captions of different records (first 10)")
        a.add_column("caption")
        a.add_column("records")
        for amb in audit.ambiguous_captions[:10]:
            a.add_row(escape(amb.caption), escape(", ".join(amb.clip_ids)))
        console.print(a)
    for v, splits in audit.videos_in_several_splits.items():
        console.print(f"[red]video {escape(v)} is in several splits: {', '.join(splits)}[/red]")
    for note in audit.notes:
        console.print(escape(note))


@annotations.command("convert")
@click.argument("src", metavar="IN", type=click.Path(exists=True, path_type=Path))
@click.argument("dst", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--from", "from_fmt", type=click.Choice(FORMATS), default=None, help=_FORMAT_HELP)
@click.option("--to", "to_fmt", type=click.Choice(WRITE_FORMATS), default=None,
              help="output format (default: from OUT's extension: .jsonl .csv .parquet .json=msrvtt, "
                   "a folder = clip4clip)")
@click.option("--caption-sep", default="|", show_default=True, help="separator of a captions column in the input")
def convert_cmd(src: Path, dst: Path, from_fmt: str | None, to_fmt: str | None, caption_sep: str) -> None:
    """Convert IN to OUT (any supported format to JSONL, JSON, CSV, Parquet, MSR-VTT JSON or CLIP4Clip)."""
    def run() -> tuple[str, str, list[Any]]:
        if dst.exists() and src.resolve() == dst.resolve():
            raise InputError("IN and OUT are the same path", dst)
        f_in = from_fmt or sniff_format(src)
        f_out = to_fmt or output_format(dst)
        records = read_annotations(src, f_in, **_reader_kw(f_in, caption_sep))
        write_annotations(records, dst, f_out)
        return f_in, f_out, records

    f_in, f_out, records = run_cli(run)
    n_caps = sum(len(r.captions) for r in records)
    console.print(f"wrote {len(records)} records ({n_caps} captions) from {escape(str(src))} ({f_in}) "
                  f"to {escape(str(dst))} ({f_out})", soft_wrap=True)
    if f_out == "clip4clip":
        lost = sum(bool(r.has_span or r.label or r.meta or (r.clip_id and r.video_id != r.clip_id)) for r in records)
        if lost:
            err_console.print(f"[yellow]note:[/yellow] the CLIP4Clip layout keeps only ids, captions and splits; "
                              f"times, labels, meta and source video ids of {lost} record(s) were dropped", soft_wrap=True)
