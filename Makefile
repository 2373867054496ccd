# Two entry points: `make demo` and `make test`. Both create or refresh the virtual environment first;
# the install is skipped when setup.cfg and pyproject.toml have not changed since the last one.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dvtr-installed
PYTEST_ARGS ?=

.PHONY: venv demo test bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test,ray,bench]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(VENV)/bin/dvtr demo --out demo-output

test: venv
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_AUTH_MODE=disabled $(PY) -m pytest -q $(PYTEST_ARGS)

bench: venv
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output bench-output .pytest_cache
