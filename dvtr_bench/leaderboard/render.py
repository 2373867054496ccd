"""Renderers of one leaderboard group: Markdown, CSV, LaTeX (booktabs), self-contained HTML, plots.

Every renderer is a pure function of a :class:`~dvtr_bench.leaderboard.collect.Group` returning text (or
image bytes); :func:`write_group` writes them all. LaTeX lives in :mod:`~dvtr_bench.leaderboard.latex`, the
plots in :mod:`~dvtr_bench.leaderboard.plot` and the shared cell formatting in
:mod:`~dvtr_bench.leaderboard.cells`; their public names are re-exported here. Values are means over seeds, with the sample std after ``±``
when a record has several seeds. Marks: ``†`` transductive, ``‡`` test-time re-ranking, ``*`` a trained
method reported on fewer seeds than protocol v1 asks for. **Bold** marks the best value of a column among
the rows that are neither transductive nor re-ranked.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any, Optional

from dvtr_bench.leaderboard.cells import (DIRECTION_METRICS, LEGEND, MARK_FEW_SEEDS, MARK_RERANKED,
                                          MARK_TRANSDUCTIVE, METRIC_HEADERS, TABLE_METRICS, backbone, best_values,
                                          cost_cells, fmt_sig, fmt_value, is_best, marks, method_name, metric_cell,
                                          one_line, setting)
from dvtr_bench.leaderboard.collect import Group
from dvtr_bench.leaderboard.latex import latex_escape, latex_tables, to_latex
from dvtr_bench.leaderboard.plot import PLOT_FORMATS, plot_bytes, plot_png

__all__ = ["CSV_FIELDS", "DIRECTION_METRICS", "FORMATS", "LEGEND", "MARK_FEW_SEEDS", "MARK_RERANKED",
           "MARK_TRANSDUCTIVE", "METRIC_HEADERS", "PLOT_FORMATS", "TABLE_METRICS", "backbone", "best_values",
           "cost_cells", "fmt_sig", "fmt_value", "is_best", "latex_escape", "latex_tables", "marks", "metric_cell",
           "plot_bytes", "plot_png", "setting", "to_csv", "to_html", "to_latex", "to_markdown", "write_group"]


# ------------------------------------------------------------------------------------------ markdown
def to_markdown(group: Group, heading_level: int = 2) -> str:
    """A Markdown section (heading, description, table, legend) for a README."""
    best = best_values(group)
    h = "#" * heading_level
    lines = [f"{h} {group.title}", "",
             f"Test split `{group.fingerprint[:16]}`: {group.n_clips} clips, {group.n_captions} captions."
             + (f" Also recorded as: {', '.join(group.other_names)}." if group.other_names else ""), ""]
    head = (["#", "Method", "Backbone", "Setting", "Seeds"]
            + [f"T2V {METRIC_HEADERS[m]}" for m in DIRECTION_METRICS]
            + [f"V2T {METRIC_HEADERS[m]}" for m in DIRECTION_METRICS]
            + ["RSum", "mR", "Params (M)", "GFLOPs/clip", "Eval clips/s", "Train time"])
    align = ["--:", ":--", ":--", ":--", "--:"] + ["--:"] * (len(head) - 5)
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(align) + "|")
    for i, e in enumerate(group.entries):
        cells = [str(i + 1), _md_escape(method_name(e)) + marks(e), _md_escape(backbone(e)),
                 _md_escape(setting(e)), str(e.n_seeds)]
        for key in TABLE_METRICS:
            mean, std = metric_cell(e, key)
            text = mean if std is None else f"{mean} ± {std}"
            cells.append(f"**{text}**" if is_best(e, key, best) else text)
        c = cost_cells(e)
        cells += [c["params_m"], c["gflops"], c["clips_per_s"], c["train_time"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", LEGEND, ""]
    return "\n".join(lines)


def _md_escape(s: str) -> str:
    # One line, no table separator, no HTML: a name must not break or inject into the table.
    return one_line(s).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


# ----------------------------------------------------------------------------------------------- csv
CSV_FIELDS = (["rank", "method", "marks", "transductive", "reranked", "reranking", "zero_shot",
               "checkpoint_selection", "backbone", "pretrained", "n_seeds", "seeds"]
              + [f"{k}{s}" for k in TABLE_METRICS for s in ("", "_std")]
              + ["parameters", "gflops_per_clip", "eval_clips_per_s", "train_time_s", "peak_memory_mb",
                 "dataset", "fingerprint", "protocol_version", "config_hash", "created_at", "verified", "record"])


def to_csv(group: Group) -> str:
    """One row per record, full precision, std columns empty for single-seed records."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for i, e in enumerate(group.entries):
        r, c = e.record, e.record["cost"]
        row: dict[str, Any] = {
            "rank": i + 1, "method": r["method"], "marks": marks(e), "transductive": e.transductive,
            "reranked": e.reranked, "reranking": r["reranking"] or "", "zero_shot": e.zero_shot,
            "checkpoint_selection": r["checkpoint_selection"], "backbone": r["backbone"]["name"],
            "pretrained": r["backbone"].get("pretrained") or "", "n_seeds": e.n_seeds,
            "seeds": " ".join(str(s) for s in r["seeds"]),
            "parameters": _blank(c.get("parameters")), "gflops_per_clip": _blank(c.get("gflops_per_clip")),
            "eval_clips_per_s": _blank(c.get("eval_clips_per_s")), "train_time_s": _blank(c.get("train_time_s")),
            "peak_memory_mb": _blank(c.get("peak_memory_mb")), "dataset": group.dataset_name,
            "fingerprint": group.fingerprint, "protocol_version": group.protocol_version,
            "config_hash": r["config_hash"], "created_at": r["created_at"],
            "verified": "" if e.verified is None else e.verified, "record": str(e.path),
        }
        for k in TABLE_METRICS:
            row[k] = repr(float(e.mean[k]))
            row[f"{k}_std"] = "" if e.std is None else repr(float(e.std[k]))
        w.writerow(row)
    return buf.getvalue()


