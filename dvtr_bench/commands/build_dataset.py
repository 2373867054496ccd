"""``dvtr build-dataset``: raw footage + caption annotations -> a dataset in Hugging Face Hub layout."""

from __future__ import annotations

import json
from typing import Any

import click

from dvtr_bench.annotations.formats import FORMATS
from rich.markup import escape

from dvtr_bench.commands._ui import console, err_console, exit_with, progress_bars, run_cli
from dvtr_bench.video.segmenters import DEFAULT_SEGMENTER, SEGMENTERS, segmenter_names, segmenter_params

# Shorthand options for the most used segmenter parameters: option -> (segmenter, parameter). Each applies
# only when that segmenter is chosen; --segmenter-param reaches every parameter of every segmenter.
SHORTHANDS: dict[str, tuple[str, str]] = {
    "window_length": ("windows", "length"),
    "window_overlap": ("windows", "overlap"),
    "shot_threshold": ("shots", "threshold"),
}


def _segmenter_help() -> str:
    return "How clips are cut: " + "; ".join(f"{n}: {SEGMENTERS[n].description}" for n in segmenter_names()) + "."


def _segmenter_param_help() -> str:
    def defaults(name: str) -> str:
        return ", ".join(f"{p.name}={'?' if p.required else p.default}" for p in segmenter_params(name).values())

    return ("A parameter of the chosen segmenter, NAME=VALUE (repeatable; VALUE is read as JSON, else as text; "
            "wins over the shorthand options). Parameters and defaults: "
            + "; ".join(f"{n}: {defaults(n)}" for n in segmenter_names()) + ".")


