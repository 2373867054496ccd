"""Qualitative galleries: what each method of a leaderboard group retrieves, side by side (``dvtr gallery``).

A paper's qualitative figure -- a query, each method's top clips, the right one marked -- made from what a
verified record already holds: its saved score matrix. Nothing is re-run, so a gallery can be made for any record
whose score files are at hand, and it shows exactly the rankings the metrics were computed from.

Per group (records on the same test split):

* **text -> video**: a sample of test captions drawn with a fixed seed, plus the hardest ones (the captions whose
  correct clip the methods rank worst, on average). For each, every method's top-``top`` clips, the correct clip
  marked, and the rank each method gave it.
* **video -> text**: a few sampled clips; every method's top captions, the clip's own captions marked, and the rank
  of its best own caption.

Ranks are protocol v1's (:mod:`dvtr_bench.protocol.metrics`: ties ranked pessimistically), and the displayed top
lists break ties the same way (the correct item after every item that ties with it), so a shown position always
agrees with the rank beside it. A record with several seeds is shown with its lowest seed's scores.

This module reads score files only; the frames come in as thumbnail strips keyed by clip id (the command reads
them from the dataset), so the leaderboard layer never needs the dataset layer.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dvtr_bench.errors import InputError
from dvtr_bench.leaderboard.collect import Entry, Group
from dvtr_bench.protocol.metrics import evaluate
from dvtr_bench.protocol.record import score_path, v2t_convention
from dvtr_bench.protocol.scores import ScoreFile, load_scores

DEFAULT_CAPTIONS = 12
DEFAULT_HARD = 4
DEFAULT_CLIPS = 4
TOP = 5


@dataclass
class MethodScores:
    """One record's score matrix, aligned to the gallery's caption and clip order, with its ranks."""

    label: str
    record_path: Path
    seed: int
    scores: np.ndarray           # [n_captions, n_clips]
    t2v_ranks: np.ndarray        # [n_captions], pessimistic
    v2t_ranks: dict[int, int]    # clip -> its video->text rank under ``v2t`` (captioned clips only)
    metrics: dict[str, float]
    v2t: str = "rank_clips"      # the video->text convention of the record's protocol version


@dataclass
class GalleryPlan:
    """What a gallery page shows (everything but the pictures)."""

    title: str
    fingerprint: str
    clip_ids: list[str]
    caption_texts: list[str]
    caption_to_clip: np.ndarray
    methods: list[MethodScores]
    sampled: list[int]           # caption indices
    hardest: list[int]           # caption indices
    clips: list[int]             # clip indices (video -> text)
    seed: int
    top: int
    left_out: list[tuple[str, str]] = field(default_factory=list)   # (record, why)

    def clips_needed(self) -> list[str]:
        """Clip ids whose pictures the page shows."""
        need: set[int] = set(self.clips)
        for i in [*self.sampled, *self.hardest]:
            need.add(int(self.caption_to_clip[i]))
            for m in self.methods:
                need.update(t2v_top(m.scores[i], int(self.caption_to_clip[i]), self.top))
        return [self.clip_ids[j] for j in sorted(need)]


def t2v_top(row: np.ndarray, correct: int, top: int = TOP) -> list[int]:
    """The ``top`` best clips of one caption's score row, the correct clip placed after every clip tying with it."""
    is_correct = np.zeros(row.shape[0], dtype=bool)
    is_correct[correct] = True
    order = np.lexsort((np.arange(row.shape[0]), is_correct, -np.asarray(row, dtype=np.float64)))
    return [int(j) for j in order[:top]]


def v2t_top(col: np.ndarray, own: np.ndarray, top: int = TOP) -> list[int]:
    """The ``top`` best captions of one clip's score column, its own captions after the others they tie with
    (protocol 1's ``rank_captions``: the clip's rank is that of its best own caption among all captions)."""
    order = np.lexsort((np.arange(col.shape[0]), own, -np.asarray(col, dtype=np.float64)))
    return [int(i) for i in order[:top]]


def v2t_top_clips(col: np.ndarray, caption_to_clip: np.ndarray, clip: int, top: int = TOP) -> list[int]:
    """Protocol 2's ``rank_clips``: each clip stands in the ranking by its best caption; returns the best caption of
    each of the ``top`` best clips, the queried clip after the clips it ties with (pessimistic, as its rank)."""
    col = np.asarray(col, dtype=np.float64)
    c2c = np.asarray(caption_to_clip)
    best: dict[int, int] = {}
    for i in np.lexsort((np.arange(col.shape[0]), -col)):     # best caption first, then caption order
        best.setdefault(int(c2c[i]), int(i))
    clips = sorted(best, key=lambda g: (-col[best[g]], g == clip, best[g]))
    return [best[g] for g in clips[:top]]


