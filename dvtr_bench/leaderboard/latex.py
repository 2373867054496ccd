"""LaTeX tables of a leaderboard group that fit a paper's page, and their width known without TeX.

Three booktabs tables per group (``\\usepackage{booktabs}``, default fonts, 10 pt document):

* ``main`` (``leaderboard.tex``): a ``table`` for one column of a two-column page -- rank, method, setting,
  seeds, text→video R@1, video→text R@1, RSum;
* ``t2v`` / ``v2t`` (``leaderboard-t2v.tex``, ``leaderboard-v2t.tex``): a ``table*`` per direction with all
  six metrics, for a one-column page or across a two-column one.

Every cell is built from runs of text whose width comes from the fonts' own metrics
(:mod:`dvtr_bench.leaderboard.texmetrics`), so :meth:`TexTable.width` is the table's width in pt as TeX
will set it (an upper bound by a fraction of a point: kerning is ignored). When a table would be wider than
its budget -- :data:`COLUMN_WIDTH` for ``main``, :data:`TEXT_WIDTH` for the direction tables -- the method
column wraps (a ``p`` column) so that it fits; each file states its width in a comment.

Text is escaped for the default OT1 encoding, where ``<``, ``>`` and ``|`` are other glyphs: they are set
in math, accented Latin letters as accent commands, a few symbols by name, and any other character as ``?``.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from dvtr_bench.leaderboard.cells import (DIRECTION_METRICS, METRIC_HEADERS, backbone, best_values, is_best,
                                          method_name, metric_cell, one_line, setting_code)
from dvtr_bench.leaderboard.collect import Entry, Group
from dvtr_bench.leaderboard.texmetrics import kern, quad, space, width
from dvtr_bench.protocol import v1
from dvtr_bench.protocol.metrics import HIGHER_IS_BETTER

#: Width budgets in pt. A column of a two-column page: 3.25 in (ICML's \columnwidth; CVPR/ICCV 237.1 pt,
#: ACM 241.1 pt and IEEE 252 pt are wider). A one-column text block: 5.5 in (NeurIPS/ICLR; every
#: two-column \textwidth, where a table* sits, is wider: CVPR 6.875 in, ICML 6.75 in, IEEE 7.16 in).
COLUMN_WIDTH = 3.25 * 72.27
TEXT_WIDTH = 5.5 * 72.27
# The narrowest a wrapped method column gets; below it the table is left wider and says so.
MIN_METHOD_WIDTH = 50.0

SIZE_PT = {"small": 9, "footnotesize": 8, "scriptsize": 7}
# Math script size of each text size (size10.clo: \DeclareMathSizes).
SCRIPT_PT = {10: 7, 9: 6, 8: 6, 7: 5, 6: 5, 5: 5}
SCRIPTSPACE = 0.5    # TeX's \scriptspace after a superscript

_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0304": "=",
            "\u0327": "c", "\u030a": "r", "\u030c": "v", "\u0306": "u", "\u0307": "."}
# Characters set from a text font: (tex, code in cmr/cmbx).
_TEXT_SPECIAL = {"&": (r"\&", 38), "%": (r"\%", 37), "$": (r"\$", 36), "#": (r"\#", 35),
                 "~": (r"\~{}", 126), "^": (r"\^{}", 94), '"': ("''", 34), "ß": (r"\ss{}", 25), "æ": (r"\ae{}", 26),
                 "œ": (r"\oe{}", 27), "ø": (r"\o{}", 28), "Æ": (r"\AE{}", 29), "Œ": (r"\OE{}", 30),
                 "Ø": (r"\O{}", 31), "ı": (r"\i{}", 16), "–": ("--", 123), "—": ("---", 124), "‘": ("`", 96),
                 "’": ("'", 39), "“": ("``", 92), "”": ("''", 34)}
# Characters set in math: (tex, font family, code).
_MATH_SPECIAL = {"\\": (r"$\backslash$", "cmsy", 110), "{": (r"\{", "cmsy", 102), "}": (r"\}", "cmsy", 103),
                 "<": ("$<$", "cmmi", 60), ">": ("$>$", "cmmi", 62), "|": ("$|$", "cmsy", 106),
                 "±": (r"$\pm$", "cmsy", 6), "×": (r"$\times$", "cmsy", 2), "→": (r"$\rightarrow$", "cmsy", 33),
                 "†": (r"$\dagger$", "cmsy", 121), "‡": (r"$\ddagger$", "cmsy", 122), "µ": (r"$\mu$", "cmmi", 22),
                 "μ": (r"$\mu$", "cmmi", 22)}


@dataclass(frozen=True)
class Run:
    """A piece of a cell: its LaTeX and its width in pt."""

    tex: str
    width: float


def text(s: str, size: int, bold: bool = False) -> Run:
    """Escaped text in the roman (or bold) font of ``size`` pt, with its width."""
    font = f"{'cmbx' if bold else 'cmr'}{size}"
    out: list[str] = []
    w = 0.0
    s = one_line(s)
    prev = 0        # the previous character when TeX kerns it with this one (plain text, same font)
    for i, ch in enumerate(s):
        nxt = s[i + 1] if i + 1 < len(s) else ""
        code = ord(ch)
        if 33 <= code < 127 and ch not in _TEXT_SPECIAL and ch not in _MATH_SPECIAL and ch != "_":
            w += kern(font, prev, code) if prev else 0.0
            prev = code
        else:
            prev = 0
        if ch == " ":
            out.append(" ")
            w += space(font)
        elif ch == "_":
            # OT1 has no underscore glyph: LaTeX draws \_ as a 0.06 em kern and a 0.3 em rule.
            out.append(r"\_")
            w += 0.36 * quad(font)
        elif ch in _TEXT_SPECIAL:
            tex, c = _TEXT_SPECIAL[ch]
            out.append(tex)
            w += width(font, c)
        elif ch in _MATH_SPECIAL:
            tex, fam, c = _MATH_SPECIAL[ch]
            out.append(tex)
            w += width(f"{fam}{size}", c)
        elif 33 <= code < 127:
            out.append(ch)
            # Break the ligatures TeX would make of these pairs (--, ``, !`, ?`), so the text reads as typed.
            if (ch == "-" and nxt == "-") or (ch in "`'" and nxt == ch) or (ch in "!?" and nxt == "`"):
                out.append("{}")
                prev = 0
            w += width(font, code)
        else:
            base = unicodedata.normalize("NFKD", ch)
            accents = [_ACCENTS.get(m) for m in base[1:]]
            if base[:1].isascii() and base[:1].isalpha() and accents and all(accents):
                tex = base[0]
                for a in accents:
                    tex = f"\\{a}{{{tex}}}"
                out.append(tex)
                w += width(font, ord(base[0]))
            else:
                out.append("?")
                w += width(font, ord("?"))
    body = "".join(out)
    return Run(rf"\textbf{{{body}}}" if bold and body else body, w)


def math_symbol(command: str, code: int, size: int, family: str = "cmsy") -> Run:
    """One math symbol (``\\pm``, ``\\uparrow``, ...) in text of ``size`` pt."""
    return Run(f"${command}$", width(f"{family}{size}", code))


def superscript(symbols: Sequence[tuple[str, int]], size: int) -> Run:
    """``$^{...}$`` of math symbols (``\\dagger``, ``\\ddagger``, ``*``) after text of ``size`` pt."""
    if not symbols:
        return Run("", 0.0)
    script = SCRIPT_PT[size]
    tex = "".join(cmd for cmd, _ in symbols)
    return Run(f"$^{{{tex}}}$", sum(width(f"cmsy{script}", c) for _, c in symbols) + SCRIPTSPACE)


def sized(runs: Sequence[Run], name: str) -> Run:
    """Runs in another size command, e.g. ``{\\scriptsize ...}`` (the runs must be built at that size)."""
    return Run("{\\" + name + " " + "".join(r.tex for r in runs) + "}", sum(r.width for r in runs))


@dataclass
class Cell:
    """A table cell: one line of runs, or several stacked lines (a mean above its ± std)."""

    runs: list[Run] = field(default_factory=list)
    below: list[Run] = field(default_factory=list)     # a second line, right-aligned under the first

    @property
    def width(self) -> float:
        return max(sum(r.width for r in self.runs), sum(r.width for r in self.below))

    @property
    def tex(self) -> str:
        first = "".join(r.tex for r in self.runs)
        if not self.below:
            return first
        # A top-aligned inner tabular: the first line stays on the row's baseline, the second goes below.
        return rf"\begin{{tabular}}[t]{{@{{}}r@{{}}}}{first}\\{''.join(r.tex for r in self.below)}\end{{tabular}}"

    def words(self) -> list[float]:
        """Widths of the pieces a wrapped (p-column) cell can break into: words, the marks kept on the last."""
        widths: list[float] = []
        for r in self.runs:
            if r.tex.startswith("$^"):
                if widths:
                    widths[-1] += r.width
                continue
            plain = r.tex.replace("\\textbf{", "").rstrip("}")
            n_spaces = plain.count(" ")
            if n_spaces == 0:
                widths.append(r.width)
            else:
                # Proportional split of a run's width over its words is exact enough to pick a wrap width.
                words = plain.split(" ")
                total = sum(len(w) for w in words) or 1
                widths.extend(r.width * len(w) / total for w in words)
        return widths or [0.0]


@dataclass
class TexTable:
    """A booktabs table: columns, a two-level header, rows of cells; its width and its LaTeX."""

    align: list[str]                          # "l", "r" or "c" per column
    header: list[Cell]
    rows: list[list[Cell]]
    groups: list[tuple[int, int, Cell]] = field(default_factory=list)   # (first column, span, label) above header
    size: str = "footnotesize"
    tabcolsep: float = 3.0
    env: str = "table"
    caption: str = ""
    label: str = ""
    budget: float = COLUMN_WIDTH
    wrap: dict[int, float] = field(default_factory=dict)   # column -> p{} width in pt
    note: str = ""

    def column_widths(self) -> list[float]:
        """Width in pt of each column, its separation included (none at the outer edges, ``@{}``)."""
        n = len(self.align)
        widths = []
        for j in range(n):
            natural = self.wrap.get(j)
            if natural is None:
                natural = max([self.header[j].width] + [row[j].width for row in self.rows])
            sep = (0.0 if j == 0 else self.tabcolsep) + (0.0 if j == n - 1 else self.tabcolsep)
            widths.append(natural + sep)
        # A spanning header wider than its columns widens the last of them, as TeX's \multicolumn does.
        for first, span, cell in self.groups:
            cols = range(first, first + span)
            inner = sum(widths[j] for j in cols)
            outer_sep = (0.0 if first == 0 else self.tabcolsep) + (0.0 if first + span == n else self.tabcolsep)
            need = cell.width + outer_sep
            if need > inner:
                widths[first + span - 1] += need - inner
        return widths

    def width(self) -> float:
        """The table's width in pt."""
        return sum(self.column_widths())

    def fits(self) -> bool:
        return self.width() <= self.budget

    def render(self) -> str:
        n = len(self.align)
        spec = "".join(f"p{{{self.wrap[j]:g}pt}}" if j in self.wrap else a for j, a in enumerate(self.align))
        fit = ("fits" if self.fits() else "is WIDER than") + f" {self.budget:.1f}pt"
        out = [
            r"% Generated by dvtr leaderboard; requires \usepackage{booktabs}.",
            f"% Width {self.width():.1f}pt in a 10pt document (Computer Modern metrics): {fit}"
            + (f" ({self.note})" if self.note else "") + ".",
            rf"\begin{{{self.env}}}[t]",
            r"\centering",
            "\\" + self.size,
            rf"\setlength{{\tabcolsep}}{{{self.tabcolsep:g}pt}}",
            rf"\caption{{{self.caption}}}",
            rf"\label{{{self.label}}}",
            rf"\begin{{tabular}}{{@{{}}{spec}@{{}}}}",
            r"\toprule",
        ]
        if self.groups:
            cells: list[str] = []
            j = 0
            rules = []
            for first, span, cell in self.groups:
                cells += [""] * (first - j)
                cells.append(rf"\multicolumn{{{span}}}{{c}}{{{cell.tex}}}")
                rules.append(rf"\cmidrule(lr){{{first + 1}-{first + span}}}")
                j = first + span
            cells += [""] * (n - j)
            out.append(" & ".join(cells) + r" \\")
            out.append("".join(rules))
        out.append(" & ".join(c.tex for c in self.header) + r" \\")
        out.append(r"\midrule")
        for row in self.rows:
            cells = [(r"\raggedright " + c.tex) if j in self.wrap else c.tex for j, c in enumerate(row)]
            out.append(" & ".join(cells) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", rf"\end{{{self.env}}}", ""]
        return "\n".join(out)


def latex_escape(s: str) -> str:
    """``s`` as LaTeX text in the default (OT1) encoding."""
    return text(s, 10).tex


# ------------------------------------------------------------------------------------------- the tables
def _marks(e: Entry, size: int) -> Run:
    sym = ([(r"\dagger", 121)] if e.transductive else []) + ([(r"\ddagger", 122)] if e.reranked else []) \
        + ([("*", 3)] if e.too_few_seeds else [])
    return superscript(sym, size)


def _value(e: Entry, key: str, best: dict[str, float], size: int, stacked: bool = False) -> Cell:
    mean, std = metric_cell(e, key)
    runs = [text(mean, size, bold=is_best(e, key, best))]
    if std is None:
        return Cell(runs)
    small = min(SIZE_PT["scriptsize"], size)
    pm = [sized([math_symbol(r"\pm", 6, small), text(std, small)], "scriptsize")]
    return Cell(runs, below=pm) if stacked else Cell(runs + pm)


def _head(label: str, size: int, key: Optional[str] = None) -> Cell:
    runs = [text(label, size)]
    if key is not None:
        runs.append(math_symbol(r"\uparrow", 34, size) if HIGHER_IS_BETTER[key] else math_symbol(r"\downarrow", 35,
                                                                                                   size))
    return Cell(runs)


def _row_start(i: int, e: Entry, size: int) -> list[Cell]:
    return [Cell([text(str(i + 1), size)]), Cell([text(method_name(e), size), _marks(e, size)]),
            Cell([text(setting_code(e), size)]), Cell([text(str(e.n_seeds), size)])]


def _caption(group: Group, what: str) -> str:
    backbones = sorted({backbone(e) for e in group.entries})
    bb = f" Backbone: {backbones[0]}." if len(backbones) == 1 else ""
    head = text(f"{what} on {group.dataset_name}, protocol v{group.protocol_version} ({group.n_clips} test clips, "
                f"{group.n_captions} captions; fingerprint {group.fingerprint[:12]}).{bb}", 10).tex
    return (head + r" ZS: zero-shot; FT: fine-tuned, checkpoint selected on validation (FT-last: last epoch)."
            r" Mean over seeds $\pm$ sample std. $^\dagger$transductive, $^\ddagger$test-time re-ranking,"
            rf" $^*$fewer than {len(v1.SEEDS)} seeds. Bold: best row that is neither transductive nor re-ranked.")


def _label(group: Group, part: str) -> str:
    slug = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in group.slug)
    return f"tab:dvtr-{slug}" + (f"-{part}" if part else "")


