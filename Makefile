# Two entry points: `make demo` and `make test`. Both create or refresh the virtual environment first;
# the install is skipped when setup.cfg, setup.py and pyproject.toml have not changed since the last one.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dvtr-installed
PYTEST_ARGS ?=
TEST_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_AUTH_MODE=disabled

.PHONY: venv browser tex demo test test-fast lint bench clean

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test,ray,bench,search,text]'
	touch $(STAMP)

venv: $(STAMP)

# The browser tests (tests/test_leaderboard_browser.py, tests/test_pages_browser.py) drive Debian's chromium through
# playwright, never a browser playwright would download. A no-op when it is installed; CI runs as root on a clean
# Debian machine.
browser:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# pdflatex and booktabs, for the test that compiles the leaderboard's LaTeX tables and measures them
# (tests/test_leaderboard_latex.py). About 15 MB and half a minute without recommends; a no-op when present.
tex:
	command -v pdflatex >/dev/null && kpsewhich booktabs.sty >/dev/null || (apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends texlive-latex-base \
	  texlive-latex-recommended)

demo: venv
	$(VENV)/bin/dvtr demo --out demo-output

# The whole suite: the linter, then every test, the wheel check (tests/test_wheel.py) and the slow
# end-to-end runs included.
test: lint browser tex
	$(TEST_ENV) $(PY) -m pytest -q $(PYTEST_ARGS)

# The quick loop while editing: no linter, no slow end-to-end tests, stop at the first failure.
test-fast: venv
	$(TEST_ENV) $(PY) -m pytest -q -x -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check dvtr_bench tests benchmarks

bench: venv
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output bench-output .pytest_cache build dist *.egg-info