_V2T_TITLE = {"rank_clips": "rank of this clip among clips, each by its best caption",
              "rank_captions": "rank of its best own caption among all captions"}


def _label(e: Entry) -> str:
    r = e.record
    name = r["method"] + (f" + {r['reranking']}" if r.get("reranked") else "")
    flags = [f for f, on in (("transductive", e.transductive), ("zero-shot", e.zero_shot)) if on]
    return name + (f" ({', '.join(flags)})" if flags else "")


def _align(ref: ScoreFile, sf: ScoreFile) -> np.ndarray:
    """``sf.scores`` with its rows and columns put in ``ref``'s order; ValueError when they cannot be matched."""
    if sorted(sf.clip_ids) != sorted(ref.clip_ids):
        raise ValueError("its score file has other clips than the group's first record")
    pos = {c: j for j, c in enumerate(sf.clip_ids)}
    cols = np.asarray([pos[c] for c in ref.clip_ids], dtype=np.int64)
    if ref.caption_ids is not None and sf.caption_ids is not None:
        rpos = {c: i for i, c in enumerate(sf.caption_ids)}
        if sorted(rpos) != sorted(ref.caption_ids):
            raise ValueError("its score file has other captions than the group's first record")
        rows = np.asarray([rpos[c] for c in ref.caption_ids], dtype=np.int64)
    else:
        # without caption ids, rows match only when they are already in the same order
        ref_pos = {c: j for j, c in enumerate(ref.clip_ids)}
        owners = np.asarray([ref_pos[sf.clip_ids[j]] for j in sf.caption_to_clip], dtype=np.int64)
        same_owner = sf.n_captions == ref.n_captions and np.array_equal(owners, ref.caption_to_clip)
        same_text = ref.caption_texts is None or sf.caption_texts is None or sf.caption_texts == ref.caption_texts
        if not (same_owner and same_text):
            raise ValueError("its caption rows cannot be matched to the group's first record (no caption ids)")
        rows = np.arange(sf.n_captions)
    return np.asarray(sf.scores)[rows][:, cols]


def load_group_scores(group: Group) -> tuple[ScoreFile | None, list[MethodScores], list[tuple[str, str]]]:
    """Each record's lowest-seed score matrix (sha256 checked), aligned to the first readable one."""
    ref: ScoreFile | None = None
    methods: list[MethodScores] = []
    left_out: list[tuple[str, str]] = []
    for e in group.entries:
        run = min(e.record["runs"], key=lambda r: int(r["seed"]))
        path = score_path(e.record, run, e.path)
        try:
            sf = load_scores(path, expected_sha256=run["scores"]["sha256"])
            scores = np.asarray(sf.scores) if ref is None else _align(ref, sf)
        except InputError as exc:
            left_out.append((str(e.path), exc.reason))
            continue
        except ValueError as exc:
            left_out.append((str(e.path), str(exc)))
            continue
        if ref is None:
            ref = sf
        v2t = v2t_convention(e.record)
        res = evaluate(scores, ref.caption_to_clip, v2t=v2t)
        methods.append(MethodScores(label=_label(e), record_path=e.path, seed=int(run["seed"]), scores=scores,
                                    t2v_ranks=res.t2v_ranks,
                                    v2t_ranks={int(c): int(r) for c, r in zip(res.v2t_clips, res.v2t_ranks)},
                                    metrics=res.metrics, v2t=v2t))
    return ref, methods, left_out


