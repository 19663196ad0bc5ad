# Face recognizer (issue 15): dlib's reference descriptors for the tests of
# crates/vigil-recognizer, and the benchmark against dlib itself.
# Included by the top-level Makefile, which defines VENV, PY, CARGO,
# TARGET_DIR and $(VENV)/.ok.

IDENTITIES_DIR ?= ../shared/data/identities
FACES_DIR ?= ../shared/data/faces
# Where the tests look for it: $VIGIL_MODELS_DIR/test-assets/recognizer.
RECOGNIZER_MODELS := $(or $(VIGIL_MODELS_DIR),$(CURDIR)/models)
RECOGNIZER_REFERENCE := $(RECOGNIZER_MODELS)/test-assets/recognizer

.PHONY: recognizer-reference recognizer-alignment bench-recognizer

$(VENV)/.recognizer-ok: $(VENV)/.ok requirements-recognizer.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-recognizer.txt
	touch $@

# dlib's pipeline on the shared photos (decoded pixels, chips, landmarks,
# descriptors, dlib's detector rectangles and CenterFace's boxes, dlib's
# shapes in moved rectangles; ~30 MB, never committed). Rebuilt when the script, the pinned
# packages or the model manifest change; about a minute and a half.
recognizer-reference: $(RECOGNIZER_REFERENCE)/faces.tsv

$(RECOGNIZER_REFERENCE)/faces.tsv: scripts/recognizer_reference.py $(VENV)/.recognizer-ok models/manifest.toml
	VIGIL_MODELS_DIR=$(RECOGNIZER_MODELS) $(PY) scripts/fetch_models.py \
	  --only dlib-face-recognition --only dlib-shape-predictor-5 --only centerface
	VIGIL_MODELS_DIR=$(RECOGNIZER_MODELS) $(PY) scripts/recognizer_reference.py \
	  --identities $(IDENTITIES_DIR) --faces $(FACES_DIR) reference --out $(RECOGNIZER_REFERENCE)

# Prints the constants of crates/vigil-recognizer/src/align.rs
# (CENTERFACE_TEMPLATE, RECT_FROM_BOX) as derived from the shared photos.
recognizer-alignment: $(VENV)/.recognizer-ok
	VIGIL_MODELS_DIR=$(RECOGNIZER_MODELS) $(PY) scripts/fetch_models.py \
	  --only dlib-face-recognition --only dlib-shape-predictor-5 --only centerface
	VIGIL_MODELS_DIR=$(RECOGNIZER_MODELS) $(PY) scripts/recognizer_reference.py \
	  --identities $(IDENTITIES_DIR) --faces $(FACES_DIR) alignment

# BENCH_RECOGNIZER_ARGS=--rounds 9 for more rounds (medians either way).
BENCH_RECOGNIZER_ARGS ?=

bench-recognizer: recognizer-reference
	$(CARGO) build --release -p vigil-recognizer --examples
	VIGIL_MODELS_DIR=$(RECOGNIZER_MODELS) $(PY) scripts/bench_recognizer.py \
	  --bench $(TARGET_DIR)/release/examples/bench $(BENCH_RECOGNIZER_ARGS)
