"""The accuracy-against-cost plot of a leaderboard group, as PNG, SVG and PDF.

Two panels share the y axis, RSum (mean ± std over seeds, higher is better): against GFLOPs per clip (or
parameters when no record reports GFLOPs; lower is better) and against evaluation throughput (higher is
better). Each axis says which way is better. Method labels are placed where they overlap neither each other
nor a marker (:func:`place_labels`); tick labels carry at most three significant digits. ``●`` compliant,
``▲`` transductive, hollow: re-ranked.

The files are deterministic -- same group, same matplotlib, same bytes -- so regenerated tables can be
compared byte for byte: no dates, no software stamps, a fixed SVG id salt.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from dvtr_bench.leaderboard.cells import fmt_sig, marks, method_name, one_line
from dvtr_bench.leaderboard.collect import Entry, Group

PLOT_FORMATS = ("png", "svg", "pdf")
_METADATA = {"png": {"Software": None},
             "svg": {"Date": None, "Creator": None},
             "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}}
_RC = {"svg.hashsalt": "dvtr-leaderboard", "svg.fonttype": "path", "pdf.fonttype": 42, "font.size": 9,
       "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8}
LABEL_SIZE = 8
METHOD_LABEL = "dvtr-method-label"     # the artist label of method names (how tests find them)


@dataclass
class Axis:
    """One panel's x axis: what it shows and which way is better."""

    label: str
    value: Callable[[Entry], Optional[float]]
    higher_is_better: bool

    @property
    def title(self) -> str:
        return f"{self.label}   " + ("better →" if self.higher_is_better else "← better")


def cost_axes(group: Group) -> list[Axis]:
    def gflops(e: Entry) -> Optional[float]:
        return e.record["cost"].get("gflops_per_clip")

    def params(e: Entry) -> Optional[float]:
        p = e.record["cost"].get("parameters")
        return None if p is None else p / 1e6

    def throughput(e: Entry) -> Optional[float]:
        return e.record["cost"].get("eval_clips_per_s")

    first = Axis("GFLOPs per clip (video encoder)", gflops, False)
    if not any(gflops(e) for e in group.entries):
        first = Axis("parameters (millions)", params, False)
    return [first, Axis("evaluation throughput (clips/s)", throughput, True)]


