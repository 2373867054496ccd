"""``dvtr gallery``: per leaderboard group, an HTML page of what each method retrieves, from the saved scores."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from dvtr_bench.commands._ui import console, err_console, exit_with, progress_bars, run_cli


@click.command("gallery")
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dataset", required=True, metavar="PATH_OR_REPO_ID",
              help="The dataset the records were evaluated on: its test split gives the frames (and must have the "
                   "records' fingerprint).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for index.html and <group>/gallery.html.")
@click.option("--captions", "n_captions", type=click.IntRange(0), default=12, show_default=True,
              help="Test captions sampled at random (text -> video).")
@click.option("--hardest", "n_hard", type=click.IntRange(0), default=4, show_default=True,
              help="Further captions: those whose correct clip the methods rank worst on average.")
@click.option("--clips", "n_clips", type=click.IntRange(0), default=4, show_default=True,
              help="Clips sampled at random (video -> text).")
@click.option("--top", type=click.IntRange(1, 20), default=5, show_default=True, help="Items shown per method.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (same seed, same page).")
@click.option("--verify", is_flag=True, help="Recompute every record's metrics from its score files first.")
def gallery(results: tuple[Path, ...], dataset: str, out_dir: Path, n_captions: int, n_hard: int, n_clips: int,
            top: int, seed: int, verify: bool) -> None:
    """Write, per leaderboard group, a page showing each method's top clips for sampled and hard test captions.

    RESULTS are record files or folders (default: leaderboard/results/). Only the records' saved score matrices
    and the dataset's stored frames are read: nothing is re-run, so any verified record can be shown. The correct
    clip is marked, with the rank each method gave it; the reverse direction is shown for a few clips.

    \b
    Example:
      dvtr gallery leaderboard/results --dataset demo-output/dataset --out leaderboard/gallery
    Exit codes: 0 ok, 2 bad input (no record, dataset without frames, no group on this dataset's test split),
    3 pages written but some groups or records were left out.
    """
    from dvtr_bench.leaderboard import DEFAULT_RESULTS, collect
    from dvtr_bench.leaderboard.gallery import gallery_index, plan_gallery, write_gallery
    from dvtr_bench.protocol.fingerprint import dataset_fingerprint
    from dvtr_bench.dataset.hub import open_dataset
    from dvtr_bench.search.frames import STRIP_FRAME_SIZE, STRIP_FRAMES, DatasetFrames

    import datasets

    # Our own bars show progress; datasets' per-split tqdm lines would interleave with them.
    datasets.disable_progress_bars()
    inputs = list(results) or [DEFAULT_RESULTS]
    with progress_bars(transient=True) as report:
        col = run_cli(lambda: collect(inputs, verify=verify, progress=report))
    groups = [g for g in col.groups if g.entries]
    if not groups:
        err_console.print("[red]error:[/red] no usable result record in " + ", ".join(map(str, inputs)))
        exit_with(2)
    ds = run_cli(lambda: open_dataset(dataset))
    frames = run_cli(lambda: DatasetFrames(ds, splits=["test"], name=str(dataset)))
    fp = run_cli(lambda: dataset_fingerprint(ds["test"]))
    captions = dict(zip(ds["test"]["clip_id"], ds["test"]["captions"]))
    pages: list[tuple[str, str, Path]] = []
    notes: list[str] = []
    for g in groups:
        if g.fingerprint != fp:
            notes.append(f"{g.title}: evaluated on test split {g.fingerprint[:12]}, the dataset's is {fp[:12]}")
            continue
        plan = run_cli(lambda g=g: plan_gallery(g, n_captions=n_captions, n_hard=n_hard, n_clips=n_clips, seed=seed,
                                                top=top, captions=captions))
        strips = run_cli(lambda plan=plan: frames.strips(plan.clips_needed(), STRIP_FRAMES))
        path = write_gallery(plan, strips, STRIP_FRAMES, out_dir, g.slug, STRIP_FRAME_SIZE)
        pages.append((g.title, g.fingerprint, path))
        console.print(f"[bold]{escape(g.title)}[/bold]: {len(plan.methods)} method(s) "
                      f"({escape(', '.join(m.label for m in plan.methods))}), {len(plan.sampled)} sampled + "
                      f"{len(plan.hardest)} hardest captions, {len(plan.clips)} clips -> {path}")
        for rec, why in plan.left_out:
            notes.append(f"{rec}: {why}")
    for x in col.exclusions:
        notes.append(f"{x.path}: {x.reason}")
    if not pages:
        err_console.print(f"[red]error:[/red] {dataset}: no group of records was evaluated on this dataset's test split "
                          f"(fingerprint {fp[:12]}); " + "; ".join(escape(n) for n in notes))
        exit_with(2)
    index = gallery_index(pages, out_dir, notes)
    console.print(f"wrote {index} and {len(pages)} gallery page(s)")
    if notes:
        for n in notes:
            err_console.print(f"[yellow]left out:[/yellow] {escape(n)}")
        exit_with(3)