def plan_gallery(group: Group, n_captions: int = DEFAULT_CAPTIONS, n_hard: int = DEFAULT_HARD,
                 n_clips: int = DEFAULT_CLIPS, seed: int = 0, top: int = TOP,
                 captions: Mapping[str, Sequence[str]] | None = None) -> GalleryPlan:
    """Choose what a group's gallery shows.

    Args:
        group: a leaderboard group (from :func:`dvtr_bench.leaderboard.collect`).
        n_captions: test captions sampled uniformly (fixed ``seed``) for text -> video.
        n_hard: the hardest further captions: highest mean rank of the correct clip over the methods.
        n_clips: clips sampled (same seed) for video -> text.
        seed: the sampling seed; the same seed and records give the same page.
        top: how many retrieved items per method.
        captions: clip id -> its captions, used only when a score file stores no caption texts.

    Raises:
        InputError: no record of the group has a readable score file.
    """
    ref, methods, left_out = load_group_scores(group)
    if ref is None or not methods:
        why = "; ".join(f"{p}: {r}" for p, r in left_out[:3])
        raise InputError(f"no record of group {group.title} has a usable score file ({why})")
    c2c = np.asarray(ref.caption_to_clip)
    texts = list(ref.caption_texts) if ref.caption_texts is not None else None
    if texts is None:
        texts = []
        for cid in ref.caption_ids or []:
            clip, _, pos = cid.rpartition("#")
            own = (captions or {}).get(clip) or []
            texts.append(own[int(pos)] if pos.isdigit() and int(pos) < len(own) else cid)
        if not texts:
            texts = [f"caption {k}" for k in range(ref.n_captions)]
    rng = np.random.default_rng(seed)
    n_cap = ref.n_captions
    sampled = sorted(int(i) for i in rng.choice(n_cap, size=min(n_captions, n_cap), replace=False))
    mean_rank = np.mean([m.t2v_ranks for m in methods], axis=0)
    rest = [i for i in np.lexsort((np.arange(n_cap), -mean_rank)) if int(i) not in set(sampled)]
    hardest = [int(i) for i in rest[:n_hard]]
    captioned = np.unique(c2c)
    clips = sorted(int(j) for j in rng.choice(captioned, size=min(n_clips, captioned.shape[0]), replace=False))
    return GalleryPlan(title=group.title, fingerprint=group.fingerprint, clip_ids=list(ref.clip_ids),
                       caption_texts=texts, caption_to_clip=c2c, methods=methods, sampled=sampled, hardest=hardest,
                       clips=clips, seed=seed, top=top, left_out=left_out)


