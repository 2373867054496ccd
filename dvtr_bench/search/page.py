"""The HTML page of a search (``dvtr search --html``): one self-contained file, readable offline.

Everything is inline: CSS, and each hit's thumbnail strip as a ``data:`` URI. There is no script, font, map tile
or any other remote resource; the only links are to the source videos on this disk (relative to the page, with a
``#t=start,end`` media fragment), which a browser opens at the clip. Hovering a hit's picture flips through its
frames (CSS steps over the strip), so camera motion is visible without a player.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any, Mapping

# A strip of n frames is one image; showing frame i = moving the background to i / (n - 1) of its width.
FLIPBOOK_CSS = """
.flip{background-repeat:no-repeat;background-position:0 0;border-radius:4px;flex:none}
.flip:hover{animation:flip var(--dur) steps(var(--steps),jump-none) infinite}
@keyframes flip{from{background-position:0 0}to{background-position:100% 0}}
"""

PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem 2rem;color:#1d1d1f;
background:#fafafa}
h1{font-size:1.5rem;margin:.2rem 0}.q{font-size:1.3rem;margin:.3rem 0 1rem}.q b{background:#fff3c4;padding:0 .2rem}
.meta{font-size:.82rem;color:#555;line-height:1.5;max-width:70rem}
.meta code{background:#eee;padding:0 .25rem;border-radius:3px}
.hits{list-style:none;padding:0;margin:1rem 0}
.hit{display:flex;gap:1rem;background:#fff;border:1px solid #e2e2e2;border-radius:8px;padding:.7rem;margin:.6rem 0;
align-items:flex-start}
.rank{font-size:1.4rem;font-weight:700;color:#888;width:2.2rem;text-align:right;flex:none}
.info{font-size:.85rem;line-height:1.45;min-width:0}.info .file{font-family:ui-monospace,monospace;font-size:.8rem;
word-break:break-all}.score{font-weight:600}.caps{color:#666;font-size:.78rem;margin:.25rem 0 0;padding-left:1rem}
.strip{display:block;margin-top:.4rem;max-width:100%;height:auto;border-radius:3px}
.gps{color:#0a6}.label{display:inline-block;background:#eef;border-radius:3px;padding:0 .3rem;font-size:.75rem}
footer{font-size:.75rem;color:#888;margin-top:2rem}
"""


def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def flip_style(jpeg: bytes, frames: int, width: int, height: int, seconds: float = 1.8) -> str:
    """Inline style of a ``div.flip`` showing a strip of ``frames`` frames as a ``width`` x ``height`` flip-book."""
    return (f"width:{width}px;height:{height}px;background-image:url({data_uri(jpeg)});"
            f"background-size:{frames * 100}% 100%;--steps:{max(1, frames - 1)};--dur:{seconds}s")


def fmt_time(s: float | None) -> str:
    if s is None:
        return "?"
    m, sec = divmod(float(s), 60.0)
    return f"{int(m)}:{sec:04.1f}"


def _source_link(source: str | None, start: float | None, end: float | None, page: Path | None) -> str:
    if not source:
        return ""
    p = Path(source)
    text = html.escape(str(source))
    if page is None or not p.is_file():
        return f'<span class="file">{text}</span>'
    rel = os.path.relpath(p.resolve(), page.resolve().parent)
    frag = f"#t={start:.2f},{end:.2f}" if start is not None and end is not None else ""
    return f'<a class="file" href="{html.escape(Path(rel).as_posix() + frag)}">{text}</a>'


def render_search_page(result: Any, thumbs: Mapping[int, bytes], thumb_frames: int, page_path: str | Path | None = None,
                       frame_size: tuple[int, int] = (128, 72), generated_by: str = "dvtr search") -> str:
    """The page of one :class:`~dvtr_bench.search.query.SearchResult`.

    Args:
        result: the search result.
        thumbs: index row -> thumbnail strip (JPEG bytes) of every hit.
        thumb_frames: frames per strip.
        page_path: where the page will be written (links to source videos are made relative to it).
        frame_size: width, height of one frame of a strip.
        generated_by: footer text.
    """
    from dvtr_bench.search.model import describe

    page = Path(page_path) if page_path is not None else None
    w, h = frame_size
    idx = result.index
    items = []
    for hit in result.hits:
        strip = thumbs.get(hit.row)
        flip = (f'<div class="flip" role="img" aria-label="frames of {html.escape(hit.clip_id)}" '
                f'style="{flip_style(strip, thumb_frames, int(w * 1.5), int(h * 1.5))}"></div>' if strip else "")
        gps = ""
        if hit.telemetry:
            t = hit.telemetry
            gps = (f'<div class="gps">GPS {t["lat"]:.6f}, {t["lon"]:.6f}'
                   + (f', {t["alt_m"]:.0f} m' if t.get("alt_m") is not None else "") + "</div>")
        caps = ""
        if hit.captions:
            caps = ('<ul class="caps" title="captions stored with this clip in the dataset">'
                    + "".join(f"<li>{html.escape(c)}</li>" for c in hit.captions[:3]) + "</ul>")
        score = f'<span class="score">score {hit.score:.4f}</span>'
        if result.reranked:
            score += f' <span class="meta">(vector {hit.vector_score:.4f})</span>'
        items.append(
            f'<li class="hit" data-clip="{html.escape(hit.clip_id)}"><div class="rank">{hit.rank}</div>{flip}'
            f'<div class="info"><div>{_source_link(hit.source, hit.start_s, hit.end_s, page)}</div>'
            f'<div>{fmt_time(hit.start_s)} – {fmt_time(hit.end_s)} · {score} · clip <code>{html.escape(hit.clip_id)}'
            f'</code>' + (f' <span class="label">{html.escape(hit.label)}</span>' if hit.label else "") + "</div>"
            + gps + caps
            + (f'<img class="strip" alt="{thumb_frames} frames of {html.escape(hit.clip_id)}" width="{w * thumb_frames}"'
               f' height="{h}" src="{data_uri(strip)}">' if strip else "")
            + "</div></li>")
    latency = (f"text encoding {result.encode_text_ms:.1f} ms · search {result.search_ms:.2f} ms"
               + (f" · re-ranking {result.candidates} candidates {result.rerank_ms:.1f} ms" if result.reranked else ""))
    kind = "exact inner product" if idx.get("kind") == "exact" else f"approximate ({idx.get('kind')})"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>dvtr search: {html.escape(result.query)}</title>
<style>{PAGE_CSS}{FLIPBOOK_CSS}</style></head><body>
<h1>dvtr search</h1>
<div class="q">“<b>{html.escape(result.query)}</b>” — top {len(result.hits)} of {idx.get('n_clips')} clips</div>
<div class="meta">model <code>{html.escape(describe(result.model))}</code><br>
index <code>{html.escape(str(idx.get('path')))}</code>: {idx.get('n_clips')} clips, {kind},
{idx.get('size_bytes', 0) / 1e6:.1f} MB · {latency}<br>{html.escape(result.scoring)}.
Hover a picture to play its frames; a file name opens the source video at the clip.</div>
<ol class="hits">{''.join(items)}</ol>
<footer>{html.escape(generated_by)} · self-contained page: no script, no remote resource.</footer>
</body></html>
"""
