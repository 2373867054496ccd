"""The ``dvtr`` command line: a thin click group.

Each subcommand lives in its own module under ``dvtr_bench.commands`` and is imported only when it is
invoked (or listed), so ``dvtr --help`` stays fast and a heavy dependency of one command (torch, Ray)
never slows down another.
"""

from __future__ import annotations

import importlib
import sys

import click

from dvtr_bench._version import __version__

# command name -> (module under dvtr_bench.commands, attribute holding the click command)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "synth"),
    "build-dataset": ("build_dataset", "build_dataset"),
    "annotations": ("annotations", "annotations"),
    "run-baseline": ("run_baseline", "run_baseline"),
    "evaluate": ("evaluate", "evaluate"),
    "leaderboard": ("leaderboard", "leaderboard"),
    "index": ("index", "index"),
    "search": ("search", "search"),
    "gallery": ("gallery", "gallery"),
    "demo": ("demo", "demo"),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand is needed."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: object) -> click.Context:
        # The arguments as given (sys.argv[1:], or a test runner's list), kept for the records that name the
        # command line they came from; the context's meta is shared with every subcommand's context.
        argv = list(args)
        ctx = super().make_context(info_name, args, parent=parent, **extra)  # type: ignore[arg-type]
        ctx.meta["dvtr.argv"] = argv
        return ctx

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name]
        try:
            module = importlib.import_module(f"dvtr_bench.commands.{module_name}")
        except ModuleNotFoundError as exc:
            # Only a missing command module hides the command; a missing dependency inside it must surface.
            if exc.name == f"dvtr_bench.commands.{module_name}":
                return None
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="dvtr")
def cli() -> None:
    """dvtr: drone video-text retrieval datasets and benchmarks.

    \b
    Typical chain:
      dvtr synth --out footage/              procedural drone footage with ground truth
      dvtr build-dataset footage/videos --annotations footage/annotations.jsonl --out ds/
      dvtr run-baseline meanP --dataset ds/ --out results/
      dvtr evaluate results/meanP-ViT-B-32 --dataset other_ds/
      dvtr leaderboard results/ --out tables/
      dvtr index ds/ --run results/meanP-ViT-B-32 --out idx/
      dvtr search idx/ "two boats moored beside a pier"

    `dvtr demo` runs the whole chain on a small synthetic set on a CPU.

    \b
    Exit codes: 0 success, 1 failure, 2 bad usage or input, 3 partial success
    (some items failed and were recorded; re-run to resume).
    """


def main() -> None:
    sys.exit(cli.main(standalone_mode=True))


if __name__ == "__main__":
    main()