# ------------------------------------------------------------------------------------------------ rendering

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem 2rem;color:#1d1d1f;
background:#fafafa}h1{font-size:1.45rem;margin:.2rem 0}h2{font-size:1.15rem;margin:2rem 0 .5rem;
border-bottom:2px solid #ddd;padding-bottom:.2rem}.meta{font-size:.82rem;color:#555;max-width:75rem;line-height:1.5}
.meta code{background:#eee;padding:0 .25rem;border-radius:3px}
table.methods{border-collapse:collapse;font-size:.82rem;margin:.6rem 0}
table.methods td,table.methods th{padding:.2rem .6rem;border-bottom:1px solid #e4e4e4;text-align:left}
.item{background:#fff;border:1px solid #e2e2e2;border-radius:8px;padding:.7rem .9rem;margin:.8rem 0}
.item h3{font-size:1rem;font-weight:600;margin:0 0 .5rem}.badge{font-size:.7rem;font-weight:600;border-radius:3px;
padding:.05rem .35rem;margin-left:.4rem;vertical-align:middle}.sample{background:#e8f0fe;color:#1a56c4}
.hard{background:#fde8e8;color:#b42318}table.cmp{border-collapse:collapse}
table.cmp td,table.cmp th{padding:.25rem .35rem;vertical-align:top;font-size:.78rem}
table.cmp th{color:#777;font-weight:500;text-align:center}td.m{font-weight:600;white-space:nowrap;padding-right:.8rem}
td.r{text-align:center;white-space:nowrap;font-size:.9rem;font-weight:700;padding:0 .7rem}
td.r.good{color:#067647}td.r.mid{color:#b54708}td.r.bad{color:#b42318}
.cell{position:relative}.t{width:128px;height:72px;border:3px solid transparent;border-radius:5px}
.t.hit{border-color:#12b76a}.t.miss{opacity:.92}.hitmark{position:absolute;top:4px;right:6px;background:#12b76a;
color:#fff;font-weight:700;border-radius:50%;width:1.2rem;height:1.2rem;text-align:center;line-height:1.2rem;
font-size:.75rem}.sc{color:#888;font-size:.7rem;text-align:center}.cid{color:#999;font-size:.65rem;
text-align:center;max-width:134px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.truth{display:flex;gap:.8rem;align-items:center;font-size:.8rem;color:#444;margin-bottom:.4rem}
.cap{max-width:16rem;padding:.2rem .35rem;border-radius:4px;background:#f4f4f4;font-size:.75rem;line-height:1.3}
.cap.own{background:#dcfae6;border:1px solid #12b76a}.owncaps{font-size:.8rem;margin:.2rem 0 .5rem 1rem;
color:#333}footer{font-size:.75rem;color:#888;margin-top:2rem}
.flip{background-repeat:no-repeat;background-position:0 0;flex:none}
.flip:hover{animation:flip var(--dur) steps(var(--steps),jump-none) infinite}
@keyframes flip{from{background-position:0 0}to{background-position:100% 0}}
"""


def _rank_class(rank: int, top: int) -> str:
    return "good" if rank == 1 else ("mid" if rank <= max(top, 10) else "bad")


def render_gallery(plan: GalleryPlan, strips: Mapping[str, bytes], strip_frames: int,
                   frame_size: tuple[int, int] = (128, 72), generated_by: str = "dvtr gallery",
                   page_dir: str | Path | None = None) -> str:
    """The self-contained HTML page of a :class:`GalleryPlan`.

    ``strips`` maps clip id -> a JPEG strip of ``strip_frames`` frames (each ``frame_size``); every clip of
    :meth:`GalleryPlan.clips_needed` must be there. Each picture is inlined once (a CSS class per clip), and hovering
    one flips through its frames. No script, font or remote resource. With ``page_dir`` (where the page will be)
    records are linked by relative paths, so a committed page names no machine's folders.
    """
    missing = [c for c in plan.clips_needed() if c not in strips]
    if missing:
        raise ValueError(f"no frames for {len(missing)} clip(s), e.g. {missing[:3]}")
    esc = html.escape
    needed = plan.clips_needed()
    cls = {cid: f"c{k}" for k, cid in enumerate(needed)}
    w, h = frame_size
    pictures = "".join(
        f".{cls[c]}{{background-image:url(data:image/jpeg;base64,{base64.b64encode(strips[c]).decode('ascii')})}}"
        for c in needed)
    flip_vars = f"--steps:{max(1, strip_frames - 1)};--dur:1.8s;background-size:{strip_frames * 100}% 100%"

    def thumb(j: int, mark: bool, big: bool = False) -> str:
        cid = plan.clip_ids[j]
        size = f"width:{w * 2}px;height:{h * 2}px;" if big else ""
        return (f'<div class="t flip {cls[cid]}{" hit" if mark else ""}" role="img" aria-label="{esc(cid)}" '
                f'title="{esc(cid)}" style="{size}{flip_vars}"></div>')

    n_cap = len(plan.caption_texts)
    def record_link(p: Path) -> str:
        if page_dir is None:
            return f"<code>{esc(str(p))}</code>"
        rel = Path(os.path.relpath(Path(p).resolve(), Path(page_dir).resolve())).as_posix()
        return f'<a href="{esc(rel)}"><code>{esc(rel)}</code></a>'

    methods_rows = "".join(
        f"<tr><td>{esc(m.label)}</td><td>{record_link(m.record_path)}</td><td>{m.seed}</td>"
        f"<td>{m.metrics['t2v_r1']:.1f}</td><td>{m.metrics['t2v_r5']:.1f}</td><td>{m.metrics['v2t_r1']:.1f}</td>"
        f"<td>{m.metrics['rsum']:.1f}</td></tr>" for m in plan.methods)
    head_cols = "".join(f"<th>{k}</th>" for k in range(1, plan.top + 1))

    t2v_items = []
    for i in [*plan.sampled, *plan.hardest]:
        c = int(plan.caption_to_clip[i])
        kind = ('<span class="badge hard">hard</span>' if i in plan.hardest else
                '<span class="badge sample">sample</span>')
        rows = []
        for m in plan.methods:
            top = t2v_top(m.scores[i], c, plan.top)
            rank = int(m.t2v_ranks[i])
            cells = "".join(
                f'<td><div class="cell">{thumb(j, j == c)}{"<span class=hitmark>✓</span>" if j == c else ""}</div>'
                f'<div class="sc">{m.scores[i, j]:.3f}</div><div class="cid">{esc(plan.clip_ids[j])}</div></td>'
                for j in top)
            rows.append(f'<tr><td class="m">{esc(m.label)}</td><td class="r {_rank_class(rank, plan.top)}" '
                        f'title="rank of the correct clip">#{rank}</td>{cells}</tr>')
        t2v_items.append(
            f'<div class="item t2v" data-caption="{i}"><h3>“{esc(plan.caption_texts[i])}”{kind}</h3>'
            f'<div class="truth">{thumb(c, True)}<div>correct clip <code>{esc(plan.clip_ids[c])}</code></div></div>'
            f'<table class="cmp"><tr><th></th><th>rank of correct</th>{head_cols}</tr>{"".join(rows)}</table></div>')

    v2t_items = []
    for j in plan.clips:
        own_mask = plan.caption_to_clip == j
        own_list = "".join(f"<li>{esc(plan.caption_texts[int(k)])}</li>" for k in np.flatnonzero(own_mask))
        rows = []
        for m in plan.methods:
            top = (v2t_top_clips(m.scores[:, j], plan.caption_to_clip, j, plan.top) if m.v2t == "rank_clips"
                   else v2t_top(m.scores[:, j], own_mask, plan.top))
            rank = m.v2t_ranks.get(j)
            cells = "".join(
                f'<td><div class="cap{" own" if own_mask[k] else ""}">{"✓ " if own_mask[k] else ""}'
                f'{esc(plan.caption_texts[k])}</div><div class="sc">{m.scores[k, j]:.3f}</div></td>' for k in top)
            rows.append(f'<tr><td class="m">{esc(m.label)}</td><td class="r {_rank_class(rank or n_cap, plan.top)}" '
                        f'title="{_V2T_TITLE[m.v2t]}">#{rank}</td>{cells}</tr>')
        v2t_items.append(
            f'<div class="item v2t" data-clip="{esc(plan.clip_ids[j])}"><h3>clip <code>{esc(plan.clip_ids[j])}'
            f'</code></h3><div class="truth">{thumb(j, False, big=True)}<div>its captions:<ul class="owncaps">'
            f'{own_list}</ul></div></div><table class="cmp"><tr><th></th><th>rank</th>{head_cols}</tr>'
            f'{"".join(rows)}</table></div>')

    left = ""
    if plan.left_out:
        left = ('<p class="meta">Not shown (score files unusable): '
                + "; ".join(f"<code>{esc(p)}</code>: {esc(r)}" for p, r in plan.left_out) + "</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{esc(plan.title)} – dvtr gallery</title>
<style>{_CSS}{pictures}</style></head><body>
<h1>{esc(plan.title)}: what each method retrieves</h1>
<p class="meta">Test split fingerprint <code>{esc(plan.fingerprint[:16])}</code>: {len(plan.clip_ids)} clips,
{n_cap} captions. Every ranking below is read from the records' saved score matrices (nothing re-run); ranks follow
the records' protocol (ties counted against the method; video→text under protocol 2 ranks clips, each shown by
its best caption). Captions: {len(plan.sampled)} drawn at random (seed {plan.seed}) and
the {len(plan.hardest)} hardest (worst mean rank of the correct clip over the methods). Green frame / ✓: the correct
clip or an own caption. Hover a picture to play its frames.</p>
<table class="methods"><tr><th>method</th><th>record</th><th>seed</th><th>T2V R@1</th><th>T2V R@5</th>
<th>V2T R@1</th><th>RSum</th></tr>{methods_rows}</table>{left}
<h2>Text → video: top {plan.top} clips per method</h2>
{''.join(t2v_items)}
<h2>Video → text: top {plan.top} captions per method</h2>
{''.join(v2t_items)}
<footer>{esc(generated_by)} · self-contained page: no script, no remote resource.</footer>
</body></html>
"""


def write_gallery(plan: GalleryPlan, strips: Mapping[str, bytes], strip_frames: int, out_dir: str | Path, slug: str,
                  frame_size: tuple[int, int] = (128, 72), generated_by: str = "dvtr gallery") -> Path:
    """Write ``out_dir/<slug>/gallery.html``; return its path."""
    d = Path(out_dir) / slug
    d.mkdir(parents=True, exist_ok=True)
    path = d / "gallery.html"
    path.write_text(render_gallery(plan, strips, strip_frames, frame_size, generated_by, page_dir=d), encoding="utf-8")
    return path


def gallery_index(pages: Sequence[tuple[str, str, Path]], out_dir: str | Path, notes: Sequence[str] = ()) -> Path:
    """``out_dir/index.html`` linking each group's page: (title, fingerprint, page path)."""
    out = Path(out_dir)
    items = "".join(f'<li><a href="{html.escape(p.relative_to(out).as_posix())}">{html.escape(t)}</a> '
                    f"<code>{html.escape(fp[:12])}</code></li>" for t, fp, p in pages)
    extra = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    text = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dvtr galleries</title></head>"
            "<body style=\"font-family:system-ui,sans-serif;margin:2rem\"><h1>dvtr galleries</h1>"
            f"<ul>{items}</ul>" + (f"<h2>Not made</h2><ul>{extra}</ul>" if extra else "") + "</body></html>\n")
    path = out / "index.html"
    path.write_text(text, encoding="utf-8")
    return path


def describe_plan(plan: GalleryPlan) -> dict[str, Any]:
    """A JSON-friendly summary of a plan (what the command reports)."""
    return {"title": plan.title, "methods": [m.label for m in plan.methods], "captions": len(plan.sampled),
            "hardest": len(plan.hardest), "clips": len(plan.clips), "left_out": plan.left_out}
