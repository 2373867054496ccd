"""The HTML pages in a real browser (Debian's chromium through playwright): they load nothing from the network,
their pictures decode, hovering plays a clip's frames, and the layout fits the window."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.testing.browser import browser_missing, open_page

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


def _invoke(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def _offline_and_clean(visit) -> None:
    assert visit.blocked == [], f"the page asked the network for {visit.blocked}"
    assert all(u.startswith(("file:", "data:")) for u in visit.requests)
    assert visit.errors == []


def _flip_backgrounds_decode(visit) -> int:
    """Every flip-book's picture is an inline JPEG the browser decoded; returns how many there are."""
    n = visit.js("document.querySelectorAll('.flip').length")
    sources = visit.js("""() => Array.from(document.querySelectorAll('.flip'),
        e => getComputedStyle(e).backgroundImage.slice(0, 30))""")
    assert n > 0 and all(s.startswith('url("data:image/jpeg;base64,') for s in sources)
    # decode each distinct picture the way the CSS uses it
    sizes = visit.js("""async () => {
        const urls = [...new Set(Array.from(document.querySelectorAll('.flip'),
            e => getComputedStyle(e).backgroundImage.slice(5, -2)))];
        return Promise.all(urls.map(u => new Promise(ok => {
            const im = new Image(); im.onload = () => ok([im.naturalWidth, im.naturalHeight]);
            im.onerror = () => ok([0, 0]); im.src = u; })));
    }""")
    assert all(w == 6 * 128 and h == 72 for w, h in sizes), sizes
    return n


def _hover_plays(visit, selector: str) -> None:
    el = visit.page.locator(selector).first
    assert visit.js("s => getComputedStyle(document.querySelector(s)).animationName", selector) == "none"
    el.hover()
    assert visit.js("s => getComputedStyle(document.querySelector(s)).animationName", selector) == "flip"


def test_search_page_in_the_browser(tiny_runs, tmp_path):
    ds, runs = tiny_runs
    _invoke("index", ds, "--run", runs["meanP"], "--out", tmp_path / "idx", "--device", "cpu")
    page = tmp_path / "out" / "hits.html"
    _invoke("search", tmp_path / "idx", "a blue square moving up over sandy ground", "-k", "5", "--html", page)
    with open_page(page, width=1100, height=800) as visit:
        _offline_and_clean(visit)
        assert visit.js("document.querySelectorAll('li.hit').length") == 5
        assert _flip_backgrounds_decode(visit) == 5
        strips = visit.js("Array.from(document.querySelectorAll('img.strip'), i => [i.complete, i.naturalWidth])")
        assert strips == [[True, 6 * 128]] * 5
        assert visit.js("document.documentElement.scrollWidth") <= 1100      # nothing spills sideways
        ranks = visit.js("Array.from(document.querySelectorAll('.rank'), e => e.textContent)")
        assert ranks == ["1", "2", "3", "4", "5"]
        _hover_plays(visit, "li.hit .flip")
        png = visit.page.screenshot()
    assert len(png) > 20_000     # a rendered page with pictures, not a blank one


def test_gallery_page_in_the_browser(tiny_runs, tmp_path):
    ds, runs = tiny_runs
    _invoke("gallery", runs["meanP"].parent, "--dataset", ds, "--out", tmp_path / "gal", "--captions", "3",
            "--hardest", "1", "--clips", "2")
    (page,) = (tmp_path / "gal").glob("*/gallery.html")
    with open_page(page, width=1200, height=900) as visit:
        _offline_and_clean(visit)
        assert visit.js("document.querySelectorAll('.item.t2v').length") == 4
        assert visit.js("document.querySelectorAll('.item.v2t').length") == 2
        _flip_backgrounds_decode(visit)
        # the correct clip is marked in the caption's header and wherever a method has it in its top 5
        marked = visit.js("document.querySelectorAll('.item.t2v .truth .t.hit').length")
        in_tops = visit.js("document.querySelectorAll('.item.t2v table .t.hit').length")
        checks = visit.js("document.querySelectorAll('.item.t2v .hitmark').length")
        assert marked == 4 and checks == in_tops
        ranks = visit.js("Array.from(document.querySelectorAll('.item.t2v td.r'), e => e.textContent)")
        assert len(ranks) == 8 and all(r.startswith("#") for r in ranks)
        # a method whose correct clip is at rank r <= 5 shows it in column r, marked
        rows = visit.js("""Array.from(document.querySelectorAll('.item.t2v table tr')).slice(0).filter(
            tr => tr.querySelector('td.r')).map(tr => [parseInt(tr.querySelector('td.r').textContent.slice(1)),
            Array.from(tr.querySelectorAll('.t')).findIndex(t => t.classList.contains('hit'))])""")
        for rank, col in rows:
            assert col == (rank - 1 if rank <= 5 else -1), (rank, col)
        assert visit.js("document.documentElement.scrollWidth") <= 1200
        _hover_plays(visit, ".item.t2v table .flip")
