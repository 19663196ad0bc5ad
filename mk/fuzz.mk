# The HTTP API against its own OpenAPI document (issue 22): schemathesis,
# every phase (stateful included) and every check, against a real
# `vigil serve` with a throwaway database (scripts/fuzz.sh).
# Included by the top-level Makefile, which defines VENV, PY, CARGO and
# $(VENV)/.ok.
#
#   make fuzz                      the long pass: FUZZ_MAX_TIME seconds (300)
#   make fuzz FUZZ_MAX_TIME=600    longer
#   make fuzz-short                the pass `make test` runs: fixed seed, bounded
#                                  examples, at most FUZZ_SHORT_TIME seconds (90)
# A failed check fails the target; scripts/fuzz_summary.py REPORT.ndjson
# counts what failed (the report folder is printed then).

FUZZ_MAX_TIME ?= 300
FUZZ_SHORT_TIME ?= 90
FUZZ_SHORT_EXAMPLES ?= 10
FUZZ_SHORT_SEED ?= 22
# The server binary as `make test` builds it (target/debug/vigil): building
# it with `cargo build -p vigil-bin` instead would resolve features without
# the tests' dev-dependencies and rebuild half the tree.
FUZZ_BUILD = $(CARGO) test --workspace --lib --bins --tests --no-run --quiet

.PHONY: fuzz fuzz-short fuzz-venv

$(VENV)/.fuzz-ok: $(VENV)/.ok requirements-fuzz.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-fuzz.txt
	touch $@

fuzz-venv: $(VENV)/.fuzz-ok

fuzz: deps venv models $(VENV)/.fuzz-ok
	$(FUZZ_BUILD)
	FUZZ_MAX_TIME=$(FUZZ_MAX_TIME) scripts/fuzz.sh

fuzz-short: deps venv models $(VENV)/.fuzz-ok
	$(FUZZ_BUILD)
	FUZZ_MAX_TIME=$(FUZZ_SHORT_TIME) FUZZ_MAX_EXAMPLES=$(FUZZ_SHORT_EXAMPLES) FUZZ_SEED=$(FUZZ_SHORT_SEED) \
	  scripts/fuzz.sh