def _parse_segmenter_params(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        name, eq, raw = item.partition("=")
        if not eq or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--segmenter-param")
        try:
            out[name.strip()] = json.loads(raw)
        except ValueError:
            out[name.strip()] = raw
    return out


def _parse_splits(value: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, _, frac = part.partition("=")
        try:
            out[name.strip()] = float(frac)
        except ValueError:
            raise click.BadParameter(f"expected name=fraction, got {part!r}") from None
    return out


@click.command("build-dataset")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--annotations", "-a", type=click.Path(exists=True),
              help="Caption annotations (jsonl, csv, parquet, MSR-VTT json, a CLIP4Clip folder or pickle).")
@click.option("--annotation-format", type=click.Choice(list(FORMATS)), default=None,
              help="Force the annotation format instead of sniffing it.")
@click.option("--delimiter", default=None, metavar="CHAR",
              help="CSV annotations: the field delimiter (default: sniffed from the header line).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Dataset folder to write.")
@click.option("--segmenter", type=click.Choice(segmenter_names()), default=DEFAULT_SEGMENTER, show_default=True,
              help=_segmenter_help())
@click.option("--segmenter-param", "segmenter_param", multiple=True, metavar="NAME=VALUE",
              help=_segmenter_param_help())
@click.option("--window-length", type=float, default=10.0, show_default=True, help="windows: clip length (s).")
@click.option("--window-overlap", type=float, default=0.0, show_default=True, help="windows: overlap (s).")
@click.option("--shot-threshold", type=float, default=None,
              help="shots: hard-cut score / local baseline ratio (default 3.0).")
@click.option("--min-len", type=float, default=None, help="Drop clips shorter than this (s).")
@click.option("--max-len", type=float, default=None, help="Split longer clips into equal pieces (s).")
@click.option("--frames", "num_frames", type=int, default=12, show_default=True, help="Frames stored per clip.")
@click.option("--frame-size", type=int, default=224, show_default=True, help="Short side of stored frames (px).")
@click.option("--jpeg-quality", type=int, default=95, show_default=True)
@click.option("--splits", "splits", default="train=0.7,validation=0.1,test=0.2", show_default=True,
              help="Split fractions, per source video.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split assignment.")
@click.option("--stratify", is_flag=True, help="Stratify the video split by label (scene kind).")
@click.option("--split-from-annotations/--redraw-splits", default=None,
              help="Take each video's split from the annotations (default: whenever they give splits, e.g. "
                   "CLIP4Clip split lists) or draw new ones per source video.")
@click.option("--telemetry-gps-order", type=click.Choice(["auto", "latlon", "lonlat"]), default="auto",
              show_default=True, help="Order of GPS(a,b) values in DJI .SRT sidecars (docs/telemetry.md).")
@click.option("--video-id", "video_ids", type=click.Choice(["path", "name"]), default="path", show_default=True,
              help="Video ids: the path under the input folder without the extension (cards/A/DJI_0001.MP4 "
                   "under cards/ is A/DJI_0001; unique), or the file name alone (collides across SD cards).")
@click.option("--keep-uncaptioned", is_flag=True, help="Keep clips that received no caption.")
@click.option("--min-overlap", type=float, default=0.5, show_default=True,
              help="Minimum IoU for a timed caption record to attach to a clip.")
@click.option("--export-clips", is_flag=True, help="Also write each clip as H.264 under clips/.")
@click.option("--clip-size", type=int, default=360, show_default=True, help="Short side of exported clips.")
@click.option("--clip-gop", type=float, default=0.5, show_default=True, help="Keyframe interval of clips (s).")
@click.option("--shard-size-mb", type=float, default=256.0, show_default=True, help="Maximum Parquet shard size.")
@click.option("--workers", "-j", type=int, default=None, help="Parallel jobs (default: CPU count, max 8).")
@click.option("--executor", type=click.Choice(["process", "ray"]), default="process", show_default=True)
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster (default: start one here).")
@click.option("--no-resume", is_flag=True, help="Recompute every video even when a staged result exists.")
@click.option("--license", "license_", default="other", show_default=True,
              help="License field of the card (a Hub licence identifier, or other).")
@click.option("--license-name", default=None, help="With --license other: the licence's name, for the card.")
@click.option("--license-link", default=None, help="With --license other: a link to the licence's text.")
@click.option("--name", "pretty_name", default="dvtr drone video-text dataset", help="Pretty name of the card.")
@click.option("--push-to-hub", "push_repo", default=None, metavar="REPO", help="Upload to this Hub dataset repo.")
@click.option("--private", is_flag=True, help="Create the Hub repo as private.")
def build_dataset(inputs: tuple[str, ...], annotations: str | None, annotation_format: str | None, out: str,
                  segmenter: str, segmenter_param: tuple[str, ...], window_length: float, window_overlap: float,
                  shot_threshold: float | None,
                  min_len: float | None, max_len: float | None, num_frames: int, frame_size: int, jpeg_quality: int,
                  splits: str, seed: int, stratify: bool, split_from_annotations: bool | None,
                  telemetry_gps_order: str, video_ids: str,
                  keep_uncaptioned: bool, delimiter: str | None,
                  min_overlap: float, export_clips: bool, clip_size: int, clip_gop: float, shard_size_mb: float,
                  workers: int | None, executor: str, ray_address: str | None, no_resume: bool, license_: str,
                  license_name: str | None, license_link: str | None, pretty_name: str, push_repo: str | None,
                  private: bool) -> None:
    """Build a dataset from footage (files or folders) and caption annotations.

    \b
    Example:
      dvtr build-dataset footage/videos --annotations footage/annotations.jsonl --out ds/
    Re-running the same command resumes: finished videos are not decoded again.
    Exit code 3 when some videos failed (listed in build/manifest.parquet with the reason).
    """
    from dvtr_bench.dataset.pipeline import build
    from dvtr_bench.dataset.config import BuildConfig

    shorthands = {"window_length": window_length, "window_overlap": window_overlap, "shot_threshold": shot_threshold}
    seg_params: dict[str, Any] = {param: shorthands[option] for option, (name, param) in SHORTHANDS.items()
                                  if name == segmenter and shorthands[option] is not None}
    seg_params.update(_parse_segmenter_params(segmenter_param))
    config = run_cli(lambda: BuildConfig(
        segmenter=segmenter, segmenter_params=seg_params, min_len=min_len, max_len=max_len, num_frames=num_frames,
        frame_short_side=frame_size, jpeg_quality=jpeg_quality, min_overlap=min_overlap,
        keep_uncaptioned=keep_uncaptioned, splits=_parse_splits(splits), split_seed=seed, stratify=stratify,
        split_from_annotations=split_from_annotations, video_ids=video_ids,
        telemetry_gps_order=telemetry_gps_order, export_clips=export_clips,
        clip_short_side=clip_size,
        clip_gop_s=clip_gop, shard_max_mb=shard_size_mb, license=license_, license_name=license_name,
        license_link=license_link, pretty_name=pretty_name))
    if push_repo:
        from dvtr_bench.dataset.hub import preflight

        # Before the build: a missing token or network must not cost a whole build first.
        user = run_cli(lambda: preflight(push_repo))
        console.print(f"Hub: will push to [bold]{escape(push_repo)}[/bold] as {escape(user)}")
    options = {"delimiter": delimiter} if delimiter is not None else {}
    with progress_bars() as progress:
        result = run_cli(lambda: build(list(inputs), annotations, out, config, progress, workers=workers,
                                       executor=executor, ray_address=ray_address,
                                       annotation_format=annotation_format, resume=not no_resume,
                                       annotation_options=options))
    if result.zero_clip_cause is not None:
        _caption_match(result)
        err_console.print(f"[red]error:[/red] no clip was made, so no dataset was written: "
                          f"{escape(result.zero_clip_cause)}", soft_wrap=True)
        exit_with(1)
    _summary(result)
    if push_repo:
        from dvtr_bench.dataset.hub import push_to_hub

        url = run_cli(lambda: push_to_hub(out, push_repo, private=private))
        console.print(f"pushed to [bold]{push_repo}[/bold]: {url}")
    if result.partial:
        err_console.print(f"[yellow]partial build:[/yellow] {result.n_failed} video(s) failed; fix or remove them "
                          "and re-run to resume")
        exit_with(3)


def _caption_match(result: Any) -> None:
    # Records that name no video are the likeliest first mistake: one line, on its own, before anything else.
    line = result.caption_match.line() if result.caption_match is not None else None
    if line:
        err_console.print(f"[yellow]caption ids:[/yellow] {escape(line)}", soft_wrap=True)


def _problems(problems: list[Any]) -> None:
    """Annotation problems grouped by kind, with a count and the first example of each (unknown videos are
    already summarised by the caption-id line)."""
    from collections import Counter

    counts = Counter(p.code for p in problems if p.code != "unknown_video")
    first = {}
    for p in problems:
        first.setdefault(p.code, p)
    for code, n in counts.most_common():
        console.print(f"annotation problems: {n} x {code} (first: {escape(str(first[code]))})", soft_wrap=True)


def _summary(result: Any) -> None:
    from rich.table import Table

    t = Table(title=f"dataset {result.out_dir}", show_lines=False)
    for col in ("split", "videos", "clips", "captions"):
        t.add_column(col, justify="left" if col == "split" else "right")
    for s, c in result.per_split.items():
        t.add_row(s, str(c["videos"]), str(c["clips"]), str(c["captions"]))
    t.add_row("all", str(result.n_ok), str(result.n_clips), str(result.n_captions), style="bold")
    console.print(t)
    tm = result.timings
    console.print(f"videos: {result.n_videos} ({result.n_ok} ok, {result.n_failed} failed, "
                  f"{result.n_resumed} resumed)   time: {tm.get('total_s', 0):.1f}s "
                  f"(frame passes {tm.get('pass_s', 0):.1f}s, clip export {tm.get('export_s', 0):.1f}s)")
    for vid, reason in result.failed:
        console.print(f"  [red]failed[/red] {vid}: {reason}")
    console.print(f"splits: {escape(result.split_source)}", soft_wrap=True)
    _caption_match(result)
    for w in result.telemetry_warnings[:10]:
        err_console.print(f"[yellow]telemetry:[/yellow] {escape(w)}", soft_wrap=True)
    if len(result.telemetry_warnings) > 10:
        err_console.print(f"[yellow]telemetry:[/yellow] ... and {len(result.telemetry_warnings) - 10} more "
                          "(build/manifest.parquet, telemetry_warnings)")
    _problems(result.annotation_problems)
    a = result.audit
    if a is not None:
        c = a.captions
        w = c.caption_words
        console.print("audit: caption words " + (f"min {w.min} median {w.median:g} max {w.max}" if w.n else "-")
                      + f"; identical captions on different clips: {len(c.ambiguous_captions)}"
                      + f"; clips without captions: {len(c.clips_without_captions)}"
                      + f"; near-duplicate clip pairs: {len(a.near_duplicates)} "
                        f"({sum(d.cross_split for d in a.near_duplicates)} across splits)"
                      + f"; videos in several splits: {len(c.videos_in_several_splits)}", soft_wrap=True)
        t = c.split_ambiguity.get("test")
        if t is not None:
            console.print(f"test split: {t.shared_captions} of {t.captions} captions are also a caption of another "
                          f"test clip; Recall@1 ceiling for any model: text->video {t.t2v_r1_ceiling:.2f}, "
                          f"video->text {t.v2t_r1_ceiling:.2f}", soft_wrap=True)
