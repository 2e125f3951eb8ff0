# moeheads: `make demo` runs the quickstart, `make test` runs lint, tests and the docs build,
# `make test-slow` the slow-marked tests,
# `make gpu-check` measures everything that needs a GPU.
# Both create .venv and install the package (with the dev extras) when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-slow lint pytest docs docs-serve bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/moeheads run recipes/quickstart.yaml

test: lint pytest docs

lint: $(STAMP)
	$(BIN)/ruff check moeheads tests benchmarks examples

pytest: $(STAMP)
	$(BIN)/pytest -q

# the slow-marked tests (deselected by `make test`); CI runs them after `make test`
test-slow: $(STAMP)
	$(BIN)/pytest -q -m 'slow and not gpu'

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict -q

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

bench: $(STAMP)
	$(BIN)/python benchmarks/heads.py

# everything that needs a GPU, in one run (under 8 minutes on one H100): gpu tests,
# throughput of both input pipelines, heads, JPEG decoding; table in runs/gpu-check/summary.md
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf site build *.egg-info
