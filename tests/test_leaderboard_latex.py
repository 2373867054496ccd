"""LaTeX tables for papers: they fit a two-column and a one-column page, escape text, show Setting and Seeds.

Widths are checked twice: without TeX, from the Computer Modern metrics the renderer carries; and, where
pdflatex is installed (``make tex``), by compiling the tables in both page layouts, failing on any overfull
box, and measuring each tabular against the estimate.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dvtr_bench.leaderboard import collect
from dvtr_bench.leaderboard.collect import Entry, Group
from dvtr_bench.leaderboard.example import make_example_records
from dvtr_bench.leaderboard.latex import COLUMN_WIDTH, TEXT_WIDTH, latex_escape, latex_tables, text

ROOT = Path(__file__).resolve().parents[1]
PDFLATEX = shutil.which("pdflatex")
needs_tex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (make tex installs it)")


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Group]:
    """The committed demo (1 seed), the example board (3 seeds with ±, flags, a re-ranked and a zero-shot
    row), and a hostile one (long names, every special character, ranks in the thousands)."""
    d = tmp_path_factory.mktemp("ex")
    make_example_records(d, n_clips=40)
    entries = []
    for p in sorted(d.glob("0[0-3]*/record.json")):
        rec = json.loads(p.read_text())
        rec["method"] = {"00": "CLIP4Clip seqTransf (ViT-B/16, 224 px, DSL off, 5 epochs)",
                         "01": "a<b> c|d e_f g&h %i $j# k{l}m ~n^o \\p",
                         "02": "Ünïcödé naïve façade “quoted” — ø ß 中文", "03": "x"}[p.parent.name[:2]]
        for part in ("mean", "std"):
            if rec["summary"][part] is not None:
                rec["summary"][part]["t2v_meanr"] = 12345.678
                rec["summary"][part]["v2t_meanr"] = 1234.5
        entries.append(Entry(path=p, record=rec))       # rendered as is: no validation in the way
    out = {"demo": collect([ROOT / "leaderboard" / "results"]).groups[0], "example": collect([d]).groups[0]}
    ex = out["example"]
    out["stress"] = Group(fingerprint=ex.fingerprint, protocol_version="1", dataset_name="a_b & c <d>",
                          n_clips=ex.n_clips, n_captions=ex.n_captions, entries=entries)
    assert len(out["example"].entries) == 6 and out["example"].entries[0].n_seeds == 3
    return out


# ------------------------------------------------------------------------------------- without TeX
@pytest.mark.parametrize("name", ["demo", "example"])
def test_tables_fit_a_column_and_a_page(groups: dict[str, Group], name: str) -> None:
    tables = latex_tables(groups[name])
    assert tables["main"].budget == COLUMN_WIDTH and tables["t2v"].budget == TEXT_WIDTH
    for part, t in tables.items():
        assert t.fits(), (name, part, t.width(), t.budget)
        assert f"Width {t.width():.1f}pt" in t.render() and "fits" in t.render()
    assert tables["main"].env == "table" and tables["t2v"].env == tables["v2t"].env == "table*"


def test_long_names_wrap_and_what_cannot_fit_says_so(groups: dict[str, Group]) -> None:
    tables = latex_tables(groups["stress"])
    for part, t in tables.items():
        assert 1 in t.wrap, part                        # the method column wraps rather than run off the page
        assert t.fits(), (part, t.width())
    # A name that cannot break (no space) cannot be wrapped: the file says the table is too wide.
    g = groups["stress"]
    one = Entry(path=g.entries[0].path, record={**g.entries[0].record, "method": "X" * 60})
    wide = latex_tables(Group(g.fingerprint, "1", "d", g.n_clips, g.n_captions, entries=[one]))["main"]
    assert not wide.fits() and "is WIDER than 234.9pt" in wide.render().splitlines()[1]


def test_setting_seeds_marks_and_directions(groups: dict[str, Group]) -> None:
    tables = latex_tables(groups["example"])
    main = tables["main"].render()
    header = [line for line in main.splitlines() if line.startswith(r"\# & Method")][0]
    assert "Setting" in header and "Seeds" in header and "RSum" in header
    assert r"MSAM + dual\_softmax$^{\dagger\ddagger}$ & FT & 3" in main
    assert "CLIP zero-shot & ZS & 1" in main
    assert r"\begin{table}[t]" in main and r"\begin{table*}[t]" in tables["t2v"].render()
    t2v, v2t = tables["t2v"].render(), tables["v2t"].render()
    assert r"Text$\rightarrow$video" in t2v and r"Video$\rightarrow$text" in v2t
    for tex in (t2v, v2t):
        for head in (r"R@1$\uparrow$", r"MdR$\downarrow$", r"MnR$\downarrow$", r"mAP$\uparrow$"):
            assert head in tex
    assert r"$\pm$" in main and r"\textbf{" in main
    labels = {re.search(r"\\label\{(.*)\}", t.render()).group(1) for t in tables.values()}
    assert len(labels) == 3


def test_escaping_for_the_default_font_encoding() -> None:
    # Under OT1, < > | print as ¡ ¿ —: they must be set in math.
    assert latex_escape("a<b>c|d") == "a$<$b$>$c$|$d"
    assert latex_escape("a_b&c%d$e#f{g}h~i^j\\") == (r"a\_b\&c\%d\$e\#f\{g\}h\~{}i\^{}j$\backslash$")
    assert latex_escape("--x") == "-{}-x" and latex_escape("é ß") == r"\'{e} \ss{}"
    assert latex_escape("line\nbreak\ttab") == "line break tab"
    assert latex_escape("中") == "?"


def test_width_model_matches_known_widths() -> None:
    # cmr8 digits are 0.5312 em of 8pt = 4.25pt; "Method" has a 0.236pt kern between o and d.
    assert text("0", 8).width == pytest.approx(4.2501, abs=1e-3)
    assert text("Method", 8).width == pytest.approx(28.7976, abs=2e-3)   # measured with pdflatex


def test_metrics_are_the_tfm_files() -> None:
    if shutil.which("kpsewhich") is None:
        pytest.skip("TeX is not installed (make tex installs it)")
    from dvtr_bench.leaderboard import _cm_widths
    from dvtr_bench.leaderboard.texmetrics import read_installed

    widths, spaces, quads, kerns = read_installed()
    assert widths == _cm_widths.WIDTHS and spaces == _cm_widths.SPACE and quads == _cm_widths.QUAD
    assert kerns == _cm_widths.KERNS


# ---------------------------------------------------------------------------------------- with TeX
_LAYOUTS = {
    # ICML-like two-column page: \columnwidth = 3.25in, table* across 6.75in.
    "two-column": r"\documentclass[10pt,twocolumn]{article}\setlength{\textwidth}{6.75in}"
                  r"\setlength{\columnsep}{0.25in}\setlength{\oddsidemargin}{-0.125in}",
    # NeurIPS-like one-column page: 5.5in.
    "one-column": r"\documentclass[10pt]{article}\setlength{\textwidth}{5.5in}",
}


def _tabular(tex: str) -> str:
    return tex[tex.index(r"\begin{tabular}"):tex.rindex(r"\end{tabular}") + len(r"\end{tabular}")]


def _compile(tmp: Path, name: str, body: str, preamble: str) -> str:
    doc = (preamble + "\n\\usepackage{booktabs}\\newsavebox\\tb\\tracinglostchars=2\n\\begin{document}\n" + body
           + "\n\\end{document}\n")
    (tmp / f"{name}.tex").write_text(doc, encoding="utf-8")
    r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=tmp,
                       capture_output=True, text=True, timeout=120)
    log = (tmp / f"{name}.log").read_text(encoding="latin-1")
    assert r.returncode == 0, log[-3000:]
    return log


@needs_tex
@pytest.mark.parametrize("name", ["demo", "example", "stress"])
def test_pdflatex_compiles_fits_and_measures_as_estimated(groups: dict[str, Group], name: str,
                                                           tmp_path: Path) -> None:
    tables = latex_tables(groups[name])
    for part, t in tables.items():
        (tmp_path / f"{part}.tex").write_text(t.render(), encoding="utf-8")
    body = "\n".join(rf"\input{{{part}.tex}}" for part in tables) + "\n\\clearpage\n"
    body += "\n".join(r"\sbox\tb{\%s\setlength{\tabcolsep}{%gpt}%s}\typeout{WIDTH %s \the\wd\tb}"
                      % (t.size, t.tabcolsep, _tabular(t.render()), part) for part, t in tables.items())
    for layout, preamble in _LAYOUTS.items():
        log = _compile(tmp_path, layout, body, preamble)
        fitting = [p for p, t in tables.items() if t.fits()]
        overfull = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)
        assert "Missing character" not in log
        if len(fitting) == len(tables):
            assert overfull == [], (layout, overfull)
        measured = {m.group(1): float(m.group(2)) for m in re.finditer(r"WIDTH (\w+) ([\d.]+)pt", log)}
        for part, t in tables.items():
            # The estimate is an upper bound within 1.5pt (ligatures and wrapped cells set a little narrower).
            assert t.width() - 1.5 <= measured[part] <= t.width() + 0.01, (layout, part, measured[part], t.width())


def test_public_renderer_escapes_and_shows_setting_and_seeds(groups: dict[str, Group], tmp_path: Path) -> None:
    """Through the renderer's public names, as in dvtr 0.2: to_latex and latex_escape."""
    from dvtr_bench.leaderboard.render import latex_escape as escape, to_latex

    assert escape("a<b>c|d") == "a$<$b$>$c$|$d"
    tex = to_latex(groups["example"])
    header = [line for line in tex.splitlines() if "Method" in line and "&" in line][0]
    assert "Setting" in header and "Seeds" in header
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed (make tex installs it)")
    (tmp_path / "t.tex").write_text(tex, encoding="utf-8")
    for layout, preamble in _LAYOUTS.items():
        log = _compile(tmp_path, layout, r"\input{t.tex}", preamble)
        assert "Overfull" not in log, layout


@needs_tex
def test_committed_tables_compile(tmp_path: Path) -> None:
    files = sorted((ROOT / "leaderboard" / "tables").glob("*/leaderboard*.tex"))
    assert len(files) == 3
    body = "\n".join(rf"\input{{{f.as_posix()}}}" for f in files)
    for layout, preamble in _LAYOUTS.items():
        log = _compile(tmp_path, layout, body, preamble)
        assert "Overfull" not in log

