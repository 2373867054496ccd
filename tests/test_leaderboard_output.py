"""Paper-ready output: Markdown cost cells that tell rows apart, names that cannot break a table."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dvtr_bench.leaderboard import collect
from dvtr_bench.leaderboard.collect import Entry, Group
from dvtr_bench.leaderboard.example import make_example_records
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