def main_table(group: Group) -> TexTable:
    """Rank, method, setting, seeds, T2V R@1, V2T R@1 and RSum: for one column of a two-column page."""
    size = SIZE_PT["footnotesize"]
    best = best_values(group)

    def build(stacked: bool) -> TexTable:
        rows = [_row_start(i, e, size) + [_value(e, k, best, size, stacked) for k in ("t2v_r1", "v2t_r1", "rsum")]
                for i, e in enumerate(group.entries)]
        header = [Cell([text("#", size)]), _head("Method", size), _head("Setting", size), _head("Seeds", size),
                  _head("T2V", size), _head("V2T", size), _head("RSum", size, "rsum")]
        return TexTable(align=list("rllrrrr"), header=header, rows=rows,
                        groups=[(4, 2, _head("R@1", size, "t2v_r1"))], caption=_caption(group, "Retrieval"),
                        label=_label(group, ""), budget=COLUMN_WIDTH, env="table")

    return _fit(build)


def direction_table(group: Group, direction: str) -> TexTable:
    """All six metrics of one direction (``"t2v"`` or ``"v2t"``): for a one-column page, or a table*."""
    size = SIZE_PT["footnotesize"]
    best = best_values(group)
    keys = [f"{direction}_{m}" for m in DIRECTION_METRICS]
    name = "Text$\\rightarrow$video" if direction == "t2v" else "Video$\\rightarrow$text"
    what = "Text-to-video retrieval" if direction == "t2v" else "Video-to-text retrieval"

    def build(stacked: bool) -> TexTable:
        rows = [_row_start(i, e, size) + [_value(e, k, best, size, stacked) for k in keys]
                for i, e in enumerate(group.entries)]
        header = [Cell([text("#", size)]), _head("Method", size), _head("Setting", size), _head("Seeds", size)]
        header += [_head(METRIC_HEADERS[m], size, f"{direction}_{m}") for m in DIRECTION_METRICS]
        return TexTable(align=list("rllr") + ["r"] * len(keys), header=header, rows=rows,
                        groups=[(4, len(keys), Cell([Run(name, _direction_width(direction, size))]))],
                        caption=_caption(group, what), label=_label(group, direction), budget=TEXT_WIDTH,
                        env="table*")

    return _fit(build)


