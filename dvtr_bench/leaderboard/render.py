"""Renderers of one leaderboard group: Markdown, CSV, LaTeX (booktabs), self-contained HTML, PNG plot.

Every renderer is a pure function of a :class:`~dvtr_bench.leaderboard.collect.Group` returning text (or PNG
bytes); :func:`write_group` writes them all. Values are means over seeds, with the sample std after ``±``
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
from typing import Any, Callable, Optional

from dvtr_bench.leaderboard.cells import (DIRECTION_METRICS, LEGEND, MARK_FEW_SEEDS, MARK_RERANKED,
                                          MARK_TRANSDUCTIVE, METRIC_HEADERS, TABLE_METRICS, backbone, best_values,
                                          cost_cells, fmt_sig, fmt_value, is_best, marks, method_name, metric_cell,
                                          one_line, setting)
from dvtr_bench.leaderboard.collect import Entry, Group
from dvtr_bench.leaderboard.latex import latex_escape, latex_tables, to_latex

__all__ = ["CSV_FIELDS", "DIRECTION_METRICS", "FORMATS", "LEGEND", "MARK_FEW_SEEDS", "MARK_RERANKED",
           "MARK_TRANSDUCTIVE", "METRIC_HEADERS", "TABLE_METRICS", "backbone", "best_values", "cost_cells",
           "fmt_sig", "fmt_value", "is_best", "latex_escape", "latex_tables", "marks", "metric_cell", "plot_png", "setting",
           "to_csv", "to_html", "to_latex", "to_markdown", "write_group"]


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


# ---------------------------------------------------------------------------------------------- plot
def _cost_axes(group: Group) -> list[tuple[str, Callable[[Entry], Optional[float]], bool]]:
    def gflops(e: Entry) -> Optional[float]:
        return e.record["cost"].get("gflops_per_clip")

    def params(e: Entry) -> Optional[float]:
        p = e.record["cost"].get("parameters")
        return None if p is None else p / 1e6

    def throughput(e: Entry) -> Optional[float]:
        return e.record["cost"].get("eval_clips_per_s")

    first = ("GFLOPs per clip (video encoder)", gflops, False)
    if not any(gflops(e) for e in group.entries):
        first = ("parameters (millions)", params, False)
    # (label, getter, higher_is_cheaper)
    return [first, ("evaluation throughput (clips/s)", throughput, True)]


def plot_png(group: Group, dpi: int = 120) -> bytes:
    """RSum (mean ± std) against cost: GFLOPs/clip (parameters when unknown) and evaluation throughput."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, (label, getter, _) in zip(axes, _cost_axes(group)):
        pts = [(getter(e), e) for e in group.entries]
        pts = [(x, e) for x, e in pts if x is not None and x > 0]
        missing = len(group.entries) - len(pts)
        for x, e in pts:
            style = ("^", "tab:orange") if e.transductive else ("o", "tab:blue")
            y = e.mean["rsum"]
            yerr = e.std["rsum"] if e.std is not None else None
            ax.errorbar([x], [y], yerr=None if yerr is None else [yerr], fmt=style[0], color=style[1],
                        mfc="none" if e.reranked else style[1], ms=8, capsize=3)
            ax.annotate(e.record["method"] + marks(e), (x, y), textcoords="offset points", xytext=(6, 4),
                        fontsize=8)
        if pts:
            xs = [x for x, _ in pts]
            if max(xs) / min(xs) > 20:
                ax.set_xscale("log")
        else:
            ax.text(0.5, 0.5, "not reported by any record", ha="center", va="center", transform=ax.transAxes)
        if missing:
            ax.text(0.99, 0.01, f"{missing} record(s) without this figure not shown", ha="right", va="bottom",
                    transform=ax.transAxes, fontsize=7, color="gray")
        ax.set_xlabel(label)
        ax.set_ylabel("RSum (sum of six recalls)")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{group.title}: accuracy vs cost   (● protocol-compliant, ▲ transductive, hollow = re-ranked)",
                 fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0;user-select:none}
