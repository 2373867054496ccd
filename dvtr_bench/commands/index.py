"""``dvtr index``: embed the clips of a dataset, or of raw footage, with a trained model into a searchable index."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from dvtr_bench.commands._ui import console, err_console, exit_with, progress_bars, run_cli
from dvtr_bench.commands.build_dataset import _parse_segmenter_params, _segmenter_help, _segmenter_param_help
from dvtr_bench.video.segmenters import DEFAULT_SEGMENTER, segmenter_names


def _parse_pretrained(value: str | None) -> Any:
    if value is None:
        return "openai"
    return None if value.strip().lower() in ("none", "null", "") else value


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that name a model, shared by `dvtr index` and `dvtr search`."""
    opts = [
        click.option("--run", "run", default=None, metavar="RUN_DIR|CHECKPOINT",
                     help="A dvtr run (the folder `dvtr run-baseline` wrote, or its seed<S>/best.pt): its checkpoint "
                          "selected on validation."),
        click.option("--seed", type=int, default=None, help="Which seed of the run (default: its first)."),
        click.option("--backbone", default=None, metavar="NAME",
                     help="Zero-shot instead: an open_clip model name (ViT-B-32, ViT-B-16, dvtr-tiny, ...)."),
        click.option("--pretrained", default=None, metavar="TAG|PATH|none",
                     help="With --backbone: open_clip pretrained tag, local checkpoint or none [default: openai]."),
        click.option("--method", default="meanP", show_default=True,
                     help="With --backbone: the method on top (meanP = CLIP's zero-shot)."),
        click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N"),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def load_model_cli(run: str | None, seed: int | None, backbone: str | None, pretrained: str | None, method: str,
                   device: str) -> Any:
    """The model named on the command line (exit 2 with the reason when it cannot be loaded)."""
    from dvtr_bench.search.model import load_model, resolve_device

    return run_cli(lambda: load_model(run=run, seed=seed, backbone=backbone, pretrained=_parse_pretrained(pretrained),
                                      method=method, device=resolve_device(device)))


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@click.command("index")
@click.argument("source", metavar="SOURCE")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The index folder to write (an index already there is replaced once the new one is complete).")
@model_options
@click.option("--split", "splits", multiple=True, metavar="NAME",
              help="Dataset split to index (repeatable; default: every split).")
@click.option("--approximate", type=click.Choice(["ivf", "hnsw"]), is_flag=False, flag_value="ivf", default=None,
              help="Approximate search for large archives instead of exact inner product: faiss IVF (the default "
                   "when no kind is given) or HNSW.")
@click.option("--nlist", type=click.IntRange(1), default=None,
              help="IVF: number of lists [default: about 4 sqrt(clips)].")
@click.option("--nprobe", type=click.IntRange(1), default=None,
              help="IVF: lists scanned per query (higher: better recall, slower) [default: nlist / 16].")
@click.option("--hnsw-m", type=click.IntRange(4, 256), default=32, show_default=True, help="HNSW graph degree.")
@click.option("--ef-construction", type=click.IntRange(8), default=200, show_default=True,
              help="HNSW build breadth.")
@click.option("--ef-search", type=click.IntRange(1), default=512, show_default=True,
              help="HNSW default search breadth (higher: better recall, slower).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Clips per forward pass.")
@click.option("--loader-workers", type=click.IntRange(0), default=0, show_default=True,
              help="Processes decoding frames beside the model (0: in this process, best on few cores).")