def _direction_width(direction: str, size: int) -> float:
    a, b = ("Text", "video") if direction == "t2v" else ("Video", "text")
    return text(a, size).width + width(f"cmsy{size}", 33) + text(b, size).width


def _fit(build: Callable[[bool], TexTable]) -> TexTable:
    """The first layout that fits the budget: values with their ± std inline; then the method column wrapped
    at word boundaries; then each std stacked under its mean; then both. The last one otherwise, noted."""
    table = build(False)
    if table.fits():
        return table
    for stacked, wrap in ((False, True), (True, False), (True, True)):
        table = build(stacked)
        if wrap:
            _wrap_method(table)
        if table.fits():
            return table
    table.note = "use a wider float, or shorten the method names"
    return table


def _wrap_method(table: TexTable) -> None:
    cells = [table.header[1]] + [row[1] for row in table.rows]
    natural = max(c.width for c in cells)
    longest_word = max(max(c.words()) for c in cells)
    target = max(MIN_METHOD_WIDTH, longest_word, natural - (table.width() - table.budget))
    # Whole tenths of a point: the width written into p{...} is then exactly the one computed here.
    target = math.ceil(target * 10) / 10 if target == longest_word else math.floor(target * 10) / 10
    if target < natural:
        table.wrap[1] = target


def latex_tables(group: Group) -> dict[str, TexTable]:
    """The group's tables: ``main`` (one column), ``t2v`` and ``v2t`` (one page width)."""
    return {"main": main_table(group), "t2v": direction_table(group, "t2v"), "v2t": direction_table(group, "v2t")}


def to_latex(group: Group) -> str:
    """The main table (``leaderboard.tex``)."""
    return main_table(group).render()


__all__ = ["COLUMN_WIDTH", "TEXT_WIDTH", "Cell", "Run", "TexTable", "direction_table", "latex_escape",
           "latex_tables", "main_table", "text", "to_latex"]