th.txt,td.txt{text-align:left}th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
tr.flagged td{background:#fff8e6}td.best{font-weight:700}.std{color:#777;font-size:.75rem}
.legend,.meta{font-size:.8rem;color:#555;max-width:60rem}img{max-width:100%;margin-top:1rem}
"""

_JS = """
document.querySelectorAll('table.lb').forEach(function(table){
  var heads=table.querySelectorAll('thead th');
  heads.forEach(function(th,col){
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('sorted-asc');
      heads.forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(asc?'sorted-asc':'sorted-desc');
      var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
      var num=th.dataset.type==='num';
      rows.sort(function(a,b){
        var x=a.cells[col].dataset.v, y=b.cells[col].dataset.v;
        if(num){x=x===''?NaN:parseFloat(x);y=y===''?NaN:parseFloat(y);
          if(isNaN(x)&&isNaN(y))return 0;if(isNaN(x))return 1;if(isNaN(y))return -1;
          return asc?x-y:y-x;}
        return asc?x.localeCompare(y):y.localeCompare(x);
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""


def to_html(group: Group, png: Optional[bytes] = None, generated_by: str = "dvtr leaderboard") -> str:
    """A self-contained page: sortable table (click a header), legend, and the plot inlined as data URI."""
    best = best_values(group)
    esc = html.escape
    cols: list[tuple[str, str]] = [("#", "num"), ("Method", "txt"), ("Backbone", "txt"), ("Setting", "txt"),
                                   ("Seeds", "num")]
    cols += [(f"T2V {METRIC_HEADERS[m]}", "num") for m in DIRECTION_METRICS]
    cols += [(f"V2T {METRIC_HEADERS[m]}", "num") for m in DIRECTION_METRICS]
    cols += [("RSum", "num"), ("mR", "num"), ("Params (M)", "num"), ("GFLOPs/clip", "num"),
             ("Eval clips/s", "num"), ("Train time (s)", "num")]
    head = "".join(f'<th data-type="{t}" class="{"txt" if t == "txt" else "num"}">{esc(n)}</th>' for n, t in cols)
    rows = []
    for i, e in enumerate(group.entries):
        c = e.record["cost"]
        tds = [_td(i + 1, str(i + 1)), _td(e.record["method"], esc(e.record["method"]) + esc(marks(e)), "txt"),
               _td(backbone(e), esc(backbone(e)), "txt"), _td(setting(e), esc(setting(e)), "txt"),
               _td(e.n_seeds, str(e.n_seeds))]
        for key in TABLE_METRICS:
            mean, std = metric_cell(e, key)
            text = mean + ("" if std is None else f' <span class="std">± {std}</span>')
            tds.append(_td(e.mean[key], text, "best" if is_best(e, key, best) else ""))
        p = c.get("parameters")
        tds += [_td(None if p is None else p / 1e6, cost_cells(e)["params_m"]),
                _td(c.get("gflops_per_clip"), fmt_sig(c.get("gflops_per_clip"))),
                _td(c.get("eval_clips_per_s"), fmt_sig(c.get("eval_clips_per_s"))),
                _td(c.get("train_time_s"), fmt_value(c.get("train_time_s"), 0))]
        cls = ' class="flagged"' if not e.compliant else ""
        title = esc(f"record: {e.path}\nconfig_hash: {e.record['config_hash']}\ncreated: {e.record['created_at']}")
        rows.append(f'<tr{cls} title="{title}">' + "".join(tds) + "</tr>")
    img = ""
    if png is not None:
        img = f'<img alt="RSum against cost" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
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
{group.n_captions} captions. Click a column header to sort. Generated by {esc(generated_by)}.</p>
<table class="lb">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<p class="legend">{esc(LEGEND)} Highlighted rows are transductive or re-ranked.</p>
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
    ``leaderboard-v2t.tex`` (keys ``tex-t2v``, ``tex-v2t``).
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
        path = d / f"leaderboard.{fmt}"
        if fmt == "png":
            assert png is not None
            path.write_bytes(png)
        elif fmt == "tex":
            for part, table in latex_tables(group).items():
                key = "tex" if part == "main" else f"tex-{part}"
                path = d / ("leaderboard.tex" if part == "main" else f"leaderboard-{part}.tex")
                path.write_text(table.render(), encoding="utf-8")
                written[key] = path
            continue
        else:
            path.write_text(texts[fmt](), encoding="utf-8")
        written[fmt] = path
    return written
