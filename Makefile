# The two commands: `make run` and `make test`. Every target installs what it
# needs first and is safe to run again.
SHELL := bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
CARGO ?= cargo
# Where cargo puts binaries; honours CARGO_TARGET_DIR like cargo itself.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# ffmpeg: video capture and test clips; libclang-dev: nokhwa's V4L2 bindings;
# chromium, chromium-driver: the dashboard's browser tests; wrk: bench-telemetry;
# mosquitto, mosquitto-clients: the broker of the MQTT tests (and for trying --mqtt-url).
APT_PACKAGES := chromium chromium-driver curl ffmpeg libclang-dev mosquitto mosquitto-clients pkg-config python3-venv wrk
# Shared evaluation photos sit beside the repository (CI lays them out so).
export VIGIL_TEST_FACES_DIR ?= $(abspath ../shared/data/faces)
export VIGIL_TEST_IDENTITIES_DIR ?= $(abspath ../shared/data/identities)

# A clean clone in CI builds everything once: incremental state would only
# double what the build writes to disk.
ifdef CI
export CARGO_INCREMENTAL ?= 0
endif

.PHONY: help run test deps venv lint fmt clean-data

help:
	@echo "make run    build and start vigil (and a local database unless MONGODB_URI is set)"
	@echo "make test   install what the tests need, start a throwaway database, run every test"
	@echo "make lint   rustfmt check and clippy with warnings as errors"

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.ok
$(VENV)/.ok: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# The `vigil` binary is the vigil-bin package (crates/vigil-bin).
run: deps venv models
	CARGO=$(CARGO) scripts/build-release.sh release
	scripts/with-database.sh -- $(TARGET_DIR)/release/vigil serve

test: deps venv models test-assets recognizer-reference
	scripts/with-database.sh --ephemeral -- $(CARGO) test --workspace --lib --bins --tests
	$(MAKE) --no-print-directory fuzz-short

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

include $(wildcard mk/*.mk)

.PHONY: bench-gallery
# Exact gallery search at 1k, 10k and 100k enrolled faces, against a plain scan.
bench-gallery:
	$(CARGO) bench -p vigil-bin --bench gallery

.PHONY: bench-search
# Search by face over 100k and 1M stored faces (synthetic), in the database: p50/p99, CPU, memory.
bench-search: deps venv
	scripts/with-database.sh --ephemeral -- $(CARGO) bench -p vigil-bin --bench search

.PHONY: bench-api
# Upload throughput and latency of a release build, 640x480 JPEG, concurrency 1 and 8.
bench-api: deps venv models test-assets $(VENV)/.bench-ok
	$(CARGO) build --release -p vigil-bin --bin vigil
	BENCH_REFERENCE=1 scripts/with-database.sh --ephemeral -- scripts/bench-api.sh

.PHONY: bench-videos
# Videos analysed on the server: a 60 s 640x480 clip at fps 2 on one instance and on two sharing the database.
bench-videos: deps venv models test-assets
	$(CARGO) build --release -p vigil-bin --bin vigil
	scripts/with-database.sh --ephemeral -- scripts/bench-videos.sh

.PHONY: bench-telemetry
# POST /telemetry/gps of a release build at concurrency 8 (wrk), against GET /healthz.
bench-telemetry: deps venv models
	$(CARGO) build --release -p vigil-bin --bin vigil
	scripts/with-database.sh --ephemeral -- scripts/bench-telemetry.sh
