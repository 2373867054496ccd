"""What every renderer shows of a row: marks, setting, formatted values, the best value of a column.

Values are means over seeds, with the sample std after ``±`` when a record has several seeds. Marks: ``†``
transductive, ``‡`` test-time re-ranking, ``*`` a trained method reported on fewer seeds than protocol v1
asks for. The best value of a column is taken among the rows that are neither transductive nor re-ranked.
"""

from __future__ import annotations

import math
from typing import Optional

from dvtr_bench.leaderboard.collect import Entry, Group
from dvtr_bench.protocol import v1
from dvtr_bench.protocol.metrics import HIGHER_IS_BETTER

DIRECTION_METRICS = ("r1", "r5", "r10", "medr", "meanr", "map")
METRIC_HEADERS = {"r1": "R@1", "r5": "R@5", "r10": "R@10", "medr": "MdR", "meanr": "MnR", "map": "mAP"}
TABLE_METRICS = tuple(f"{d}_{m}" for d in ("t2v", "v2t") for m in DIRECTION_METRICS) + ("rsum", "mr")

MARK_TRANSDUCTIVE = "†"
MARK_RERANKED = "‡"
MARK_FEW_SEEDS = "*"

LEGEND = (f"{MARK_TRANSDUCTIVE} transductive: a score depends on other test captions or clips. "
          f"{MARK_RERANKED} test-time re-ranking (named after the method), always its own row. "
          f"{MARK_FEW_SEEDS} trained method reported on fewer than {len(v1.SEEDS)} seeds. "
          "Values are means over seeds, ± the sample standard deviation. Bold: best value among rows that are "
          "neither transductive nor re-ranked. Ranked by RSum (sum of the six recalls), then text→video R@1.")


def marks(e: Entry) -> str:
    return ((MARK_TRANSDUCTIVE if e.transductive else "") + (MARK_RERANKED if e.reranked else "")
            + (MARK_FEW_SEEDS if e.too_few_seeds else ""))


def method_name(e: Entry) -> str:
    """The method, and the re-ranking applied to its scores (a re-ranked run is its own row).

    A method rebuilt from its paper without the authors' code (its recipe says ``"reconstruction": true``) is
    named so in every table, as its docs and recipe name it.
    """
    name = e.record["method"] + (" (reconstruction)" if is_reconstruction(e) else "")
    return name + (f" + {e.record['reranking']}" if e.reranked else "")


def is_reconstruction(e: Entry) -> bool:
    """True when the record's recipe marks the method a reconstruction (``config.recipe.reconstruction``; a record
    whose ``config`` is the recipe itself is read the same way)."""
    config = e.record.get("config")
    if not isinstance(config, dict):
        return False
    recipe = config.get("recipe", config)
    return isinstance(recipe, dict) and recipe.get("reconstruction") is True


def setting(e: Entry) -> str:
    base = "zero-shot" if e.zero_shot else f"fine-tuned ({e.record['checkpoint_selection'].replace('_', ' ')})"
    if e.reranked:
        base += f" + {e.record['reranking']}"
    return base


def setting_code(e: Entry) -> str:
    """Short setting for narrow tables: ZS zero-shot, FT fine-tuned (selected on validation), FT-last."""
    if e.zero_shot:
        return "ZS"
    return "FT" if e.record["checkpoint_selection"] == "validation" else "FT-last"


def backbone(e: Entry) -> str:
    b = e.record["backbone"]
    return f"{b['name']} ({b['pretrained']})" if b.get("pretrained") else f"{b['name']} (random init)"


def fmt_value(x: Optional[float], digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_sig(x: Optional[float]) -> str:
    """A cost figure with three significant digits, never in exponent form for the usual range
    (0.285 GFLOPs, 53.1 GFLOPs, 231 clips/s, 12400 clips/s)."""
    if x is None:
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) < 1e-3:
        return f"{x:.2e}"
    decimals = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def metric_cell(e: Entry, key: str) -> tuple[str, Optional[str]]:
    """(mean, std) formatted; std is None when the record has one seed."""
    std = e.std[key] if e.std is not None else None
    return fmt_value(e.mean[key]), (None if std is None else fmt_value(std))


def best_values(group: Group) -> dict[str, float]:
    """Best mean per metric among compliant rows (nothing when there is no compliant row)."""
    out: dict[str, float] = {}
    for key in TABLE_METRICS:
        vals = [e.mean[key] for e in group.entries if e.compliant]
        if vals:
            out[key] = max(vals) if HIGHER_IS_BETTER[key] else min(vals)
    return out


def is_best(e: Entry, key: str, best: dict[str, float]) -> bool:
    # Compare at display precision: a 45.31 vs 45.34 "win" that reads 45.3 vs 45.3 is not shown as one.
    return e.compliant and key in best and fmt_value(e.mean[key]) == fmt_value(best[key])


def params_millions(p: Optional[int]) -> str:
    return "–" if p is None else fmt_sig(p / 1e6)


def train_time(t: Optional[float]) -> str:
    if t is None:
        return "–"
    if t < 120:
        return f"{t:.0f} s"
    if t < 7200:
        return f"{t / 60:.0f} min"
    return f"{t / 3600:.1f} h"


def cost_cells(e: Entry) -> dict[str, str]:
    c = e.record["cost"]
    return {"params_m": params_millions(c.get("parameters")), "gflops": fmt_sig(c.get("gflops_per_clip")),
            "clips_per_s": fmt_sig(c.get("eval_clips_per_s")), "train_time": train_time(c.get("train_time_s"))}


def one_line(s: str) -> str:
    """Text for a one-line cell: control characters (newlines, tabs, ...) become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in s)
