"""Widths of Computer Modern glyphs, read from TeX's own font metric (TFM) files, and a tiny TFM reader.

The LaTeX tables are typeset by pdflatex in the default fonts (Computer Modern, OT1): ``cmr``/``cmbx`` for
text, ``cmsy``/``cmmi`` for the few math symbols (±, †, ‡, ↑, ↓, →, <, >, |). :data:`WIDTHS` holds, for each
font at its design size (a 10 pt document's ``\\small`` is ``cmr9``, ``\\footnotesize`` ``cmr8``,
``\\scriptsize`` ``cmr7``; superscripts of 8 pt text are set in 6 pt), the advance width in pt of the
character codes the renderer emits, and :data:`KERNS` the kerns TeX puts between two of them. With them
:mod:`dvtr_bench.leaderboard.latex` knows how wide a table will be without running TeX.

The numbers are not typed by hand: ``python -m dvtr_bench.leaderboard.texmetrics`` reads the TFM files of an
installed TeX (``kpsewhich cmr8.tfm``) and rewrites :mod:`dvtr_bench.leaderboard._cm_widths`;
``tests/test_leaderboard_latex.py`` checks that the committed table equals what the TFM files say.
Ligatures (ff, fi, fl, ffi, ffl) are ignored: each is narrower than its letters, so a width computed this way
is an upper bound (by a fraction of a point) of what TeX sets.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Optional

from dvtr_bench.leaderboard._cm_widths import KERNS, QUAD, SPACE, WIDTHS

FAMILIES = ("cmr", "cmbx", "cmsy", "cmmi")
# Text in tables is 7-9 pt (10 pt is kept for escaping); math symbols also appear as 5-6 pt superscripts.
SIZES = {"cmr": (7, 8, 9, 10), "cmbx": (7, 8, 9, 10), "cmsy": (5, 6, 7, 8, 9, 10), "cmmi": (5, 6, 7, 8, 9, 10)}
# Codes kept for the math fonts: cmsy 2 ×, 3 ∗, 6 ±, 24 ∼, 33 →, 34 ↑, 35 ↓, 102 {, 103 }, 106 |, 110 \,
# 121 †, 122 ‡; cmmi 22 μ, 60 <, 62 >. Text fonts keep OT1's 0-127 (accents, ß, æ, ø, dashes included).
_KEEP = {"cmsy": (2, 3, 6, 24, 33, 34, 35, 102, 103, 106, 110, 121, 122), "cmmi": (22, 60, 62),
         "cmr": tuple(range(0, 128)), "cmbx": tuple(range(0, 128))}


def width(font: str, code: int) -> float:
    """Advance width in pt of character ``code`` of ``font`` (e.g. ``"cmr8"``) at its design size."""
    return WIDTHS[font][code]


def space(font: str) -> float:
    """Natural inter-word space in pt of a text font (its TFM parameter 2)."""
    return SPACE[font]


def kern(font: str, left: int, right: int) -> float:
    """The kern in pt TeX inserts between characters ``left`` and ``right`` of a text font (0 when none)."""
    return KERNS.get(font, {}).get((left, right), 0.0)


def quad(font: str) -> float:
    """One em in pt of a text font (its TFM parameter 6)."""
    return QUAD[font]


def parse_tfm(data: bytes) -> tuple[float, dict[int, float], list[float], dict[tuple[int, int], float]]:
    """(design size in pt, {code: width in pt}, parameters in pt, {(left, right): kern in pt}) of a TFM file."""
    lf, lh, bc, ec, nw, nh, nd, ni, nl, nk, ne, np_ = struct.unpack(">12H", data[:24])
    words = struct.unpack(f">{lf}i", data[:lf * 4])
    header = 6
    design = words[header + 1] / 2 ** 20
    char_info = header + lh
    widths_at = char_info + (ec - bc + 1)
    width_table = words[widths_at:widths_at + nw]
    lig_at = widths_at + nw + nh + nd + ni
    kern_at = lig_at + nl
    kern_table = [w / 2 ** 20 * design for w in words[kern_at:kern_at + nk]]
    out: dict[int, float] = {}
    kerns: dict[tuple[int, int], float] = {}
    for code in range(bc, ec + 1):
        base = (char_info + code - bc) * 4
        w_index, tag, remainder = data[base], data[base + 2] & 3, data[base + 3]
        if w_index:
            out[code] = width_table[w_index] / 2 ** 20 * design
        if tag != 1:       # no lig/kern program for this character
            continue
        i = remainder
        skip, _, op, rem = data[(lig_at + i) * 4:(lig_at + i) * 4 + 4]
        if skip > 128:     # the program starts elsewhere
            i = 256 * op + rem
        seen: set[int] = set()
        while i not in seen:
            seen.add(i)
            skip, nxt, op, rem = data[(lig_at + i) * 4:(lig_at + i) * 4 + 4]
            if skip <= 128 and op >= 128 and (code, nxt) not in kerns:
                kerns[(code, nxt)] = kern_table[256 * (op - 128) + rem]
            if skip >= 128:
                break
            i += skip + 1
    params_at = lig_at + nl + nk + ne
    params = [w / 2 ** 20 * design for w in words[params_at:params_at + np_]]
    return design, out, params, kerns


Metrics = tuple[dict[str, dict[int, float]], dict[str, float], dict[str, float],
                dict[str, dict[tuple[int, int], float]]]


def read_installed(kpsewhich: str = "kpsewhich") -> Metrics:
    """Widths, spaces, quads and text kerns of every font of :data:`SIZES`, from the installed TFM files."""
    widths: dict[str, dict[int, float]] = {}
    spaces: dict[str, float] = {}
    quads: dict[str, float] = {}
    kerns: dict[str, dict[tuple[int, int], float]] = {}
    for fam in FAMILIES:
        for size in SIZES[fam]:
            name = f"{fam}{size}"
            path = subprocess.run([kpsewhich, f"{name}.tfm"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            _, w, params, k = parse_tfm(Path(path).read_bytes())
            widths[name] = {c: round(w[c], 4) for c in _KEEP[fam] if c in w}
            if fam in ("cmr", "cmbx"):
                spaces[name] = round(params[1], 4)
                quads[name] = round(params[5], 4)
                kerns[name] = {(a, b): round(v, 4) for (a, b), v in k.items() if v and 32 < a < 127 and 32 < b < 127}
    return widths, spaces, quads, kerns


def module_source(widths: dict[str, dict[int, float]], spaces: dict[str, float], quads: dict[str, float],
                  kerns: dict[str, dict[tuple[int, int], float]]) -> str:
    """The text of ``_cm_widths.py`` for these tables."""
    lines = ['"""Computer Modern advance widths in pt at each font\'s design size, from the TFM files.',
             "", "Generated by ``python -m dvtr_bench.leaderboard.texmetrics``; do not edit.", '"""', "",
             "SPACE = {" + ", ".join(f"{k!r}: {v!r}" for k, v in sorted(spaces.items())) + "}", "",
             "QUAD = {" + ", ".join(f"{k!r}: {v!r}" for k, v in sorted(quads.items())) + "}", "", "WIDTHS = {"]
    for name in sorted(widths):
        items = ", ".join(f"{c}: {w!r}" for c, w in sorted(widths[name].items()))
        lines.append(f"    {name!r}: {{{items}}},")
    lines += ["}", "", "KERNS = {"]
    for name in sorted(kerns):
        items = ", ".join(f"{a, b}: {v!r}" for (a, b), v in sorted(kerns[name].items()))
        lines.append(f"    {name!r}: {{{items}}},")
    lines += ["}", ""]
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str, width: int = 118) -> str:
    if len(line) <= width:
        return line
    out, cur = [], ""
    for part in line.split(", "):
        piece = part if not cur else cur + ", " + part
        if len(piece) > width and cur:
            out.append(cur + ",")
            cur = "        " + part
        else:
            cur = piece
    out.append(cur)
    return "\n".join(out)


def main(argv: Optional[list[str]] = None) -> None:
    target = Path(__file__).with_name("_cm_widths.py")
    target.write_text(module_source(*read_installed()), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
