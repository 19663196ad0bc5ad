# Face detector: model supply, test images and the benchmark (issue 3).
# Included by the top-level Makefile, which defines VENV, PY and $(VENV)/.ok.

FACES_DIR ?= ../shared/data/faces

.PHONY: models test-assets bench-detector

# Fetches every file in models/manifest.toml (the model and the test images)
# that is missing or fails its sha256; a no-op when all are present.
models: $(VENV)/.ok
	$(PY) scripts/fetch_models.py

# Only the test images (astronaut, coffee, chelsea), e.g. for a test-only CI job.
test-assets: $(VENV)/.ok
	$(PY) scripts/fetch_models.py --only astronaut --only coffee --only chelsea

$(VENV)/.bench-ok: $(VENV)/.ok requirements-bench.txt
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-bench.txt
	touch $@

# BENCH_DETECTOR_ARGS=--tract-baseline adds a column with tract's own operators,
# --f32-baseline one with vigil's 1x1 convolutions in f32 (the default is int8 on VNNI CPUs).
BENCH_DETECTOR_ARGS ?=

bench-detector: models $(VENV)/.bench-ok
	VIGIL_MODELS_DIR=$(CURDIR)/models $(PY) scripts/bench_detector.py --images $(FACES_DIR) $(BENCH_DETECTOR_ARGS)