def _blank(x: Any) -> Any:
    return "" if x is None else x


# ---------------------------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.3rem;margin:.2rem 0 .6rem}
.wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.8rem;line-height:1.2}
th,td{padding:.25rem .35rem;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}
td{white-space:nowrap}
thead th{background:#f4f4f4;position:sticky;top:0;font-weight:600}
thead tr.groups th{text-align:center;border-bottom:1px solid #bbb;font-weight:500;color:#555}
th button{all:unset;cursor:pointer;display:block;width:100%;text-align:inherit}
th button:focus-visible{outline:2px solid #36c}
th.txt,td.txt{text-align:left}
td.txt{white-space:normal;min-width:4rem;max-width:11rem}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
th.rank,td.rank{background:#eef5ff}
tr.flagged td{background:#fff8e6}tr.flagged td.rank{background:#f3ecd9}
td.best .m{font-weight:700}.s{display:block;color:#777;font-size:.7rem}
.legend,.meta{font-size:.8rem;color:#555;max-width:60rem}img{max-width:100%;margin-top:1rem}
"""

# Sorting: a header's first click puts the best row on top (descending for higher-is-better columns,
# ascending for lower-is-better ones and for text); the next click reverses. Empty cells always sort last.
# The whole header cell takes the click (the button inside it, for the keyboard, bubbles up to it).
_JS = """
document.querySelectorAll('table.lb').forEach(function(table){
  var heads=table.querySelectorAll('thead th[data-col]');
  heads.forEach(function(th){
    th.addEventListener('click',function(){
      var col=+th.dataset.col, num=th.dataset.type==='num';
      var first=th.dataset.better==='higher'?'descending':'ascending';
      var cur=th.getAttribute('aria-sort');
      var dir=cur?(cur==='ascending'?'descending':'ascending'):first;
      heads.forEach(function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',dir);
      var sign=dir==='ascending'?1:-1;
      var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[col].dataset.v, y=b.cells[col].dataset.v;
        if(num){x=x===''?NaN:parseFloat(x);y=y===''?NaN:parseFloat(y);
          if(isNaN(x)&&isNaN(y))return 0;if(isNaN(x))return 1;if(isNaN(y))return -1;
          return sign*(x-y);}
        return sign*x.localeCompare(y);
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""


def _columns() -> list[tuple[str, str, str, Optional[str]]]:
    """(group, header, type, better) of every column, in page order: rank, method and the ranking metric
    first, so that they are on screen without scrolling; then each direction; then setting and cost."""
    from dvtr_bench.protocol.metrics import HIGHER_IS_BETTER

    def better(key: str) -> str:
        return "higher" if HIGHER_IS_BETTER[key] else "lower"

    cols: list[tuple[str, str, str, Optional[str]]] = [("", "#", "num", "lower"), ("", "Method", "txt", None),
                                                         ("", "RSum", "num", better("rsum")),
                                                         ("", "mR", "num", better("mr"))]
    for d, name in (("t2v", "Text → video"), ("v2t", "Video → text")):
        cols += [(name, METRIC_HEADERS[m], "num", better(f"{d}_{m}")) for m in DIRECTION_METRICS]
    cols += [("", "Setting", "txt", None), ("", "Seeds", "num", "higher"), ("", "Backbone", "txt", None),
             ("Cost", "Params (M)", "num", "lower"), ("Cost", "GFLOPs/clip", "num", "lower"),
             ("Cost", "Eval clips/s", "num", "higher"), ("Cost", "Train time", "num", "lower")]
    return cols


def to_html(group: Group, png: Optional[bytes] = None, generated_by: str = "dvtr leaderboard") -> str:
    """A self-contained page: sortable table (click a header: best first), legend, and the plot inlined."""
    best = best_values(group)
    esc = html.escape
    cols = _columns()
    # Header: one row of column groups (directions, cost), one row of sortable column names.
    spans: list[tuple[str, int]] = []
    for g, *_ in cols:
        if spans and spans[-1][0] == g:
            spans[-1] = (g, spans[-1][1] + 1)
        else:
            spans.append((g, 1))
    group_row = "".join(f'<th colspan="{n}"' + (' scope="colgroup"' if g else "") + f">{esc(g)}</th>"
                        for g, n in spans)
    names = []
    for j, (_, name, typ, better) in enumerate(cols):
        cls = ["txt" if typ == "txt" else "num"] + (["rank"] if name == "RSum" else [])
        tip = {"higher": "higher is better", "lower": "lower is better"}.get(better or "", "")
        attrs = f' data-col="{j}" data-type="{typ}"' + (f' data-better="{better}"' if better else "")
        attrs += f' title="{tip}"' if tip else ""
        names.append(f'<th class="{" ".join(cls)}" scope="col"{attrs}><button type="button">{esc(name)}'
                     "</button></th>")
    rows = []
    for i, e in enumerate(group.entries):
        c = e.record["cost"]
        tds = [_td(i + 1, str(i + 1)), _td(one_line(method_name(e)),
                                           esc(one_line(method_name(e))) + esc(marks(e)), "txt")]
        for key in ("rsum", "mr") + tuple(f"{d}_{m}" for d in ("t2v", "v2t") for m in DIRECTION_METRICS):
            mean, std = metric_cell(e, key)
            text = f'<span class="m">{mean}</span>' + ("" if std is None else f'<span class="s">± {std}</span>')
            cls = " ".join(x for x in ("best" if is_best(e, key, best) else "", "rank" if key == "rsum" else "") if x)
            tds.append(_td(e.mean[key], text, cls))
        cc = cost_cells(e)
        p = c.get("parameters")
        tds += [_td(one_line(setting(e)), esc(one_line(setting(e))), "txt"), _td(e.n_seeds, str(e.n_seeds)),
                _td(one_line(backbone(e)), esc(one_line(backbone(e))), "txt"),
                _td(None if p is None else p / 1e6, cc["params_m"]),
                _td(c.get("gflops_per_clip"), cc["gflops"]),
                _td(c.get("eval_clips_per_s"), cc["clips_per_s"]),
                _td(c.get("train_time_s"), cc["train_time"])]
        cls = ' class="flagged"' if not e.compliant else ""
        title = esc(f"record: {e.path}\nconfig_hash: {e.record['config_hash']}\ncreated: {e.record['created_at']}")
        rows.append(f'<tr{cls} title="{title}">' + "".join(tds) + "</tr>")
    img = ""
    if png is not None:
        img = (f'<img alt="RSum against cost" width="1100" src="data:image/png;base64,'
               f'{base64.b64encode(png).decode("ascii")}">')
    data = json.dumps({"fingerprint": group.fingerprint, "protocol_version": group.protocol_version})
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(group.title)} – dvtr leaderboard</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{esc(group.title)}</h1>
<p class="meta">Test split fingerprint <code>{esc(group.fingerprint)}</code>: {group.n_clips} clips,
{group.n_captions} captions. Ranked by RSum (shaded). Click a column header to sort, best first; click
again to reverse. Generated by {esc(generated_by)}.</p>
<div class="wrap">
<table class="lb">
<thead><tr class="groups">{group_row}</tr><tr>{"".join(names)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</div>
<p class="legend">{esc(LEGEND)} Highlighted rows are transductive or re-ranked. Below each mean: ± the
sample standard deviation over seeds.</p>
{img}
<script type="application/json" id="group">{esc(data)}</script>
<script>{_JS}</script>
</body>
</html>
"""


def _td(sort_value: Any, text: str, cls: str = "") -> str:
    v = "" if sort_value is None else html.escape(str(sort_value), quote=True)
    c = f' class="{cls}"' if cls else ""
    return f'<td data-v="{v}"{c}>{text}</td>'


# --------------------------------------------------------------------------------------------- write
FORMATS = ("md", "csv", "tex", "html", "png")


def write_group(group: Group, out_dir: str | Path, formats: tuple[str, ...] = FORMATS,
                generated_by: str = "dvtr leaderboard") -> dict[str, Path]:
    """Write every requested format of a group to ``out_dir/<group.slug>/``; returns the paths by key.

    ``tex`` writes ``leaderboard.tex`` (the one-column table) and ``leaderboard-t2v.tex`` /
    ``leaderboard-v2t.tex`` (keys ``tex-t2v``, ``tex-v2t``); ``png`` writes the plot as
    ``leaderboard.png``, ``.svg`` and ``.pdf`` (keys ``png``, ``svg``, ``pdf``).
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    d = Path(out_dir) / group.slug
    d.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    png = plot_png(group) if ("png" in formats or "html" in formats) else None
    texts = {"md": lambda: to_markdown(group), "csv": lambda: to_csv(group),
             "html": lambda: to_html(group, png=png, generated_by=generated_by)}
    for fmt in formats:
        if fmt == "png":
            assert png is not None
            for kind in PLOT_FORMATS:
                path = d / f"leaderboard.{kind}"
                path.write_bytes(png if kind == "png" else plot_bytes(group, kind))
                written[kind] = path
        elif fmt == "tex":
            for part, table in latex_tables(group).items():
                key = "tex" if part == "main" else f"tex-{part}"
                path = d / ("leaderboard.tex" if part == "main" else f"leaderboard-{part}.tex")
                path.write_text(table.render(), encoding="utf-8")
                written[key] = path
        else:
            path = d / f"leaderboard.{fmt}"
            path.write_text(texts[fmt](), encoding="utf-8")
            written[fmt] = path
    return written
