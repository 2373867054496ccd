"""`dvtr run-baseline`: train (or zero-shot) and evaluate a retrieval method under the protocol."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.table import Table

from dvtr_bench.commands._ui import console, progress_bars, run_cli


def _parse_seeds(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        seeds = [int(s) for s in value.replace(" ", "").split(",") if s != ""]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers (e.g. 0,1,2)") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{value!r}: give distinct integers, e.g. 0,1,2")
    return seeds


def _command_line(argv0: str, args: list[str]) -> list[str]:
    """The command line as the user would type it again: ``python -m dvtr_bench ARGS`` when the package was run
    as a module (torchrun launches included), else ``dvtr ARGS`` (argv[0] is a machine-specific path)."""
    head = Path(argv0)
    if head.name == "__main__.py" and head.parent.name == "dvtr_bench":
        return ["python", "-m", "dvtr_bench", *args]
    return ["dvtr", *args]


def _parse_pretrained(value: str | None) -> object:
    if value is None:
        return ...
    return None if value.strip().lower() in ("none", "null", "") else value


@click.command("run-baseline")
@click.argument("method")
@click.option("--dataset", required=True, metavar="PATH_OR_REPO_ID",
              help="A dvtr dataset folder (Hub layout) or a Hugging Face Hub dataset repo id.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; the run goes to OUT/<method>-<backbone>[-zeroshot|-release]-<id>/, <id> a short "
                   "hash of the method, resolved recipe, data and weights (so runs never collide, and every seed "
                   "of one run joins one record).")
@click.option("--zero-shot", is_flag=True, help="Do not train: evaluate the backbone's weights as they are.")
@click.option("--seeds", callback=_parse_seeds, default=None, metavar="0,1,2",
              help="Seeds to train (default: the protocol's 0,1,2; 0 for --zero-shot).")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N",
              help="Device; under torchrun 'cuda' means each process's LOCAL_RANK GPU.")
@click.option("--backbone", default=None, metavar="NAME",
              help="open_clip model name (e.g. ViT-B-32, ViT-B-16, dvtr-tiny); default: the recipe's.")
@click.option("--pretrained", default=None, metavar="TAG|PATH|none",
              help="open_clip pretrained tag, a local checkpoint, or 'none' for random init; default: the recipe's.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the recipe's epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Override the recipe's global training batch (summed over processes).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Frame-decoding threads (worker processes under the train option loader: processes; default 2).")
@click.option("--config", "config", multiple=True, metavar="FILE|NAME",
              help="Recipe overlay JSON ({'model': {...}, 'train': {...}, 'per_method': {...}}), or the name of "
                   "one in baselines/ (e.g. demo); repeatable, applied in order. An unknown key is an error.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one recipe value after the overlays, e.g. --set train.lr=1e-5 or "
                   "--set model.options.dropout=0.1 (VALUE is read as JSON, else as a string); repeatable.")
@click.option("--regime", type=click.Choice(["uniform", "release"]), default="uniform", show_default=True,
              help="uniform: one optimiser, learning-rate pair and step budget for every method (controlled "
                   "comparisons); release: the method as its authors' code trains it (comparisons with papers). "
                   "Recorded in the result; docs/protocol.md, 'Training regimes'.")
@click.option("--no-resume", is_flag=True,
              help="Ignore existing checkpoints and finished seeds of the same run: train the seeds from scratch.")
@click.option("--keep-last", is_flag=True,
              help="Keep each seed's last.pt (the resume point, about 3x the model) after the seed has finished; "
                   "by default only best.pt stays.")
@click.option("--recipes", "recipe_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              metavar="DIR", help="A folder of your own recipes, searched before the shipped ones (repeatable; "
                                  "$DVTR_RECIPE_PATH works too).")
def run_baseline(method: str, dataset: str, out_dir: Path, zero_shot: bool, seeds: list[int] | None, device: str,
                 backbone: str | None, pretrained: str | None, epochs: int | None, batch_size: int | None,
                 workers: int | None, config: tuple[str, ...], sets: tuple[str, ...], regime: str, no_resume: bool,
                 keep_last: bool, recipe_dirs: tuple[Path, ...]) -> None:
    """Train METHOD on a dataset's train split, select the checkpoint on validation, evaluate on test.

    METHOD is a recipe name (known: {recipes}; or one in a --recipes folder) or the path of a recipe JSON. For each seed the test split's full (captions x clips) score matrix is saved, and
    one result record (metrics computed by the protocol engine from those files, cost, provenance) is
    written to OUT/<run>/record.json. Re-running the same command resumes from the last checkpoint; a command
    with other --seeds adds them to the same run's record. --config overlays and --set overrides apply in order,
    and an unknown key in any of them is an error.

    \b
    Examples:
      dvtr run-baseline meanP --dataset ds/ --out results/
      dvtr run-baseline meanP --dataset ds/ --regime release --out results/
      dvtr run-baseline seqTransf --dataset ds/ --backbone dvtr-tiny --pretrained none \\
          --epochs 3 --seeds 0 --out results/
      dvtr run-baseline meanP --dataset ds/ --zero-shot --out results/
      dvtr run-baseline xpool --dataset ds/ --config demo --set train.lr=5e-4 --seeds 1 --out results/
      python -m torch.distributed.run --nproc_per_node 2 -m dvtr_bench run-baseline msam --dataset ds/ --out r/
    """
    import datasets

    from dvtr_bench.engine.run import run_baseline as _run
    from dvtr_bench.models.registry import add_recipe_dir

    args = click.get_current_context().meta.get("dvtr.argv")
    command = _command_line(sys.argv[0] if sys.argv else "", list(args)) if args is not None else None

    def go(report: object = None) -> Path:
        for d in recipe_dirs:
            add_recipe_dir(d)
        return _run(method, dataset, out_dir, zero_shot=zero_shot, seeds=seeds, device=device, backbone=backbone,
                    pretrained=_parse_pretrained(pretrained), epochs=epochs, batch_size=batch_size, workers=workers,
                    config=list(config) or None, sets=sets, resume=not no_resume, progress=report, regime=regime,
                    keep_last=keep_last, command=command)

    # Our own bars show progress; datasets' per-split tqdm lines would interleave with them.
    datasets.disable_progress_bars()
    is_main = int(os.environ.get("RANK", "0")) == 0
    if is_main:
        with progress_bars(transient=False) as report:
            path = run_cli(lambda: go(report))
        _summary(path)
    else:
        run_cli(go)


def _known_recipes() -> str:
    from dvtr_bench.errors import ConfigError
    from dvtr_bench.models.registry import list_recipes

    try:
        return ", ".join(sorted(list_recipes(), key=str.lower))
    except ConfigError as exc:
        return f"none found: {exc}"


# The list of recipes in the help comes from the recipe folder, so it cannot drift from what ships.
run_baseline.help = (run_baseline.help or "").replace("{recipes}", _known_recipes())


def _summary(record_path: Path) -> None:
    from dvtr_bench.protocol.record import read_record

    rec = read_record(record_path)
    flags = [f for f, on in (("zero-shot", rec.get("zero_shot")), ("transductive", rec.get("transductive"))) if on]
    title = (f"{rec['method']} on {rec['dataset']['name']} ({rec['backbone']['name']}"
             f"{', ' + ', '.join(flags) if flags else ''}) - test split, "
             f"{rec['dataset']['n_clips']} clips / {rec['dataset']['n_captions']} captions")
    cols = [("t2v_r1", "T2V R@1"), ("t2v_r5", "R@5"), ("t2v_r10", "R@10"), ("t2v_medr", "MdR"),
            ("v2t_r1", "V2T R@1"), ("v2t_r5", "R@5"), ("v2t_r10", "R@10"), ("v2t_medr", "MdR"),
            ("rsum", "RSum")]
    table = Table(title=title, header_style="bold")
    table.add_column("seed")
    for _, label in cols:
        table.add_column(label, justify="right")
    for run in rec["runs"]:
        table.add_row(str(run["seed"]), *[f"{run['metrics'][k]:.1f}" for k, _ in cols])
    summ = rec["summary"]
    if summ.get("std"):
        table.add_row("mean", *[f"{summ['mean'][k]:.1f}" for k, _ in cols], style="bold")
        table.add_row("std", *[f"{summ['std'][k]:.1f}" for k, _ in cols])
    console.print(table)
    cost = rec["cost"]

    def fmt(v: object, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    console.print(
        f"params {fmt(cost.get('parameters'), ',')}  GFLOPs/clip {fmt(cost.get('gflops_per_clip'), '.2f')}  "
        f"eval {fmt(cost.get('eval_clips_per_s'), '.1f')} clips/s  train {fmt(cost.get('train_time_s'), '.1f')} s/seed  "
        f"peak memory {fmt(cost.get('peak_memory_mb'), '.0f')} MB")
    training = rec.get("training") or {}
    if training.get("steps_per_epoch") is not None:
        console.print(f"training: regime {training.get('regime') or 'n/a'}, {training['steps_per_epoch']} steps/epoch, "
                      f"{training.get('total_steps', 'n/a')} steps in all; protocol {rec['protocol_version']}")
    ev = rec.get("evaluated")
    if ev:
        for c in ev["checkpoints"]:
            epoch = "n/a" if c.get("epoch") is None else c["epoch"] + 1
            console.print(f"evaluated: run {ev.get('run_name') or ev['run']}, {c['path']} (epoch {epoch}, sha256 {c['sha256'][:12]})")
    console.print(f"record: {record_path}")
