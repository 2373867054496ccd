"""`dvtr leaderboard`: validate, group, rank and render result records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from dvtr_bench.commands._ui import console, err_console, exit_with, progress_bars, run_cli

if TYPE_CHECKING:
    from dvtr_bench.protocol.binding import TestSplit

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_NOTHING, EXIT_DUPLICATES, EXIT_REJECTED = 0, 1, 2, 3, 4


@click.command("leaderboard")
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for index.md, summary.json and one sub-folder of tables per comparable group.")
@click.option("--verify", is_flag=True,
              help="Recompute every metric from the saved score matrices (checking their sha256); "
                   "records whose numbers disagree are left out and the exit code is 1.")
@click.option("--dataset", "datasets", multiple=True, type=click.Path(path_type=Path),
              help="With --verify: a dvtr dataset folder (or Hub repo id) whose test split the records claim; "
                   "each record's fingerprint, clips and captions are checked against it. Repeatable.")
@click.option("--format", "formats", default="md,csv,tex,html,png", show_default=True,
              help="Comma-separated subset of md, csv, tex, html, png (png also writes the SVG and PDF plot).")
def leaderboard(results: tuple[Path, ...], out_dir: Path, verify: bool, datasets: tuple[Path, ...],
                formats: str) -> None:
    """Build leaderboard tables from result records.

    RESULTS are record files or folders searched recursively for *.json (default: leaderboard/results/).
    Every file that looks like a record becomes a row or is listed as left out with its reason. Records are
    validated against the record schema, grouped by (dataset fingerprint, protocol version) -- groups are
    never mixed -- and ranked by RSum. Per group: Markdown, CSV, LaTeX (booktabs), a self-contained
    sortable HTML page and a plot of RSum against cost (PNG, SVG, PDF).

    \b
    Exit codes:
      0  every record was accepted (and verified with --verify)
      1  --verify: a record disagrees with its score files or with the data it claims
      2  bad usage, or no record could be used
      3  every file was usable, but some runs were found twice (listed once)
      4  some files that look like records were rejected (reasons are listed)
    """
    from dvtr_bench.leaderboard import DEFAULT_RESULTS, FORMATS, build_leaderboard
    from dvtr_bench.leaderboard import unbound_note

    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    bad = sorted(set(fmts) - set(FORMATS))
    if bad or not fmts:
        raise click.BadParameter(f"unknown format(s) {', '.join(bad) or '(none given)'}; "
                                 f"choose from {', '.join(FORMATS)}", param_hint="--format")
    inputs = list(results) or [DEFAULT_RESULTS]
    if not results and not DEFAULT_RESULTS.exists():
        err_console.print(f"[red]error:[/red] no RESULTS given and the default folder {DEFAULT_RESULTS}/ "
                          "does not exist here")
        exit_with(EXIT_NOTHING)

    if datasets and not verify:
        raise click.BadParameter("checking against a dataset needs --verify", param_hint="--dataset")

    with progress_bars(transient=True) as report:
        refs = [run_cli(lambda d=d: _test_split(d, report)) for d in datasets]
        res = run_cli(lambda: build_leaderboard(inputs, out_dir, verify=verify, formats=fmts, progress=report,
                                                references=refs))
    col = res.collection

    for g in col.groups:
        if not g.entries:
            continue
        t = Table(title=f"{g.title}: {g.n_clips} clips, {g.n_captions} captions, test split {g.fingerprint[:12]}",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        t.add_column("#", justify="right", no_wrap=True)
        t.add_column("method", overflow="fold", ratio=1)
        t.add_column("ckpt", no_wrap=True)
        t.add_column("seeds", justify="right", no_wrap=True)
        for name in ("T2V R@1", "V2T R@1", "RSum"):
            t.add_column(name, justify="right", no_wrap=True)
        if verify:
            t.add_column("ok", justify="center", no_wrap=True)
        from dvtr_bench.leaderboard.render import marks, method_name, metric_cell

        for i, e in enumerate(g.entries):
            short = "zero-shot" if e.zero_shot else {"validation": "val", "last_epoch": "last ep"}.get(
                e.record["checkpoint_selection"], e.record["checkpoint_selection"])
            cells = [str(i + 1), escape(method_name(e) + marks(e)), short, str(e.n_seeds)]
            for key in ("t2v_r1", "v2t_r1", "rsum"):
                mean, std = metric_cell(e, key)
                cells.append(mean if std is None else f"{mean}±{std}")
            if verify:
                unbound = e.verified and e.bound is False and not e.dataset_checked
                cells.append("[yellow]✓ unbound[/yellow]" if unbound else "[green]✓[/green]" if e.verified else "")
            t.add_row(*cells, style=None if e.compliant else "yellow")
        console.print(t)
    if any(not e.compliant for g in col.groups for e in g.entries) or any(e.too_few_seeds for g in col.groups
                                                                        for e in g.entries):
        console.print("[dim]† transductive   ‡ test-time re-ranking   * fewer than 3 seeds[/dim]")

    if col.unbound:
        console.print(f"[yellow]{escape(unbound_note(col))}[/yellow]")

    if col.exclusions:
        t = Table(title=f"Left out ({len(col.exclusions)})", title_justify="left", show_lines=False)
        # Folded, never cut: a left-out file must be findable from the terminal alone.
        t.add_column("record", overflow="fold")
        t.add_column("kind", no_wrap=True)
        t.add_column("why", overflow="fold", ratio=1)
        for x in col.exclusions:
            t.add_row(escape(_short(x.path)), x.kind, escape(x.reason),
                      style=None if x.kind == "duplicate" else "red")
        console.print(t)

    n_groups = sum(1 for g in col.groups if g.entries)
    checked = " and the dataset" if col.dataset_checked else ""
    console.print(f"{col.n_files} file(s) read, {col.n_accepted} record(s) in {n_groups} group(s), "
                  f"{len(col.rejected)} rejected, {len(col.verify_failures)} disagreeing, "
                  f"{len(col.duplicates)} duplicate(s)"
                  + (f", {len(col.skipped)} non-record file(s) skipped" if col.skipped else "")
                  + (f" — all accepted rows verified against their score files{checked}"
                     if verify and col.n_accepted else ""))
    if res.index is not None and col.n_accepted:
        console.print(f"wrote {res.index}, {res.summary} and {n_groups} group folder(s) under {res.out_dir}/")

    if col.verify_failures:
        err_console.print(f"[red]{len(col.verify_failures)} record(s) disagree with their score files or with "
                          "the data they claim[/red]")
        exit_with(EXIT_VERIFY_FAILED)
    if col.n_accepted == 0:
        err_console.print("[red]error:[/red] no usable result record found")
        exit_with(EXIT_NOTHING)
    if col.rejected:
        err_console.print(f"[red]{len(col.rejected)} file(s) that look like records were rejected[/red]")
        exit_with(EXIT_REJECTED)
    if col.duplicates:
        exit_with(EXIT_DUPLICATES)


def _test_split(dataset: Path, report: object) -> "TestSplit":
    """The test split of a dataset folder or Hub repo id, as the leaderboard checks records against it."""
    import datasets

    from dvtr_bench.dataset.hub import load_dataset
    from dvtr_bench.errors import InputError
    from dvtr_bench.protocol.binding import TestSplit

    # Its own bars would interleave with ours; the test split's fingerprint reports through `report`.
    datasets.disable_progress_bars()
    ds = load_dataset(dataset)
    if "test" not in ds:
        raise InputError(f"the dataset has no test split (has: {', '.join(ds) or 'none'})", file=dataset)
    return TestSplit.from_dataset(ds["test"], progress=report)


def _short(path: str) -> str:
    """The path relative to the working directory when it lies below it (keeps the table narrow)."""
    try:
        rel = Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
    return str(rel)
