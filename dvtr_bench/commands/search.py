"""``dvtr search``: find the clips of an index that match a text."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from dvtr_bench.commands._ui import console, err_console, run_cli
from dvtr_bench.commands.index import human_bytes, load_model_cli, model_options


@click.command("search")
@click.argument("index_dir", metavar="INDEX", type=click.Path(path_type=Path))
@click.argument("query", metavar="QUERY")
@click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="How many clips to return.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a self-contained HTML page with each hit's frames.")
@click.option("--json", "json_path", default=None, metavar="FILE|-",
              help="Write the answer as JSON to FILE ('-': to stdout, instead of the table).")
@click.option("--candidates", type=click.IntRange(1), default=None,
              help="Methods whose score is not a dot product: how many vector-search candidates their own score "
                   "re-ranks [default: max(100, 10 k)].")
@click.option("--nprobe", type=click.IntRange(1), default=None,
              help="IVF index: lists scanned (default: the index's; higher: better recall, slower).")
@click.option("--ef-search", type=click.IntRange(1), default=None,
              help="HNSW index: search breadth (default: the index's).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads of the model and of faiss (default: all cores). On a busy machine 1 keeps a "
                   "query's latency steady: a small model's threads otherwise wait on each other.")
@model_options
def search(index_dir: Path, query: str, k: int, html_path: Path | None, json_path: str | None,
           candidates: int | None, nprobe: int | None, ef_search: int | None, threads: int | None, run: str | None, seed: int | None,
           backbone: str | None, pretrained: str | None, method: str, device: str) -> None:
    """Print the K clips of INDEX that best match QUERY, with their file, time span, score and GPS.

    The query is embedded by the model the index was built with (loaded from the run or backbone recorded in
    INDEX/index.json); --run / --backbone name it instead when it moved, and must be the same model.

    \b
    Examples:
      dvtr search demo-index "two boats moored beside a pier" -k 5
      dvtr search demo-index "a train crosses a bridge" --html hits.html --json hits.json
    """
    from dvtr_bench.search.model import resolve_device
    from dvtr_bench.search.query import Searcher

    if not query.strip():
        # before loading anything: a model takes seconds to load, an empty query is known now
        err_console.print("[red]error:[/red] QUERY: the query is empty: give the text to search for, e.g. "
                          "\"two boats moored beside a pier\"")
        sys.exit(2)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    model = None
    if run is not None or backbone is not None:
        model = load_model_cli(run, seed, backbone, pretrained, method, device)
    searcher = run_cli(lambda: Searcher(index_dir, model=model, device=resolve_device(device), threads=threads,
                                        nprobe=nprobe, ef_search=ef_search))
    try:
        result = run_cli(lambda: searcher.search(query, k=k, candidates=candidates))
        if json_path == "-":
            sys.stdout.write(result.to_json())
        else:
            _print(result)
            if json_path:
                Path(json_path).write_text(result.to_json(), encoding="utf-8")
                console.print(f"wrote {json_path}")
        if html_path is not None:
            from dvtr_bench.search.page import render_search_page

            man = searcher.index.manifest.get("thumbs") or {}
            thumbs = {h.row: searcher.index.thumb(h.row) for h in result.hits}
            html_path.parent.mkdir(parents=True, exist_ok=True)
            html_path.write_text(render_search_page(result, thumbs, int(man.get("frames", 6)), html_path,
                                                    tuple(man.get("frame_size", (128, 72)))), encoding="utf-8")
            (err_console if json_path == "-" else console).print(f"wrote {html_path}")
    finally:
        searcher.close()


def _print(result: object) -> None:
    from dvtr_bench.search.page import fmt_time

    r = result
    gps = any(h.telemetry for h in r.hits)
    t = Table(title=f"\u201c{escape(r.query)}\u201d: top {len(r.hits)} of {r.index['n_clips']} clips",
              title_justify="left", header_style="bold")
    t.add_column("#", justify="right", no_wrap=True, min_width=2)
    t.add_column("score", justify="right", no_wrap=True, min_width=6)
    t.add_column("file", overflow="fold", min_width=20, ratio=3)
    t.add_column("span", no_wrap=True, min_width=13)
    t.add_column("clip", overflow="fold", min_width=12, ratio=2)
    if gps:
        t.add_column("GPS", no_wrap=True)
    for h in r.hits:
        cells = [str(h.rank), f"{h.score:.4f}", escape(_short(h.source or h.video_id or "")),
                 f"{fmt_time(h.start_s)}–{fmt_time(h.end_s)}", escape(h.clip_id)]
        if gps:
            tel = h.telemetry
            cells.append("" if not tel else f"{tel['lat']:.5f}, {tel['lon']:.5f}")
        t.add_row(*cells)
    console.print(t)
    if r.reranked:
        console.print(f"[dim]{escape(r.scoring)}[/dim]")
    kind = "exact" if r.index["kind"] == "exact" else f"approximate {r.index['kind']}" + "".join(
        f", {k} {v}" for k, v in r.index.items() if k in ("nprobe", "ef_search"))
    console.print(f"query latency {r.search_ms:.2f} ms search ({kind})"
                  + (f" + {r.rerank_ms:.1f} ms re-ranking {r.candidates} candidates" if r.reranked else "")
                  + f"; text encoding {r.encode_text_ms:.1f} ms · index {r.index['n_clips']} clips, "
                  f"{human_bytes(r.index['size_bytes'])}")


def _short(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path
