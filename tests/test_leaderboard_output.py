"""Paper-ready output: plots (PNG, SVG, PDF) with readable ticks, non-overlapping labels and "better" on each
axis; Markdown cost cells that tell rows apart; deterministic files."""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path

import pytest

from dvtr_bench.leaderboard import build_leaderboard, collect
from dvtr_bench.leaderboard.collect import Entry, Group
from dvtr_bench.leaderboard.example import make_example_records
from dvtr_bench.leaderboard.plot import METHOD_LABEL, plot_bytes, plot_figure
from dvtr_bench.leaderboard.render import to_markdown

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Group]:
    d = tmp_path_factory.mktemp("ex")
    make_example_records(d, n_clips=40)
    demo = collect([ROOT / "leaderboard" / "results"]).groups[0]
    example = collect([d]).groups[0]
    # Eight methods at almost the same cost and accuracy: the labels must still find room.
    base = example.entries[1].record
    crowd = []
    for i in range(8):
        rec = copy.deepcopy(base)
        rec["method"] = f"method-{i}"
        rec["summary"]["mean"]["rsum"] = 500.0 + i * 0.7
        rec["cost"]["gflops_per_clip"] = 53.0 + (i % 3) * 0.01
        rec["cost"]["eval_clips_per_s"] = 200.0 + (i % 2) * 0.5
        crowd.append(Entry(path=Path(f"{i}.json"), record=rec))
    crowded = Group(example.fingerprint, "1", "crowded", example.n_clips, example.n_captions, entries=crowd)
    return {"demo": demo, "example": example, "crowded": crowded}


def _boxes(texts: list) -> list[tuple[float, float, float, float]]:
    out = []
    for t in texts:
        bb = t.get_window_extent()
        out.append((bb.x0, bb.y0, bb.x1, bb.y1))
    return out


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


@pytest.mark.parametrize("name", ["demo", "example", "crowded"])
def test_plot_labels_ticks_and_better(groups: dict[str, Group], name: str) -> None:
    fig = plot_figure(groups[name])
    fig.canvas.draw()
    axes = fig.axes
    assert len(axes) == 2
    assert axes[0].get_xlabel().endswith("← better") and axes[1].get_xlabel().endswith("better →")
    assert axes[0].get_ylabel().endswith("better →")               # rotated: the arrow points up
    for ax in axes:
        labels = [t for t in ax.texts if t.get_label() == METHOD_LABEL]
        n_shown = sum(1 for line in ax.lines if line.get_marker() in ("o", "^"))
        assert len(labels) == n_shown
        frame = ax.get_window_extent()
        boxes = _boxes(labels)
        for a, b in itertools.combinations(boxes, 2):
            assert not _overlap(a, b), (name, a, b)
        for box in boxes:
            assert frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
        for axis in (ax.xaxis, ax.yaxis) if ax is axes[0] else (ax.xaxis,):
            lo, hi = axis.get_view_interval()
            ticks = [t for t in axis.get_majorticklabels() if t.get_text() and lo <= t.get_position()[
                0 if axis is ax.xaxis else 1] <= hi]
            texts = [t.get_text() for t in ticks]
            assert 3 <= len(texts) <= 8, texts
            for text in texts:
                digits = re.sub(r"[^0-9]", "", text).lstrip("0")
                assert len(digits) <= 3 or text.endswith("0" * (len(digits) - 3)), texts
            for a, b in itertools.combinations(_boxes(ticks), 2):
                assert not _overlap(a, b), texts


def test_plot_formats_are_deterministic(groups: dict[str, Group]) -> None:
    g = groups["example"]
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")):
        a, b = plot_bytes(g, fmt), plot_bytes(g, fmt)
        assert a.startswith(magic) and a == b, fmt
    svg, pdf = plot_bytes(g, "svg"), plot_bytes(g, "pdf")
    assert b"<dc:date>" not in svg and b"/CreationDate" not in pdf and b"/ModDate" not in pdf


def test_records_without_a_figure_are_counted_not_dropped(groups: dict[str, Group]) -> None:
    fig = plot_figure(groups["example"])         # two MSAM rows report no GFLOPs
    notes = [t.get_text() for t in fig.axes[0].texts if "not shown" in t.get_text()]
    assert notes == ["2 record(s) without this figure not shown"]


def test_markdown_tells_small_costs_apart(groups: dict[str, Group]) -> None:
    md = to_markdown(groups["demo"])
    gflops = {json.loads(e.path.read_text())["cost"]["gflops_per_clip"] for e in groups["demo"].entries}
    assert len(gflops) > 1
    for g in gflops:
        assert f"| {g:.3f} |" in md or f"| {g:.3g} |" in md, (g, md)
    assert "| 0.3 |" not in md


def test_markdown_names_cannot_break_the_table(groups: dict[str, Group]) -> None:
    g = groups["example"]
    rec = copy.deepcopy(g.entries[0].record)
    rec["method"] = "two\nlines | and <b>html</b>"
    md = to_markdown(Group(g.fingerprint, "1", "x", g.n_clips, g.n_captions, entries=[Entry(Path("r"), rec)]))
    rows = [line for line in md.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 1 and r"two lines \| and &lt;b&gt;html&lt;/b&gt;" in rows[0]


def test_build_writes_plots_in_three_formats(tmp_path: Path, groups: dict[str, Group]) -> None:
    d = tmp_path / "r"
    make_example_records(d, n_clips=12, captions_per_clip=2)
    res = build_leaderboard([d], tmp_path / "t", formats=("png",))
    (files,) = res.outputs.values()
    assert {k: p.suffix for k, p in files.items()} == {"png": ".png", "svg": ".svg", "pdf": ".pdf"}
