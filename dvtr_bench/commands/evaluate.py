"""`dvtr evaluate`: a saved model (a run's selected checkpoints, or one checkpoint) on a dataset's test split."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dvtr_bench.commands._ui import progress_bars, run_cli
from dvtr_bench.commands.run_baseline import _parse_seeds, _summary


@click.command("evaluate")
@click.argument("target", metavar="RUN_DIR|CHECKPOINT")
@click.option("--dataset", required=True, metavar="PATH_OR_REPO_ID",
              help="A dvtr dataset folder (Hub layout) or a Hugging Face Hub dataset repo id; its test split is "
                   "scored.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for record.json and the score files (default: RUN_DIR/eval-<dataset>-<fingerprint>).")
@click.option("--seeds", callback=_parse_seeds, default=None, metavar="0,1,2",
              help="Seeds of a run folder to evaluate (default: every finished seed).")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N", help="Device.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Clips per evaluation batch (default: the run's).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Frame-decoding threads (worker processes under the train option loader: processes; "
                   "default: the run's).")
def evaluate(target: str, dataset: str, out_dir: Path | None, seeds: list[int] | None, device: str,
             batch_size: int | None, workers: int | None) -> None:
    """Evaluate a saved model on a dataset's test split and write a result record.

    RUN_DIR is a folder `dvtr run-baseline` wrote: each finished seed's checkpoint selected on validation
    (seed<S>/best.pt) is loaded whole (backbone and every module of the method) from the run's recipe and
    evaluated. CHECKPOINT is one checkpoint file inside a run (e.g. RUN_DIR/seed1/best.pt or last.pt). The record
    names the run and every checkpoint (path, sha256, epoch) in its "evaluated" section; it is never zero-shot.
    A missing, unreadable or foreign checkpoint, or one that does not fit the run's method, exits with 2.

    \b
    Examples:
      dvtr evaluate runs/meanP-dvtr-tiny --dataset other_ds/
      dvtr evaluate runs/seqTransf-ViT-B-32/seed0/best.pt --dataset ds/ --out evals/seqTransf-seed0
    """
    import datasets

    from dvtr_bench.engine.saved import evaluate_saved

    def go(report: object = None) -> Path:
        return evaluate_saved(target, dataset, out_dir, seeds=seeds, device=device, eval_batch_size=batch_size,
                              workers=workers, progress=report)  # type: ignore[arg-type]

    datasets.disable_progress_bars()
    if int(os.environ.get("RANK", "0")) == 0:
        with progress_bars(transient=False) as report:
            path = run_cli(lambda: go(report))
        _summary(path)
    else:
        run_cli(go)
