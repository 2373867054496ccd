"""Real-browser checks of dvtr's HTML pages: Debian's chromium driven by playwright, with no network.

The pages promise to work offline and alone (inline CSS, pictures as ``data:`` URIs); the only way to know is to
open them in a browser and watch what it fetches. :func:`open_page` loads a page from disk in headless chromium
(the system's ``/usr/bin/chromium``, never a browser playwright would download) with every request that is not a
local file or inline data aborted and recorded. The screenshots in ``docs/img/`` are made the same way::

    python -m dvtr_bench.testing.browser PAGE.html OUT.png [--width 1200] [--height 900] [--full-page]
"""

from __future__ import annotations

import argparse
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

CHROMIUM = os.environ.get("DVTR_CHROMIUM", "/usr/bin/chromium")
# No GPU, no sandbox (containers, root in CI), and nothing that phones home: the page is the only thing loaded.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_missing() -> str | None:
    """Why the browser checks cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'dvtr-bench[test]')"
    if not Path(CHROMIUM).is_file():
        return f"no chromium at {CHROMIUM} (make browser installs Debian's)"
    return None


@dataclass
class PageVisit:
    """A page opened in the browser, and what it asked for."""

    page: Any
    requests: list[str] = field(default_factory=list)      # every URL the page requested
    blocked: list[str] = field(default_factory=list)       # requests that were neither a local file nor inline data
    errors: list[str] = field(default_factory=list)        # script errors and console errors

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)


@contextlib.contextmanager
def open_page(path: str | Path, width: int = 1200, height: int = 900) -> Iterator[PageVisit]:
    """Open an HTML file in headless chromium; yield a :class:`PageVisit` once the page has loaded."""
    from playwright.sync_api import sync_playwright

    url = Path(path).resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            visit = PageVisit(page)

            def route(r: Any) -> None:
                u = r.request.url
                visit.requests.append(u)
                if u.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    visit.blocked.append(u)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e: visit.errors.append(str(e)))
            page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
            page.goto(url, wait_until="load")
            yield visit
        finally:
            browser.close()


def screenshot(path: str | Path, png: str | Path, width: int = 1200, height: int = 900, full_page: bool = False
               ) -> Path:
    """Save a PNG of a page as the browser renders it."""
    out = Path(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_page(path, width, height) as visit:
        visit.page.screenshot(path=str(out), full_page=full_page)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Screenshot a dvtr HTML page in headless chromium (offline).")
    ap.add_argument("page")
    ap.add_argument("png")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--full-page", action="store_true")
    a = ap.parse_args()
    why = browser_missing()
    if why:
        raise SystemExit(why)
    screenshot(a.page, a.png, a.width, a.height, a.full_page)


if __name__ == "__main__":
    main()
