"""Captions from the scene graph: five varied sentences per take, each true for most of the take.

Truth is checked against what the camera actually sees: every object group gets per-frame visible
counts over the take's pure frames (transition frames excluded), and a statement is only made when it
holds in at least half of them. The vocabulary is deliberately small and consistent (one noun per
scene kind, eight colour words, fixed count words), so a text encoder trained from scratch can learn it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dvtr_bench.synth.scenes import SCENES

# Fraction of the take's frames a statement must hold in.
TRUE_FOR = 0.5

# Per-kind caption words come from the scene registry, so a new scene kind needs no entry here.
KIND_NOUN = {kind: spec.noun for kind, spec in SCENES.items()}
# The word every caption of a kind contains (tests check it).
KIND_WORD = {kind: spec.word for kind, spec in SCENES.items()}
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
CAMERA_SENTENCE = {
    "forward": "the drone flies forward", "pan_left": "the camera pans left", "pan_right": "the camera pans right",
    "rotate": "the drone slowly rotates", "ascend": "the drone climbs", "descend": "the drone descends",
    "hover": "the drone hovers",
}
OPENERS = ["an aerial view of", "drone footage of", "an overhead view of", "a top-down shot of", "a drone video of"]


def group_stats(vis: np.ndarray, colours: list[str]) -> dict[str, Any]:
    """Visibility statistics of one group from ``vis`` [frames, members] (bool)."""
    if vis.shape[1] == 0 or vis.shape[0] == 0:
        return {"presence": 0.0, "count_mode": 0, "count_mode_fraction": 0.0, "count_median": 0,
                "visible_colours": [], "max_visible": 0, "members_mostly_visible": 0}
    counts = vis.sum(1)
    presence = float((counts >= 1).mean())
    values, freq = np.unique(counts, return_counts=True)
    mode = int(values[np.argmax(freq)])
    frac = float(freq.max() / len(counts))
    per_member = vis.mean(0)
    vis_cols = sorted({c for c, f in zip(colours, per_member) if f >= TRUE_FOR and c})
    return {"presence": round(presence, 4), "count_mode": mode, "count_mode_fraction": round(frac, 4),
            "count_median": int(np.floor(np.median(counts))),
            "visible_colours": vis_cols, "max_visible": int(counts.max()),
            "members_mostly_visible": int((per_member >= TRUE_FOR).sum())}


def count_phrase(stats: dict[str, Any]) -> str | None:
    """The count word that is true of most frames, or None when no count is (e.g. traffic passing)."""
    mode, frac, median = stats["count_mode"], stats["count_mode_fraction"], stats.get("count_median", 0)
    if 1 <= mode <= 5 and frac >= TRUE_FOR:
        return COUNT_WORDS[mode]
    # Larger or fluctuating groups: at least this many are seen in half of the frames.
    if median >= 6:
        return "many"
    if median >= 3:
        return "several"
    return None


def _article(word: str) -> str:
    return "an" if word[:1] in "aeio" else "a"


def noun_phrase(group: dict[str, Any], stats: dict[str, Any]) -> str | None:
    """e.g. "two white boats", "a red tractor", "many cars", "players in red"; None if nothing is true enough."""
    if stats["presence"] < TRUE_FOR:
        return None
    cw = count_phrase(stats)
    cols = stats["visible_colours"]
    mostly = stats["members_mostly_visible"]
    colour = None
    # A colour word only when every object seen for most of the take shares it (and, with an exact count,
    # when those objects are exactly the ones counted).
    if group.get("colour_salient", True) and len(cols) == 1 and mostly >= 1:
        if cw not in COUNT_WORDS.values() or mostly == stats["count_mode"]:
            colour = cols[0]
    noun = group["type"] if cw == "one" else group["plural"]
    if colour:
        core = f"{noun} in {colour}" if group.get("colour_in") else f"{colour} {noun}"
    else:
        core = noun
    if cw == "one":
        return f"{_article(core)} {core}"
    if cw is None:
        return core
    return f"{cw} {core}"


def make_captions(rng: np.random.Generator, kind: str, kind_nps: list[str], groups: list[dict[str, Any]],
                  camera_motion: str, phrases: list[str], k: int = 5) -> list[str]:
    """``k`` distinct captions. Each names the scene kind; details come from the true group statements,
    the scene's true phrases and sometimes the camera motion."""
    details: list[tuple[str, str]] = []   # (noun phrase, clause)
    for g in groups:
        np_ = g.get("noun_phrase")
        if not np_:
            continue
        single = np_.split(" ", 1)[0] in ("a", "an")
        verb = g["verb_one"] if single else g["verb"]
        details.append((np_, f"{np_} {verb}" if verb else np_))
    cam = CAMERA_SENTENCE[camera_motion]

    def kn() -> str:
        return kind_nps[int(rng.integers(len(kind_nps)))]

    def op() -> str:
        return OPENERS[int(rng.integers(len(OPENERS)))]

    def with_(kind_np: str, np_: str) -> str:
        return f"{kind_np} and {np_}" if " with " in kind_np else f"{kind_np} with {np_}"

    rich: list[str] = []
    for np_, clause in details:
        rich.append(f"{op()} {with_(kn(), np_)}.")
        if clause != np_:  # groups without a verb (an intersection) only fit the "with" form
            rich += [f"{op()} {kn()}: {clause}.", f"{clause} in this view of {kn()}.",
                     f"{cam} over {kn()} where {clause}."]
    for p in phrases:
        rich += [f"{op()} {kn()}; {p}.", f"{cam} over {kn()}; {p}."]
    if len(details) >= 2:
        rich.append(f"{op()} {with_(kn(), details[0][0])} and {details[1][0]}.")
    plain = [f"{cam} over {kn()}.", f"{op()} {kn()}."] + [f"{o} {n}." for o in OPENERS for n in kind_nps]
    rich = list(dict.fromkeys(rich))
    plain = list(dict.fromkeys(plain))
    chosen: list[str] = []
    # Mostly detailed captions (they separate hard negatives), one plain caption when details allow.
    n_rich = min(len(rich), k - 1) if rich else 0
    for i in rng.permutation(len(rich))[:n_rich]:
        chosen.append(rich[int(i)])
    for i in rng.permutation(len(plain)):
        if len(chosen) >= k:
            break
        if plain[int(i)] not in chosen:
            chosen.append(plain[int(i)])
    extra = ["seen from above", "from a drone", "from the air", "filmed from above", "shot from a drone"]
    i = 0
    while len(chosen) < k:
        s = f"{OPENERS[i % len(OPENERS)]} {kind_nps[i % len(kind_nps)]}, {extra[(i // len(OPENERS)) % len(extra)]}."
        if s not in chosen:
            chosen.append(s)
        i += 1
    return [c[0].upper() + c[1:] for c in chosen]
