"""Captions from the scene graph: five varied sentences per take, each true for most of the take.

Truth is checked against what the camera actually sees: every object group gets per-frame visible
counts over the take's pure frames (transition frames excluded), and a statement is only made when it
holds in at least half of them. The vocabulary is deliberately small and consistent (one noun per
scene kind, eight colour words, fixed count words), so a text encoder trained from scratch can learn it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Fraction of the take's frames a statement must hold in.
TRUE_FOR = 0.5

KIND_NOUN = {
    "road": "a road", "parking_lot": "a parking lot", "river": "a river", "forest": "a forest",
    "farmland": "farmland", "beach": "a beach", "residential": "a residential area",
    "sports_field": "a sports field", "construction_site": "a construction site", "railway": "a railway",
    "bridge": "a bridge", "harbour": "a harbour",
}
# The word every caption of a kind contains (tests check it).
KIND_WORD = {
    "road": "road", "parking_lot": "parking lot", "river": "river", "forest": "forest", "farmland": "farmland",
    "beach": "beach", "residential": "residential", "sports_field": "sports field",
    "construction_site": "construction site", "railway": "railway", "bridge": "bridge", "harbour": "harbour",
}
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


def noun_phrase(group: dict[str, Any], stats: dict[str, Any]) -> str | None:
    """e.g. "two white boats", "a red tractor", "many cars"; None if nothing is true enough."""
    if stats["presence"] < TRUE_FOR:
        return None
    cw = count_phrase(stats)
    cols = stats["visible_colours"]
    colour = ""
    # A colour word only when the count is exact and every object seen for most of the take has that colour.
    if (group.get("colour_salient", True) and cw in COUNT_WORDS.values() and len(cols) == 1
            and stats["members_mostly_visible"] == stats["count_mode"]):
        colour = cols[0] + " "
    if cw == "one":
        art = "an" if colour.startswith("o") else "a"
        return f"{art} {colour}{group['type']}"
    if cw is None:
        return group["plural"]
    return f"{cw} {colour}{group['plural']}"


def make_captions(rng: np.random.Generator, kind: str, kind_np: str, groups: list[dict[str, Any]],
                  camera_motion: str, phrases: list[str], k: int = 5) -> list[str]:
    """Five distinct captions. Each names the scene kind; details come from true group statements."""
    details: list[tuple[str, str]] = []   # (noun phrase, full clause)
    for g in groups:
        np_ = g.get("noun_phrase")
        if not np_:
            continue
        single = np_.split(" ", 1)[0] in ("a", "an")
        verb = g["verb_one"] if single else g["verb"]
        details.append((np_, f"{np_} {verb}" if verb else np_))
    cam = CAMERA_SENTENCE[camera_motion]
    pool: list[str] = []
    openers = list(OPENERS)
    rng.shuffle(openers)
    for i, (np_, clause) in enumerate(details):
        o = openers[i % len(openers)]
        pool.append(f"{o} {kind_np} with {np_}.")
        pool.append(f"{o} {kind_np}: {clause}.")
        pool.append(f"{clause} in this view of {kind_np}.")
        pool.append(f"{cam} over {kind_np} where {clause}.")
    for p in phrases:
        pool.append(f"{openers[0]} {kind_np}; {p}.")
        pool.append(f"{cam} over {kind_np}; {p}.")
    pool.append(f"{cam} over {kind_np}.")
    pool.append(f"{openers[1]} {kind_np}.")
    if len(details) >= 2:
        a, b = details[0], details[1]
        pool.append(f"{openers[2]} {kind_np} with {a[0]} and {b[0]}.")
    pool = list(dict.fromkeys(s[0].upper() + s[1:] for s in pool))
    order = rng.permutation(len(pool))
    chosen: list[str] = []
    # Prefer captions that carry a detail; fall back to the plain ones only when details run out.
    detailed = [pool[i] for i in order if any(d[0] in pool[i] for d in details) or any(p in pool[i] for p in phrases)]
    plain = [pool[i] for i in order if pool[i] not in detailed]
    for s in detailed + plain:
        if s not in chosen:
            chosen.append(s)
        if len(chosen) == k:
            break
    i = 0
    while len(chosen) < k:  # tiny pools (no details at all): vary the opener
        s = f"{OPENERS[i % len(OPENERS)]} {kind_np}, {['seen from above', 'from a drone', 'from the air', 'shot from above', 'filmed from a drone'][i % 5]}."
        s = s[0].upper() + s[1:]
        if s not in chosen:
            chosen.append(s)
        i += 1
    return chosen
