"""`dvtr synth`: procedural overhead drone footage with ground-truth shots and captions."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.table import Table

from dvtr_bench.commands._ui import console, progress_bars, run_cli


class Resolution(click.ParamType):
    """WxH, e.g. 640x360."""

    name = "WxH"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value  # type: ignore[return-value]
        m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(value))
        if not m:
            self.fail(f"{value!r} is not WIDTHxHEIGHT (e.g. 640x360)", param, ctx)
        w, h = int(m.group(1)), int(m.group(2))
        if w % 2 or h % 2 or w < 64 or h < 36:
            self.fail(f"{value!r}: width and height must be even and at least 64x36", param, ctx)
        return w, h


@click.command("synth")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (videos/, annotations.jsonl, shots.json, synth.json).")
@click.option("--flights", default=3, show_default=True, type=click.IntRange(min=1), help="Number of flights (videos).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed; same seed and options, same output.")
@click.option("--resolution", default="640x360", show_default=True, type=Resolution(), help="Frame size WxH.")
@click.option("--fps", default=25.0, show_default=True, type=click.FloatRange(1, 120), help="Frame rate.")
@click.option("--min-take", default=3.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Shortest take, seconds.")
@click.option("--max-take", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Longest take, seconds.")
@click.option("--takes", "takes_per_flight", default=8, show_default=True, type=click.IntRange(min=1),
              help="Takes per flight.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Flights rendered at once, one process each (output is identical).")
@click.option("--exposure-ramps", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Chance that a take holds an auto-exposure and white-balance ramp (no transition: a shot "
                   "detector must not cut there).")
@click.option("--telemetry/--no-telemetry", default=True, show_default=True,
              help="Write a DJI-style .SRT telemetry sidecar next to each video, following its camera.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also render a labelled PNG with a few frames of every scene kind.")
def synth(out_dir: Path, flights: int, seed: int, resolution: tuple[int, int], fps: float, min_take: float,
          max_take: float, takes_per_flight: int, workers: int, exposure_ramps: float, telemetry: bool,
          contact_sheet: Path | None) -> None:
    """Synthesise overhead drone flights with exact shot boundaries and scene-graph captions.

    Each flight is one H.264 MP4 made of several takes (road, parking lot, river, forest, ...) joined
    by hard cuts, dissolves and fades. Writes OUT/videos/flight_NNN.mp4, OUT/annotations.jsonl (one
    caption record per take), OUT/shots.json (frame-exact transitions) and OUT/synth.json.

    \b
    Example:
      dvtr synth --out footage --flights 3 --seed 0
    """
    from dvtr_bench.synth import generate

    if min_take > max_take:
        raise click.BadParameter(f"--min-take ({min_take}) is larger than --max-take ({max_take})",
                                 param_hint="--min-take")
    with progress_bars() as report:
        summary = run_cli(lambda: generate(out_dir, flights=flights, seed=seed, resolution=resolution, fps=fps,
                                           min_take=min_take, max_take=max_take,
                                           takes_per_flight=takes_per_flight, progress=report,
                                           workers=workers, exposure_ramps=exposure_ramps,
                                           telemetry=telemetry))
        sheet = None
        if contact_sheet is not None:
            from dvtr_bench.synth.contact import contact_sheet as make_sheet

            sheet = run_cli(lambda: make_sheet(contact_sheet, seed=seed, progress=report))

    table = Table(title=f"dvtr synth -> {out_dir}", show_header=True, header_style="bold")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("videos", str(summary["videos"]))
    table.add_row("takes", str(summary["takes"]))
    table.add_row("frames", str(summary["frames"]))
    table.add_row("video seconds", f"{summary['seconds']:.1f}")
    table.add_row("wall seconds", f"{summary['wall_s']:.1f}")
    table.add_row("x realtime", f"{summary['realtime_factor']:.2f}")
    table.add_row("transitions", ", ".join(f"{k} {v}" for k, v in summary["transitions"].items()))
    table.add_row("scene kinds", ", ".join(f"{k} {v}" for k, v in summary["kinds"].items()))
    if sheet is not None:
        table.add_row("contact sheet", str(sheet))
    console.print(table)
