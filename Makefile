# Two commands do all set-up: `make demo` and `make test` (each creates .venv with pip when missing).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps imagecorruptions==1.1.2  # ImageNet-C's frost photos, read as files (transforms/_frost.py)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/robustbench-lite demo

test: $(STAMP)  # two workers, each test file on one (module fixtures made once); PYTEST_WORKERS=0 runs serially
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) results/demo