@click.option("--annotations", "-a", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Footage only: caption file whose captions and metadata (telemetry) attach to the clips.")
@click.option("--segmenter", type=click.Choice(segmenter_names()), default=DEFAULT_SEGMENTER, show_default=True,
              help="Footage only. " + _segmenter_help())
@click.option("--segmenter-param", "segmenter_params", multiple=True, metavar="NAME=VALUE",
              help="Footage only. " + _segmenter_param_help().replace("; wins over the shorthand options", ""))
@click.option("--min-len", type=float, default=None, help="Footage only: drop clips shorter than this (s).")
@click.option("--max-len", type=float, default=None, help="Footage only: split longer clips (s).")
@click.option("--workers", "-j", type=int, default=None,
              help="Footage only: videos cut in parallel (default: CPU count, max 8).")
@click.option("--no-resume", is_flag=True, help="Footage only: cut every video again, ignoring staged results.")
def index(source: str, out: Path, run: str | None, seed: int | None, backbone: str | None, pretrained: str | None,
          method: str, device: str, splits: tuple[str, ...], approximate: str | None, nlist: int | None,
          nprobe: int | None, hnsw_m: int, ef_construction: int, ef_search: int, batch_size: int, loader_workers: int, annotations: str | None, segmenter: str,
          segmenter_params: tuple[str, ...], min_len: float | None, max_len: float | None, workers: int | None,
          no_resume: bool) -> None:
    """Embed every clip of SOURCE with a model and write a searchable index to OUT.

    SOURCE is a dvtr dataset (folder or Hub repo id) or raw footage (a video file or a folder of videos), which
    is first cut into clips by the dataset build pipeline (resumable: re-running continues). The model is a
    dvtr run (--run) or an open_clip backbone with its weights (--backbone, zero-shot). Search it with
    `dvtr search OUT "your text"`.

    \b
    Examples:
      dvtr index demo-output/dataset --run demo-output/results/meanP-dvtr-tiny-* --out demo-index
      dvtr index footage/videos --backbone ViT-B-32 --pretrained openai --segmenter windows \\
          --segmenter-param length=8 --out flights-index
    """
    from dvtr_bench.dataset.config import BuildConfig
    from dvtr_bench.search.build import build_index, resolve_source
    from dvtr_bench.search.index import human_kind
    from dvtr_bench.search.model import resolve_device

    import datasets

    # Our own bars show progress; datasets' per-split tqdm lines would interleave with them.
    datasets.disable_progress_bars()
    kind, _ = run_cli(lambda: resolve_source(source))
    config = None
    if kind == "footage":
        params = _parse_segmenter_params(segmenter_params)
        # the config checks the segmenter and its parameters: a typo fails here, before any model is loaded
        config = run_cli(lambda: BuildConfig(segmenter=segmenter, segmenter_params=params, min_len=min_len,
                                             max_len=max_len))
    elif annotations or segmenter_params or min_len is not None or max_len is not None:
        err_console.print("[yellow]note:[/yellow] --annotations and the segmenter options apply to raw footage "
                          "only; SOURCE is a dataset, whose clips are indexed as they are")
    model = load_model_cli(run, seed, backbone, pretrained, method, device)
    with progress_bars(transient=True) as report:
        res = run_cli(lambda: build_index(
            source, out, model, splits=list(splits) or None, kind=approximate or "exact", nlist=nlist, nprobe=nprobe,
            hnsw_m=hnsw_m, ef_construction=ef_construction, ef_search=ef_search, batch_size=batch_size, num_workers=loader_workers,
            device=resolve_device(device), build_config=config, annotations=annotations, workers=workers,
            resume=not no_resume, progress=report))
    man = res.manifest
    t = man["timings"]
    src = man["source"]
    what = (f"dataset {src['path']} ({', '.join(src['splits'])})" if src["kind"] == "dataset" else
            f"{src['videos']} video(s) of raw footage, cut into clips in {Path(src['dataset'])}/")
    console.print(f"[bold]index {res.path}[/bold]: {res.n_clips} clips from {what}")
    console.print(f"model    {model.description}")
    console.print(f"scoring  {man['scoring']['note']}")
    console.print(f"search   {human_kind(man['search'])}, {res.n_clips} x {res.dim} float32, "
                  f"{human_bytes(res.size_bytes)} on disk")
    console.print(f"speed    {res.n_clips} clips in {t['encode_s']:.1f} s = {t['clips_per_s']:.1f} clips/s (read, "
                  f"decode, encode, thumbnails)" + (f"; cutting the footage {t['cut_footage_s']:.1f} s"
                                                    if src["kind"] == "footage" else ""))
    console.print(f"search it: dvtr search {res.path} \"two boats moored beside a pier\"")
    if res.partial:
        for vid, reason in res.failed_videos:
            err_console.print(f"  [red]failed[/red] {vid}: {reason}")
        err_console.print(f"[yellow]partial:[/yellow] {len(res.failed_videos)} video(s) could not be cut (listed in "
                          f"{Path(src['dataset']) / 'build' / 'manifest.parquet'}); fix or remove them and re-run")
        exit_with(3)