def plot_figure(group: Group, dpi: int = 120) -> Any:
    """The figure (a ``matplotlib.figure.Figure`` drawn on an Agg canvas, labels placed)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        return _figure(group, dpi)


def _figure(group: Group, dpi: int) -> Any:
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(11, 4.8), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    shown: list[list[tuple[float, Entry]]] = []
    notes = []
    for ax, axis in zip(axes, cost_axes(group)):
        pts = [(axis.value(e), e) for e in group.entries]
        pts = [(float(x), e) for x, e in pts if x is not None and x > 0 and math.isfinite(x)]
        shown.append(pts)
        for x, e in pts:
            marker, color = ("^", "tab:orange") if e.transductive else ("o", "tab:blue")
            yerr = e.std["rsum"] if e.std is not None else None
            ax.errorbar([x], [e.mean["rsum"]], yerr=None if yerr is None else [yerr], fmt=marker, color=color,
                        mfc="none" if e.reranked else color, ms=7, capsize=3, zorder=3)
        xs = [x for x, _ in pts]
        if xs and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        else:
            _pad(ax, xs, "x")
            ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: tick_label(v)))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        if not pts:
            ax.text(0.5, 0.5, "not reported by any record", ha="center", va="center", transform=ax.transAxes,
                    color="gray")
        missing = len(group.entries) - len(pts)
        notes.append(ax.text(0.99, 0.01, f"{missing} record(s) without this figure not shown", ha="right",
                             va="bottom", transform=ax.transAxes, fontsize=7, color="gray") if missing else None)
        ax.set_xlabel(axis.title)
        ax.grid(True, alpha=0.3)
    _pad(axes[0], [e.mean["rsum"] for e in group.entries], "y")
    axes[0].yaxis.set_major_locator(ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    axes[0].yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: tick_label(v)))
    axes[0].set_ylabel("RSum (sum of six recalls)   better →")
    fig.suptitle(one_line(f"{group.title}: accuracy against cost"), parse_math=False)
    handles = [Line2D([], [], marker="o", color="tab:blue", ls="none", label="protocol-compliant"),
               Line2D([], [], marker="^", color="tab:orange", ls="none", label="transductive (†)"),
               Line2D([], [], marker="o", color="tab:blue", mfc="none", ls="none", label="re-ranked (‡, hollow)"),
               Line2D([], [], color="gray", marker="|", ls="none", label="± std over seeds")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=8)
    fig.canvas.draw()
    # Freeze the layout: labels are placed against these axes' pixels and must stay where they were put.
    fig.set_layout_engine("none")
    for ax, pts, note in zip(axes, shown, notes):
        place_labels(ax, [(x, e.mean["rsum"], one_line(method_name(e) + marks(e)),
                           e.std["rsum"] if e.std is not None else 0.0) for x, e in pts], note)
    return fig


def tick_label(v: float) -> str:
    """At most three significant digits and no trailing zeros: 0.26, 55, 220, 12400."""
    text = fmt_sig(v)
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def _pad(ax: Any, values: list[float], axis: str) -> None:
    """Limits with room around the points; a narrow spread is widened to ±15 % of its centre, so that
    ticks are a few round numbers rather than four decimals of one value."""
    if not values:
        return
    lo, hi = min(values), max(values)
    centre = (lo + hi) / 2 or 1.0
    half = max((hi - lo) / 2 * 1.3, abs(centre) * 0.15)
    low, high = centre - half, centre + half
    if lo >= 0:
        low = max(low, 0.0)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(low, high)


# Directions tried around a point, in order: right, left, above, below, then the diagonals.
_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def place_labels(ax: Any, points: list[tuple[float, float, str, float]], note: Any = None) -> list[Any]:
    """Label each point (x, y, text, y error) where the text overlaps no other label, marker, error bar or
    note, and stays inside the axes.

    Candidates are tried around the point at growing distances (in points, so the layout is the same in
    every output format); a label set away from its point gets a thin leader line. Returns the labels."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px_per_pt = ax.figure.dpi / 72.0
    obstacles = []
    for x, y, _, err in points:
        cx, cy = ax.transData.transform((x, y))
        # Room around every marker and error bar, so that no label reads as another point's.
        obstacles.append((cx - 10, cy - 8, cx + 10, cy + 8))
        if err:
            top = ax.transData.transform((x, y + err))[1]
            bottom = ax.transData.transform((x, y - err))[1]
            obstacles.append((cx - 7, bottom - 2, cx + 7, top + 2))
    if note is not None:
        bb = note.get_window_extent(renderer)
        obstacles.append((bb.x0, bb.y0, bb.x1, bb.y1))
    # The most crowded points choose first, while there is most room.
    order = sorted(range(len(points)), key=lambda i: (-sum(_near(ax, points[i], q) for q in points), i))
    placed: list[tuple[float, float, float, float]] = []
    texts: list[Any] = [None] * len(points)
    for i in order:
        x, y, label, _ = points[i]
        cx, cy = ax.transData.transform((x, y))
        t = ax.annotate(label, (x, y), xytext=(0, 0), textcoords="offset points", fontsize=LABEL_SIZE,
                        parse_math=False, va="center", zorder=4, label=METHOD_LABEL)
        bb = t.get_window_extent(renderer)
        w, h = bb.width, bb.height
        choice = None
        for dist in (7, 12, 18, 26, 36, 48, 62):
            for dx, dy in _DIRECTIONS:
                ox, oy = dx * dist, dy * dist * 0.7
                left = cx + ox * px_per_pt - (w if dx < 0 else w / 2 if dx == 0 else 0)
                box = (left, cy + oy * px_per_pt - h / 2, left + w, cy + oy * px_per_pt + h / 2)
                inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
                if inside and not any(_overlap(box, b) for b in placed + obstacles):
                    choice = (ox, oy, dx, dist, box)
                    break
            if choice:
                break
        if choice is None:      # nowhere free: to the right of the point, as a plain annotation would be
            choice = (7, 0, 1, 7, (cx + 7 * px_per_pt, cy - h / 2, cx + 7 * px_per_pt + w, cy + h / 2))
        ox, oy, dx, dist, box = choice
        t.xyann = (ox, oy)
        t.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
        if dist > 12:
            ax.annotate("", (x, y), xytext=(ox, oy), textcoords="offset points", zorder=2,
                        arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6, "shrinkA": 0, "shrinkB": 5})
        placed.append(box)
        texts[i] = t
    return texts


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _near(ax: Any, p: tuple[float, float, str, float], q: tuple[float, float, str, float]) -> bool:
    a = ax.transData.transform(p[:2])
    b = ax.transData.transform(q[:2])
    return bool(abs(a[0] - b[0]) < 120 and abs(a[1] - b[1]) < 40)


def plot_bytes(group: Group, fmt: str = "png", dpi: int = 120) -> bytes:
    """The plot as ``png``, ``svg`` or ``pdf`` bytes (deterministic)."""
    import matplotlib

    if fmt not in PLOT_FORMATS:
        raise ValueError(f"unknown plot format {fmt!r}; choose from {', '.join(PLOT_FORMATS)}")
    with matplotlib.rc_context(_RC):
        fig = _figure(group, dpi)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=_METADATA[fmt])
    return buf.getvalue()


def plot_png(group: Group, dpi: int = 120) -> bytes:
    """The plot as PNG bytes."""
    return plot_bytes(group, "png", dpi=dpi)


__all__ = ["PLOT_FORMATS", "Axis", "cost_axes", "place_labels", "plot_bytes", "plot_figure", "plot_png", "tick_label"]
