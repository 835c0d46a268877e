# Two entry points for a fresh machine: `make demo` (pose transfer, an animation and inpainting on
# examples/ with the shipped default weights) and `make test` (the test suite). Both create or reuse
# .venv and install what they need, idempotently (re-installs only when pyproject.toml or the
# constraints change). The install includes the mediapipe keypoint detector (offline), so photos
# without a pose file work.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.glocal-installed
DEV_STAMP := $(VENV)/.glocal-dev-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test install dev lint mediapipe mmpose clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# mediapipe itself goes in with --no-deps: it declares numpy<2 but runs with numpy 2; its real
# dependencies come from the [mediapipe] extra, its version from the constraints.
# `-e` keeps the package editable (a plain ".[mediapipe]" would replace the editable install).
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[mediapipe]"
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps mediapipe
	touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[dev]"
	touch $@

install: $(STAMP)

dev: $(DEV_STAMP)

# outputs/demo/ is the demo's own: transfer/ (every example source to every example pose, with grids),
# animation/ + animation.gif (one source along examples/sequence) and inpainting/ (a given mask, with its
# grid). A second run keeps the results that exist (the GIF too: --video never replaces a file without
# --overwrite); `make clean-demo` resets.
demo: $(STAMP)
	$(BIN)/glocal transfer --source examples/sources --pose examples/poses --out outputs/demo/transfer --grid
	$(BIN)/glocal transfer --source examples/sources/person_00.png --pose examples/sequence \
		--out outputs/demo/animation --video outputs/demo/animation.gif
	$(BIN)/glocal inpaint --source examples/inpainting --mask file --out outputs/demo/inpainting --grid

# The full CPU suite, slow tests included (plain `pytest` skips `slow`; `gpu` needs CUDA).
test: $(DEV_STAMP)
	$(BIN)/python -m pytest -m "not gpu"

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

# Keypoint backends (see docs/data.md). mediapipe is part of `make install`; this target is kept
# as an alias for scripts and CI that still call it.
mediapipe: $(STAMP)

# mmpose 1.3.2 for --keypoints mmpose (~30 s on top of `make install`). chumpy's setup.py needs the
# installed numpy (no build isolation); xtcocotools is rebuilt from source against numpy 2; mmengine
# imports pkg_resources, hence setuptools<81. mmcv-lite has no compiled ops (mmcv.ops): the test
# suite registers a placeholder for it; users running mmpose need the full mmcv.
mmpose: $(STAMP)
	$(PIP) install -q -c $(CONSTRAINTS) "setuptools<81" wheel cython
	$(PIP) install -q -c $(CONSTRAINTS) --no-build-isolation chumpy
	$(PIP) install -q -c $(CONSTRAINTS) --no-build-isolation --no-binary xtcocotools xtcocotools
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[mmpose]"

clean-demo:
	rm -rf outputs/demo
